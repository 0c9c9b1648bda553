"""Covered-day ranges for the adherence chart, hand-checked: overlap shift, gaps, clipping to the period."""

from __future__ import annotations

from datetime import date

from interop.reports.timeline import covered_spans
from interop.web.charts import coverage_chart

D = date(2026, 1, 1).toordinal()


def test_overlap_shifts_forward_and_merges() -> None:
    # 30 days from Jan 1, refill on day 20 (10 days early) starts on day 30: one run of 60 days
    assert covered_spans([(D, 30), (D + 20, 30)], D, D + 364) == [(D, D + 59)]


def test_gap_stays_a_gap() -> None:
    assert covered_spans([(D, 10), (D + 15, 10)], D, D + 364) == [(D, D + 9), (D + 15, D + 24)]


def test_clipped_to_the_period() -> None:
    # a fill before the period still covers its tail; supply past the end is cut; fills after are ignored
    fills = [(D - 5, 10), (D + 360, 30), (D + 400, 30)]
    assert covered_spans(fills, D, D + 364) == [(D, D + 4), (D + 360, D + 364)]


def test_chart_draws_one_rect_per_span() -> None:
    svg = coverage_chart([("statin <b>", [(D, D + 9), (D + 15, D + 24)])], date(2026, 1, 1), date(2026, 12, 31), "t")
    assert svg.count('class="covered"') == 2
    assert "statin &lt;b&gt;" in svg and "<b>" not in svg
    assert svg.count('class="tick"') == 11  # Feb 1 .. Dec 1
