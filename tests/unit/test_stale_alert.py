"""The stale-key alert names each key at most once a day, never its secret."""

from __future__ import annotations

from dataclasses import replace

from bastion.alerts.stale_keys import named_today, stale_alert, utc_day
from bastion.stores.base import KeyRow

AT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
A = KeyRow("aaaaaaaaaa", "f" * 64, "prod", "ana@x.io", "billing", AT - 100 * 86400)
B = replace(A, key_id="bbbbbbbbbb", owner="bo@x.io", name="")


def test_alert_names_keys_owners_and_reasons() -> None:
    alert = stale_alert([(B, "unused 31d > 30d"), (A, "age 100d > 90d")], set(), AT)
    assert alert is not None and alert.severity == "warning"
    assert "aaaaaaaaaa (ana@x.io, billing: age 100d > 90d)" in alert.summary
    assert "bbbbbbbbbb (bo@x.io, unnamed: unused 31d > 30d)" in alert.summary
    assert alert.details["key_ids"] == "aaaaaaaaaa,bbbbbbbbbb" and alert.details["count"] == 2
    assert A.key_hash not in str(alert.to_json())


def test_keys_named_today_are_left_out_and_a_repeat_has_the_same_dedup_key() -> None:
    first = stale_alert([(A, "age")], set(), AT)
    assert first is not None
    assert named_today([first], utc_day(AT + 3600)) == {"aaaaaaaaaa"}
    assert named_today([first], utc_day(AT + 86400)) == set()  # a new day names it again
    assert stale_alert([(A, "age")], {"aaaaaaaaaa"}, AT + 60) is None
    later = stale_alert([(A, "age"), (B, "idle")], {"aaaaaaaaaa"}, AT + 60)
    assert later is not None and later.details["key_ids"] == "bbbbbbbbbb"
    again = stale_alert([(A, "age")], set(), AT + 7200)  # e.g. a second process, same day
    assert again is not None and again.dedup_key == first.dedup_key


def test_a_long_list_is_cut_to_the_summary_limit() -> None:
    many = [(replace(A, key_id=f"{i:010d}"), "age 100d > 90d") for i in range(100)]
    alert = stale_alert(many, set(), AT)
    assert alert is not None and len(alert.summary) == 1024 and alert.details["count"] == 100
