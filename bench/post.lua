-- wrk script: POST one Messages body per request, stop after a number of responses, report JSON.
--
-- Arguments (after `--`): BODY_FILE LIMIT API_KEY EXPECT [NAME VALUE]...
--   every response must be 200 and contain EXPECT (e.g. "message_stop" for a stream),
--   otherwise it counts as bad. After LIMIT responses the thread stops and prints
--   BENCH_STOP; the harness then sends SIGINT so wrk ends at once and done() prints
--   BENCH_JSON with real per-request latency percentiles (microseconds).
-- Run with -t1: the counters and the clock are per thread.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local limit, expect = 0, ""
seen, bad, started, finished = 0, 0, 0, 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["content-type"] = "application/json"
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.headers["x-api-key"] = args[3]
  limit = tonumber(args[2])
  expect = args[4]
  for i = 5, #args - 1, 2 do
    wrk.headers[args[i]] = args[i + 1]
  end
  started = now()
end

function response(status, headers, body)
  seen = seen + 1
  if status ~= 200 or not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
  if seen == limit then
    finished = now()
    io.write("BENCH_STOP\n")
    io.flush()
    wrk.thread:stop()
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local thread = threads[1]
  local ended = thread:get("finished")
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"responses":%d,"bad":%d,"elapsed_s":%.6f,"requests":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    thread:get("seen"), thread:get("bad"),
    (ended > 0 and ended or now()) - thread:get("started"),
    summary.requests, errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
