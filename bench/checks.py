"""The two long checks: memory over a long soak, and very large streams.

`memory_soak` sends N requests through Bastion at c=32 (half JSON, half streamed) and samples its
RSS every few seconds: a leak shows as a rising line, "flat" as one that stops rising after the
warm-up. `big_stream` sends ~10 MB streamed answers through a freshly started proxy: a relay
that buffers the stream grows by about its size, one that forwards events as they come does not.
The mock has no knob for a long answer; it echoes (up to) the first ten words of the prompt, so a
10 MB answer needs a prompt of ten 1 MB words and comes as a handful of multi-megabyte SSE events.

Three phases, each request measured on its own: its settled RSS after, and its own peak (VmHWM
reset to the current RSS before it) above the RSS it started from. A warm-up (one big answer,
one tiny one) is not judged. A control phase (same prompt, max_tokens=1, so a tiny stream)
measures how far reading the 10 MB request lifts the peak. The big phase then sends several big
answers. The verdict reads medians over the requests: glibc keeps freed heap for good at
unpredictable moments (a one-time step of 10-35 MB, seen with both upstream clients, at any
request of a run), which a before/after difference counted as growth now and then. A relay that
kept or held each answer would show in every request, so in the median too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from statistics import median

from load import LoadSpec, expected_marker, messages_body
from loadgen import run_loadgen
from measure import LoadRunner
from procstat import Memory, memory, reset_peak

SOAK_FLAT_MB = 5.0
KEPT_LIMIT = 0.25
"""Passed only if the median big answer grew the settled RSS by less than this share of one."""
PEAK_LIMIT = 0.5
"""... and the peak by less than this share: the answer was not held whole. The mock's events
are ~3/10 of the answer each, and a relay that cuts at event boundaries holds one partial event."""


class RssSampler:
    """Reads a process's VmRSS every `interval_s` on a thread, until stopped."""

    def __init__(self, pid: int, interval_s: float) -> None:
        self._pid = pid
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = 0.0
        self.samples: list[tuple[float, float]] = []
        """(seconds since start, RSS in MB)."""

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        self._sample()
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        rss_mb = memory(self._pid).rss_kb / 1024
        self.samples.append((round(time.monotonic() - self._started, 3), round(rss_mb, 2)))

    @property
    def peak_mb(self) -> float:
        return max(rss for _, rss in self.samples)


@dataclass(frozen=True, slots=True)
class SoakResult:
    requests: int
    responses: int
    bad: int
    socket_errors: int
    rss_start_mb: float
    rss_end_mb: float
    rss_max_mb: float
    rss_mid_mb: float
    samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb

    @property
    def flat(self) -> bool:
        """Flat: under SOAK_FLAT_MB growth in all, and no rise over the second half."""
        second_half = self.rss_end_mb - self.rss_mid_mb
        return self.growth_mb < SOAK_FLAT_MB and second_half < SOAK_FLAT_MB / 5

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "growth_mb": self.growth_mb, "flat": self.flat}


def soak_spec(url: str, api_key: str, requests: int, *, stream: bool) -> LoadSpec:
    return LoadSpec(
        url=url + "/v1/messages",
        concurrency=32,
        requests=requests,
        body=messages_body(stream=stream),
        api_key=api_key,
        expect=expected_marker(stream=stream),
        deadline_s=1800,
    )


def memory_soak(
    url: str, pid: int, api_key: str, requests: int, runner: LoadRunner, interval_s: float = 2.0
) -> SoakResult:
    """Warm up with 2,000 requests, then `requests` more (JSON then streamed) under sampling."""
    for stream in (False, True):
        runner(soak_spec(url, api_key, 1000, stream=stream))
    start_mb = memory(pid).rss_kb / 1024
    half = requests // 2
    with RssSampler(pid, interval_s) as sampler:
        first = runner(soak_spec(url, api_key, half, stream=False))
        mid_mb = memory(pid).rss_kb / 1024
        second = runner(soak_spec(url, api_key, requests - half, stream=True))
    return SoakResult(
        requests=requests,
        responses=first.responses + second.responses,
        bad=first.bad + second.bad,
        socket_errors=first.socket_errors + second.socket_errors,
        rss_start_mb=round(start_mb, 2),
        rss_end_mb=sampler.samples[-1][1],
        rss_max_mb=sampler.peak_mb,
        rss_mid_mb=round(mid_mb, 2),
        samples=sampler.samples,
    )


@dataclass(frozen=True, slots=True)
class StreamPhase:
    """Repeated streamed requests; memory read before and after each (RSS let settle 0.5 s)."""

    name: str
    repeats: int
    ok: bool
    request_mb: float
    received_mb: float
    seconds: float
    rss_before_mb: float
    rss_after_mb: tuple[float, ...]
    """Settled RSS after each request."""
    peak_rise_mb: tuple[float, ...]
    """Each request's own peak above the settled RSS it started from (VmHWM reset before it;
    when the kernel refuses the reset, the process's peak so far)."""

    @property
    def kept_mb(self) -> float:
        """The median request's growth of the settled RSS: what each answer left behind."""
        steps, before = [], self.rss_before_mb
        for after in self.rss_after_mb:
            steps.append(after - before)
            before = after
        return median(steps)


@dataclass(frozen=True, slots=True)
class BigStreamResult:
    """The control phase, then the big one, on a freshly started target (so VmHWM is theirs)."""

    target: str
    control: StreamPhase
    big: StreamPhase

    @property
    def peak_growth_mb(self) -> float:
        """How far a big answer lifts the peak more than a tiny one does (medians, same request)."""
        return median(self.big.peak_rise_mb) - median(self.control.peak_rise_mb)

    @property
    def rss_growth_mb(self) -> float:
        """What a big answer leaves behind in the settled RSS (median over the big phase)."""
        return self.big.kept_mb

    @property
    def total_growth_mb(self) -> float:
        """Settled RSS after the last big answer minus before the first (steps included)."""
        return self.big.rss_after_mb[-1] - self.big.rss_before_mb

    @property
    def passed(self) -> bool:
        answer = self.big.received_mb
        kept_ok = self.rss_growth_mb < KEPT_LIMIT * answer
        return self.big.ok and kept_ok and self.peak_growth_mb < PEAK_LIMIT * answer

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "control": asdict(self.control),
            "big": asdict(self.big),
            "peak_growth_mb": round(self.peak_growth_mb, 2),
            "rss_growth_mb": round(self.rss_growth_mb, 2),
            "total_growth_mb": round(self.total_growth_mb, 2),
            "passed": self.passed,
        }


def big_prompt(total_mb: float, words: int = 10) -> str:
    """`words` words of equal length adding up to `total_mb`: the mock echoes them all."""
    word = "a" * int(total_mb * 1024 * 1024 / words)
    return " ".join([word] * words)


def settled_memory(pid: int, settle_s: float = 0.5) -> Memory:
    time.sleep(settle_s)
    return memory(pid)


def stream_phase(
    name: str, url: str, pid: int, api_key: str, body: bytes, repeats: int
) -> StreamPhase:
    spec = LoadSpec(
        url=url + "/v1/messages",
        concurrency=1,
        requests=1,
        body=body,
        api_key=api_key,
        expect=expected_marker(stream=True),
        timeout_s=120,
        deadline_s=120,
    )
    before = settled_memory(pid)
    runs, rss_after, peak_rise = [], [], []
    start_kb = before.rss_kb
    for _ in range(repeats):
        reset = reset_peak(pid)
        runs.append(run_loadgen(spec))
        after = settled_memory(pid)
        rise_kb = after.hwm_kb - start_kb if reset else after.hwm_kb - before.rss_kb
        rss_after.append(round(after.rss_kb / 1024, 2))
        peak_rise.append(round(rise_kb / 1024, 2))
        start_kb = after.rss_kb
    return StreamPhase(
        name=name,
        repeats=repeats,
        ok=all(r.responses == 1 and r.bad == 0 and r.socket_errors == 0 for r, _ in runs),
        request_mb=round(len(body) / 2**20, 2),
        received_mb=round(max(tally.body_bytes for _, tally in runs) / 2**20, 2),
        seconds=round(max(r.elapsed_s for r, _ in runs), 3),
        rss_before_mb=round(before.rss_kb / 1024, 2),
        rss_after_mb=tuple(rss_after),
        peak_rise_mb=tuple(peak_rise),
    )


def big_stream(
    target: str, url: str, pid: int, api_key: str, total_mb: float = 10.0, repeats: int = 5
) -> BigStreamResult:
    """Warm-up (one of each, not judged), control (big prompt, 1-token answer) `repeats`
    times, then the big answer `repeats` times."""
    prompt = big_prompt(total_mb)
    small = messages_body(stream=True, max_tokens=1, prompt=prompt)
    large = messages_body(stream=True, max_tokens=300, prompt=prompt)
    name = f"{total_mb:g} MB prompt"
    stream_phase("warm-up, big answer", url, pid, api_key, large, 1)
    stream_phase("warm-up, 1-token answer", url, pid, api_key, small, 1)
    control = stream_phase(f"{name}, 1-token answer", url, pid, api_key, small, repeats)
    big = stream_phase(f"{name}, {total_mb:g} MB answer", url, pid, api_key, large, repeats)
    return BigStreamResult(target, control, big)
