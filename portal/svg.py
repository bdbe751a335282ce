"""Server-rendered SVG: the earnings chart and a piano roll of a symbolic generation.

Written out here rather than drawn with matplotlib: an SVG of a few dozen rectangles is
simpler than a figure, is sharp at any zoom, needs no plotting state shared between request
threads, and its labels are the stored Decimal amounts as text (pixel positions are the only
floats, and they carry no money).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from decimal import Decimal
from html import escape
from pathlib import Path

PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0550ae", "#57606a"]


def earnings_chart(rows: list[dict], currency: str, max_series: int = 7) -> str:
    """Stacked bars per period, one colour per key (work, platform or right type). `rows`:
    {period, key, amount} in one currency, amounts as stored. Keys beyond `max_series` (by
    total) are drawn together as "other"; the table beside the chart lists every key."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        totals[r["key"]] += r["amount"]
    keys = sorted(totals, key=lambda k: (-totals[k], k))
    shown = keys[:max_series]
    periods = sorted({r["period"] for r in rows})
    stacks: dict[str, dict[str, Decimal]] = {p: defaultdict(Decimal) for p in periods}
    for r in rows:
        stacks[r["period"]][r["key"] if r["key"] in shown else "other"] += r["amount"]
    series = shown + (["other"] if len(keys) > max_series else [])
    width, height, left, bottom, top = 720, 300, 90, 40, 20
    peak = max((sum(s.values(), Decimal(0)) for s in stacks.values()), default=Decimal(0)) or Decimal(1)
    plot_h = height - bottom - top
    bar_w = min(80, (width - left - 180) / max(len(periods), 1) * 0.6)
    step = (width - left - 180) / max(len(periods), 1)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" role="img" aria-label="earnings by month">'),
             '<style>text{font:12px sans-serif;fill:#24292f}</style>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 170}" y2="{height - bottom}" stroke="#57606a"/>',
             f'<text x="{left - 8}" y="{top + 4}" text-anchor="end">{escape(str(peak))}</text>',
             f'<text x="{left - 8}" y="{height - bottom}" text-anchor="end">0 {escape(currency)}</text>']  # fmt: skip
    for i, period in enumerate(periods):
        x = left + i * step + (step - bar_w) / 2
        y = float(height - bottom)
        for j, key in enumerate(series):
            value = stacks[period].get(key, Decimal(0))
            if value <= 0:
                continue
            h = float(value / peak) * plot_h
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(key)} {escape(period)}: '
                         f'{escape(str(value))} {escape(currency)}</title></rect>')  # fmt: skip
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(period)}</text>')
    for j, key in enumerate(series):
        y = top + j * 18
        parts.append(f'<rect x="{width - 160}" y="{y}" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
                     f'<text x="{width - 142}" y="{y + 10}">{escape(key[:24])}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


_PITCH, _DUR = re.compile(r"^<p:(\d{1,3})>$"), re.compile(r"^<d:([0-9.]{1,8})>$")


def vocabulary(model_path: str | None, home: Path) -> list[str] | None:
    """The model version's token strings (tokenizer.json in its folder, the adapter protocol's
    `<p:60> <d:0.5>` convention), read only from inside TRIBUTARY_HOME."""
    if not model_path:
        return None
    path = (Path(model_path) / "tokenizer.json").resolve()
    if not path.is_relative_to(home.resolve()) or not path.is_file() or path.stat().st_size > 5_000_000:
        return None
    try:
        vocab = json.loads(path.read_text())["vocab"]
    except (ValueError, KeyError, TypeError):
        return None
    return [str(t) for t in vocab] if isinstance(vocab, list) else None


def notes(tokens: list[int], vocab: list[str]) -> list[tuple[float, float, int]]:
    """(onset, duration, pitch) in quarter notes: a pitch or rest token followed by its duration."""
    out, t, pending = [], 0.0, None
    for i in tokens:
        tok = vocab[i] if 0 <= i < len(vocab) else ""
        if (m := _PITCH.match(tok)) is not None:
            pending = int(m.group(1))
        elif tok == "<rest>":
            pending = -1
        elif (m := _DUR.match(tok)) is not None and pending is not None:
            d = float(m.group(1))
            if pending >= 0:
                out.append((t, d, pending))
            t += d
            pending = None
    return out


def piano_roll(events: list[tuple[float, float, int]], title: str) -> str:
    if not events:
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">'
                'no notes</text></svg>')  # fmt: skip
    low, high = min(p for *_, p in events) - 2, max(p for *_, p in events) + 2
    end = max(o + d for o, d, _ in events)
    width, row = 720, 8
    height = (high - low + 1) * row + 30
    sx = (width - 50) / end
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
              f'aria-label="piano roll of {escape(title)}"><style>text{{font:10px sans-serif}}</style>'),
             f'<rect x="40" y="0" width="{width - 40}" height="{height - 30}" fill="#f6f8fa"/>']  # fmt: skip
    for pitch in range(low, high + 1):
        if pitch % 12 == 0:
            y = (high - pitch) * row
            parts.append(f'<text x="2" y="{y + row}">C{pitch // 12 - 1}</text>'
                         f'<line x1="40" y1="{y + row}" x2="{width}" y2="{y + row}" stroke="#d0d7de"/>')
    for onset, dur, pitch in events:
        parts.append(f'<rect x="{40 + onset * sx:.1f}" y="{(high - pitch) * row}" width="{max(dur * sx - 1, 1):.1f}" '
                     f'height="{row - 1}" fill="#1f6feb"/>')  # fmt: skip
    parts.append(f'<text x="40" y="{height - 10}">{escape(title)} · {end:g} quarter notes</text></svg>')
    return "".join(parts)
