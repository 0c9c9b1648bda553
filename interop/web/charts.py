"""Charts for the staff page as inline SVG drawn on the server: no script, no network fetch, scales with the
page (viewBox, width 100%). Text is escaped here; the templates insert the markup as is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

BAR_HEIGHT = 160
ROW_HEIGHT = 22
LABEL_WIDTH = 130


def bar_chart(bars: Sequence[tuple[str, int]], title: str, width: int = 640) -> str:
    """Vertical bars (label, value) with the value above each bar and the label below."""
    top, bottom = 18, 34
    count = max(len(bars), 1)
    peak = max((v for _, v in bars), default=0) or 1
    step = width / count
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {BAR_HEIGHT + top + bottom}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(bars):
        h = BAR_HEIGHT * value / peak
        x = i * step + step * 0.15
        y = top + BAR_HEIGHT - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" rx="2"/>')
        parts.append(f'<text class="val" x="{x + step * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle">{value}</text>')
        parts.append(
            f'<text class="lbl" x="{x + step * 0.35:.1f}" y="{top + BAR_HEIGHT + 14}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    parts.append(f'<line class="axis" x1="0" y1="{top + BAR_HEIGHT}" x2="{width}" y2="{top + BAR_HEIGHT}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _month_starts(first: date, last: date) -> list[date]:
    out: list[date] = []
    year, month = first.year, first.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        day = date(year, month, 1)
        if day > last:
            return out
        out.append(day)


def coverage_chart(rows: Sequence[tuple[str, Sequence[tuple[int, int]]]], first: date, last: date,
                   title: str, width: int = 720) -> str:
    """One band per drug over [first, last]: covered day ranges (inclusive ordinals) filled, gaps empty,
    with a tick at each month start."""
    days = (last - first).days + 1
    plot = width - LABEL_WIDTH
    height = ROW_HEIGHT * max(len(rows), 1) + 24
    scale = plot / days
    start = first.toordinal()
    parts = [
        f'<svg class="chart coverage" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, spans) in enumerate(rows):
        y = i * ROW_HEIGHT + 4
        covered = sum(b - a + 1 for a, b in spans)
        parts.append(f'<text class="lbl" x="0" y="{y + 13}">{escape(label)}</text>')
        parts.append(f'<rect class="gap" x="{LABEL_WIDTH}" y="{y}" width="{plot}" height="{ROW_HEIGHT - 6}"/>')
        for a, b in spans:
            x = LABEL_WIDTH + (a - start) * scale
            parts.append(
                f'<rect class="covered" x="{x:.1f}" y="{y}" width="{(b - a + 1) * scale:.1f}" '
                f'height="{ROW_HEIGHT - 6}"><title>{escape(label)}: {date.fromordinal(a)} to '
                f"{date.fromordinal(b)}</title></rect>"
            )
        parts.append(f'<desc>{escape(label)}: {covered} of {days} days covered</desc>')
    axis = ROW_HEIGHT * max(len(rows), 1) + 4
    for month in _month_starts(first, last):
        x = LABEL_WIDTH + (month.toordinal() - start) * scale
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{axis}"/>')
        parts.append(f'<text class="lbl" x="{x + 2:.1f}" y="{axis + 14}">{month.strftime("%b")}</text>')
    parts.append("</svg>")
    return "".join(parts)
