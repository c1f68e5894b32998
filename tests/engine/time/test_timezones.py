"""Zone offsets over time and the runs in which a rollup's zone can serve a query's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.time.zones import Segment, aligned_runs, offset_segments, zone


def _t(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _on_minute(t: int) -> bool:
    return t % 60 == 0


def _on_hour(t: int) -> bool:
    return t % 3600 == 0


def _run_at(runs: tuple[tuple[int | None, int | None], ...], t: int) -> tuple[int | None, ...]:
    found = [r for r in runs if (r[0] is None or r[0] <= t) and (r[1] is None or t < r[1])]
    assert len(found) <= 1
    return found[0] if found else ()


def test_zone_returns_known_zone() -> None:
    assert zone("Europe/Berlin").key == "Europe/Berlin"


@pytest.mark.parametrize("name", ["Europe/Berln", "europe/berlin", "", "Europe", "../etc", "/x"])
def test_zone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown time zone '{name}'"):
        zone(name)


def test_zone_suggests_close_name() -> None:
    with pytest.raises(ValueError, match="did you mean 'Europe/Berlin'"):
        zone("Europe/Berln")


def test_offset_segments_fixed_zones_have_one_segment() -> None:
    assert offset_segments("UTC") == (Segment(None, None, 0),)
    assert offset_segments("Etc/GMT+5") == (Segment(None, None, -5 * 3600),)


def test_offset_segments_berlin_history_and_dst() -> None:
    segments = offset_segments("Europe/Berlin")
    # LMT +0:53:28 until 1893-04-01 00:00 LMT, then CET.
    assert segments[0] == Segment(None, _t("1893-03-31T23:06:32"), 3208)
    assert segments[1].start == _t("1893-03-31T23:06:32") and segments[1].offset == 3600
    assert Segment(_t("2026-03-29T01:00"), _t("2026-10-25T01:00"), 7200) in segments
    assert Segment(_t("2025-10-26T01:00"), _t("2026-03-29T01:00"), 3600) in segments
    # Contiguous, and each segment changes the offset.
    for before, after in zip(segments, segments[1:], strict=False):
        assert before.end == after.start and before.offset != after.offset
    assert segments[-1].end is None


def test_offset_segments_is_cached() -> None:
    assert offset_segments("America/New_York") is offset_segments("America/New_York")


def test_aligned_runs_same_zone_is_everything() -> None:
    assert aligned_runs("UTC", "UTC", None, lambda t: False) == ((None, None),)
    assert aligned_runs("Asia/Kolkata", "Asia/Kolkata", 3600, lambda t: False) == ((None, None),)


def test_aligned_runs_rejects_unknown_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        aligned_runs("Mars/Olympus", "UTC", None, _on_hour)


def test_aligned_runs_berlin_on_utc_hours_since_1893() -> None:
    runs = aligned_runs("Europe/Berlin", "UTC", 3600, _on_hour)
    # Every Berlin offset since LMT ended is whole hours and changes on a UTC hour.
    assert runs == ((_t("1893-03-31T23:06:32"), None),)


def test_aligned_runs_berlin_never_matches_utc_days() -> None:
    assert aligned_runs("Europe/Berlin", "UTC", None, lambda t: True) == ()


def test_aligned_runs_transition_off_boundary_splits_run() -> None:
    runs = aligned_runs("Europe/Berlin", "UTC", 3600, lambda t: t != _t("2026-03-29T01:00"))
    assert _run_at(runs, _t("2026-03-29T00:59")) == (
        _t("1893-03-31T23:06:32"),
        _t("2026-03-29T01:00"),
    )
    assert _run_at(runs, _t("2026-03-29T01:00")) == (_t("2026-03-29T01:00"), None)


def test_aligned_runs_london_matches_utc_days_in_winter() -> None:
    runs = aligned_runs("Europe/London", "UTC", None, lambda t: True)
    assert _run_at(runs, _t("2026-01-01T00:00")) == (_t("2025-10-26T01:00"), _t("2026-03-29T01:00"))
    assert _run_at(runs, _t("2026-07-01T00:00")) == ()
    assert _run_at(runs, _t("2026-12-01T00:00")) == (_t("2026-10-25T01:00"), _t("2027-03-28T01:00"))
    # Before 1847-12-01 London kept LMT (-0:01:15).
    assert runs[0][0] == _t("1847-12-01T00:01:15")


def test_aligned_runs_kolkata_half_hour_offset() -> None:
    assert aligned_runs("Asia/Kolkata", "UTC", 3600, _on_hour) == ()
    # Madras time (+5:21:10) ended 1906-01-01; IST's wartime +6:30 switches fall on minutes.
    assert aligned_runs("Asia/Kolkata", "UTC", 60, _on_minute) == (
        (_t("1905-12-31T18:38:50"), None),
    )
    minute_runs = aligned_runs("Asia/Kolkata", "UTC", 60, lambda t: t != _t("1945-10-14T17:30"))
    assert minute_runs[-1] == (_t("1945-10-14T17:30"), None)


def test_aligned_runs_lord_howe_only_in_its_whole_hour_summer() -> None:
    # Lord Howe is +10:30 in winter and +11 (30-minute DST) in summer.
    runs = aligned_runs("Australia/Lord_Howe", "UTC", 3600, _on_hour)
    assert _run_at(runs, _t("2026-07-01T00:00")) == ()
    assert _run_at(runs, _t("2026-01-01T00:00")) == (_t("2025-10-04T15:30"), _t("2026-04-04T15:00"))
    assert aligned_runs("Australia/Lord_Howe", "UTC", None, lambda t: True) == ()
    # Half-hour buckets line up whenever the zone is on standard time zone offsets.
    half_hour_runs = aligned_runs("Australia/Lord_Howe", "UTC", 1800, lambda t: t % 1800 == 0)
    assert _run_at(half_hour_runs, _t("2026-07-01T00:00"))[1] is None


def test_aligned_runs_two_dst_zones_with_same_rules() -> None:
    # Paris and Berlin agree since 1980 and switch together at 01:00 UTC, a UTC-hour boundary
    # but not a local midnight: day runs split at each switch, hour runs do not.
    day_runs = aligned_runs("Europe/Berlin", "Europe/Paris", None, lambda t: t % 86400 == 82800)
    assert _run_at(day_runs, _t("2026-03-29T00:00")) == (
        _t("2025-10-26T01:00"),
        _t("2026-03-29T01:00"),
    )
    hour_runs = aligned_runs("Europe/Berlin", "Europe/Paris", 3600, _on_hour)
    assert _run_at(hour_runs, _t("2026-03-29T00:00"))[1] is None


def test_aligned_runs_of_equal_offsets_end_where_offsets_stop_being_scanned() -> None:
    # London still switches to summer time in 2199: "offsets equal" cannot be promised past
    # the scanned years, so its last winter run with UTC ends there; whole hours can.
    from engine.time.zones import SCAN_END

    assert aligned_runs("Europe/London", "UTC", None, lambda t: True)[-1][1] == SCAN_END
    assert aligned_runs("Europe/London", "UTC", 3600, _on_hour)[-1][1] is None
