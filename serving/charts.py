"""Charts of the managers' page as SVG, drawn on the server: no script, no network, readable at any width."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = {"booked": "#1a7f37", "pipeline": "#1f6feb", "new_deals": "#e49b0f", "range": "#57606a",
           "fixed": "#d1242f", "trend": "#1f6feb"}


def money(value: float) -> str:
    """1234567 -> 1.23 M; 12345 -> 12.3 k."""
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:.2f} B"
    if size >= 1e6:
        return f"{value / 1e6:.2f} M"
    if size >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def bookings_bars(labels: Sequence[str], booked: Sequence[float], pipeline: Sequence[float],
                  new_deals: Sequence[float], p10: Sequence[float], p90: Sequence[float],
                  fixed: Sequence[float]) -> str:
    """Stacked bars per period (booked, open deals, new deals) with the P10-P90 range and the fixed forecast."""
    width, height, left, bottom, top = 640, 260, 70, 30, 12
    top_value = max([*p90, *(b + f for b, f in zip(booked, fixed)), 1.0]) * 1.08
    slot = (width - left - 10) / max(len(labels), 1)
    bar = slot * 0.5

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / top_value)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Bookings forecast by period" '
             'xmlns="http://www.w3.org/2000/svg" class="chart">']
    for tick in range(5):
        value = top_value * tick / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#d0d7de"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11">{money(value)}</text>')
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar) / 2
        base = 0.0
        for name, value in (("booked", booked[i]), ("pipeline", pipeline[i]), ("new_deals", new_deals[i])):
            if value > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y(base + value):.1f}" width="{bar:.1f}" '
                             f'height="{y(base) - y(base + value):.1f}" fill="{COLOURS[name]}">'
                             f'<title>{escape(label)} {name.replace("_", " ")}: {money(value)}</title></rect>')
            base += value
        mid = x + bar / 2
        parts.append(f'<line x1="{mid:.1f}" x2="{mid:.1f}" y1="{y(p90[i]):.1f}" y2="{y(p10[i]):.1f}" '
                     f'stroke="{COLOURS["range"]}" stroke-width="2"/>')
        for v in (p10[i], p90[i]):
            parts.append(f'<line x1="{mid - 8:.1f}" x2="{mid + 8:.1f}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                         f'stroke="{COLOURS["range"]}" stroke-width="2"/>')
        level = booked[i] + fixed[i]
        parts.append(f'<line x1="{x - 4:.1f}" x2="{x + bar + 4:.1f}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
                     f'stroke="{COLOURS["fixed"]}" stroke-width="2" stroke-dasharray="5 3">'
                     f'<title>fixed percentages: {money(level)}</title></line>')
        parts.append(f'<text x="{mid:.1f}" y="{height - 10}" text-anchor="middle" font-size="12">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend_line(days: Sequence[str], expected: Sequence[float], p10: Sequence[float], p90: Sequence[float],
               actual_so_far: Sequence[float]) -> str:
    """The period's forecast as it moved, day by day, with its range and what was booked by then."""
    width, height, left, bottom, top = 640, 220, 70, 30, 12
    if not days:
        return ""
    top_value = max([*p90, *expected, *actual_so_far, 1.0]) * 1.08
    step = (width - left - 20) / max(len(days) - 1, 1)

    def xy(i: int, value: float) -> str:
        return f"{left + step * i:.1f},{top + (height - top - bottom) * (1 - value / top_value):.1f}"

    band = " ".join([xy(i, v) for i, v in enumerate(p90)] + [xy(i, v) for i, v in reversed(list(enumerate(p10)))])
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="How the forecast moved" '
             'xmlns="http://www.w3.org/2000/svg" class="chart">',
             f'<polygon points="{band}" fill="{COLOURS["trend"]}" opacity="0.15"/>',
             f'<polyline points="{" ".join(xy(i, v) for i, v in enumerate(expected))}" fill="none" '
             f'stroke="{COLOURS["trend"]}" stroke-width="2"/>',
             f'<polyline points="{" ".join(xy(i, v) for i, v in enumerate(actual_so_far))}" fill="none" '
             f'stroke="{COLOURS["booked"]}" stroke-width="2"/>']
    for tick in range(5):
        value = top_value * tick / 4
        yy = top + (height - top - bottom) * (1 - value / top_value)
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11">{money(value)}</text>')
    for i in (0, len(days) - 1):
        parts.append(f'<text x="{left + step * i:.1f}" y="{height - 10}" text-anchor="middle" font-size="11">'
                     f'{escape(days[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)
