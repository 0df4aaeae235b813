"""Charts as hand-written SVG: stacked bars, a histogram with reference lines, a heatmap
and horizontal bars.

Pure: numbers and labels in, one ``<svg>`` string out — no JavaScript, no external
fonts or stylesheets, so a chart inlined in an HTML page works offline and prints, and
the same string converts to PNG (``cairosvg``).  Every chart carries ``role="img"``, a
``<title>`` and a ``<desc>`` so a screen reader can name it; the page adds a table with
the same numbers beside each chart.

Text widths are estimated (a CJK character is one em, a Latin one about 0.6 em): good
enough to place labels and legends without measuring fonts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# The page's CSS uses the same stack; a PNG renderer replaces it with one installed family.
FONT_STACK = "'Microsoft YaHei', 'PingFang SC', 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', sans-serif"
WIDTH = 680  # px: the printable width of A4 portrait (180 mm) at 96 dpi
INK = "#222"
MUTED = "#666"
GRID = "#ddd"
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    """One named row of values (a stack layer, a bar colour)."""

    name: str
    values: Sequence[float]
    color: str


@dataclass(frozen=True)
class RefLine:
    """A vertical reference line at ``x`` (in the histogram's units) with a label."""

    x: float
    label: str
    color: str = "#b2182b"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def text_width(text: str, size: float) -> float:
    """Estimated rendered width of ``text`` in px at font ``size``."""
    w = 0.0
    for ch in str(text):
        o = ord(ch)
        if o >= 0x2E80 or 0xFF00 <= o <= 0xFFEF:
            w += 1.0
        elif ch in "il.,:;|!'`":
            w += 0.3
        elif ch.isupper() or ch in "mwMW%@":
            w += 0.72
        else:
            w += 0.56
    return w * size


def nice_ticks(vmax: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``vmax`` (about ``n`` of them)."""
    if vmax <= 0 or not math.isfinite(vmax):
        return [0.0, 1.0]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if vmax >= 1 and step < 1:
        step = 1.0
    top = math.ceil(vmax / step - 1e-9) * step
    count = int(round(top / step))
    return [round(i * step, 10) for i in range(count + 1)]


def fmt_num(v: float) -> str:
    """1234 → "1,234"; 2.5 → "2.5"."""
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.1f}"


def contrast(color: str) -> str:
    """Black or white text on a fill colour (#rrggbb)."""
    c = color.lstrip("#")
    if len(c) != 6:
        return INK
    r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
    return INK if (0.299 * r + 0.587 * g + 0.114 * b) > 150 else "#fff"


def _open(width: float, height: float, title: str, desc: str, font: str, key: str | None) -> tuple[str, str]:
    uid = key or f"chart{next(_ids)}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" id="{_e(uid)}" '
            f'width="{width:g}" height="{height:g}" viewBox="0 0 {width:g} {height:g}" '
            f'aria-labelledby="{_e(uid)}-title {_e(uid)}-desc" font-family="{_e(font)}" font-size="12">'
            f'<title id="{_e(uid)}-title">{_e(title)}</title><desc id="{_e(uid)}-desc">{_e(desc)}</desc>'
            f'<rect width="{width:g}" height="{height:g}" fill="#fff"/>'
            f'<text x="{width / 2:g}" y="20" text-anchor="middle" font-size="15" font-weight="bold" '
            f'fill="{INK}" class="chart-title">{_e(title)}</text>')
    return head, "</svg>"


def _text(x: float, y: float, text: object, *, size: float = 12, anchor: str = "start", fill: str = INK,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"'
            f'{" " + extra if extra else ""}>{_e(text)}</text>')


def _legend(items: Sequence[tuple[str, str]], x0: float, y: float, width: float) -> tuple[str, float]:
    """A one- or multi-line legend of coloured squares; returns (svg, height used)."""
    out = []
    x, line = x0, 0
    for name, color in items:
        w = 16 + text_width(name, 12) + 14
        if x + w > x0 + width and x > x0:
            x, line = x0, line + 1
        yy = y + line * 18
        out.append(f'<rect x="{x:.1f}" y="{yy - 10:.1f}" width="11" height="11" fill="{color}" stroke="#999" '
                   f'stroke-width="0.5"/>')
        out.append(_text(x + 15, yy, name))
        x += w
    return "".join(out), (line + 1) * 18


def _y_axis(ticks: Sequence[float], left: float, right: float, y_of: Callable[[float], float],
            label: str | None) -> str:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" '
                   f'stroke-width="1"/>')
        out.append(_text(left - 6, y + 4, fmt_num(t), size=11, anchor="end", fill=MUTED))
    if label:
        yc = (y_of(ticks[0]) + y_of(ticks[-1])) / 2
        out.append(_text(14, yc, label, size=11, anchor="middle", fill=MUTED,
                         extra=f'transform="rotate(-90 14 {yc:.1f})"'))
    return "".join(out)


def _x_labels(labels: Sequence[str], centers: Sequence[float], y: float, slot: float) -> str:
    """Category labels under the bars; every k-th one when they would overlap."""
    if not labels:
        return ""
    widest = max(text_width(s, 11) for s in labels)
    step = max(1, math.ceil((widest + 6) / max(slot, 1)))
    out = []
    for i, (s, x) in enumerate(zip(labels, centers, strict=True)):
        if i % step and i != len(labels) - 1:
            continue
        if i != len(labels) - 1 and len(labels) - 1 - i < step and i % step == 0 and i:
            continue  # keep the last label clear of its neighbour
        out.append(_text(x, y, s, size=11, anchor="middle", fill=MUTED))
    return "".join(out)


# -- stacked bars ---------------------------------------------------------------------------
def stacked_bars(categories: Sequence[str], series: Sequence[Series], *, title: str, desc: str = "",
                 y_label: str | None = None, width: float = WIDTH, height: float = 300,
                 font: str = FONT_STACK, key: str | None = None, totals: bool = True) -> str:
    """Vertical bars, one per category, each stacked from ``series`` (bottom first)."""
    n = len(categories)
    legend, lh = _legend([(s.name, s.color) for s in series], 60, 44, width - 80)
    top = 44 + lh + (14 if totals else 0)
    bottom = height - 30
    left, right = 60.0, width - 16
    sums = [sum(float(s.values[i] or 0) for s in series) for i in range(n)]
    ticks = nice_ticks(max(sums, default=0))
    vmax = ticks[-1] or 1

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / vmax

    head, tail = _open(width, height, title, desc, font, key)
    out = [head, legend, _y_axis(ticks, left, right, y_of, y_label)]
    slot = (right - left) / max(n, 1)
    bw = max(1.0, min(44.0, slot * 0.72))
    centers = []
    for i, cat in enumerate(categories):
        cx = left + slot * (i + 0.5)
        centers.append(cx)
        base = 0.0
        for s in series:
            v = float(s.values[i] or 0)
            if v <= 0:
                continue
            y0, y1 = y_of(base), y_of(base + v)
            out.append(f'<rect x="{cx - bw / 2:.1f}" y="{y1:.1f}" width="{bw:.1f}" height="{max(y0 - y1, 0.5):.1f}" '
                       f'fill="{s.color}"><title>{_e(cat)} {_e(s.name)}: {fmt_num(v)}</title></rect>')
            base += v
        if totals and slot >= text_width(fmt_num(sums[i]), 10) + 2:
            out.append(_text(cx, y_of(sums[i]) - 4, fmt_num(sums[i]), size=10, anchor="middle", fill=MUTED))
    out.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="{INK}" stroke-width="1"/>')
    out.append(_x_labels(list(categories), centers, bottom + 16, slot))
    if not n:
        out.append(_text(width / 2, (top + bottom) / 2, "—", anchor="middle", fill=MUTED))
    out.append(tail)
    return "".join(out)


# -- histogram --------------------------------------------------------------------------------
def histogram(edges: Sequence[float], counts: Sequence[float], *, title: str, desc: str = "",
              colors: Sequence[str] | None = None, lines: Sequence[RefLine] = (), x_label: str | None = None,
              y_label: str | None = None, width: float = WIDTH, height: float = 300, font: str = FONT_STACK,
              key: str | None = None, last_open: bool = False) -> str:
    """Bars over the bins ``[edges[i], edges[i+1])``; ``lines`` are drawn at their x
    value with their label; ``last_open`` labels the last bin "≥ edge"."""
    nb = len(counts)
    top, bottom = 58.0, height - 42
    left, right = 60.0, width - 16
    lo, hi = float(edges[0]), float(edges[-1]) if len(edges) > 1 else float(edges[0]) + 1
    ticks = nice_ticks(max((float(c) for c in counts), default=0))
    vmax = ticks[-1] or 1

    def x_of(v: float) -> float:
        return left + (right - left) * (v - lo) / ((hi - lo) or 1)

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / vmax

    head, tail = _open(width, height, title, desc, font, key)
    out = [head, _y_axis(ticks, left, right, y_of, y_label)]
    for i in range(nb):
        x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
        c = float(counts[i])
        color = colors[i] if colors else "#4575b4"
        if c > 0:
            rng = f"{edges[i]:g}–{edges[i + 1] - 1:g}" if edges[i + 1] - edges[i] > 1 else f"{edges[i]:g}"
            if last_open and i == nb - 1:
                rng = f"≥{edges[i]:g}"
            out.append(f'<rect x="{x0 + 0.5:.1f}" y="{y_of(c):.1f}" width="{max(x1 - x0 - 1, 0.8):.1f}" '
                       f'height="{bottom - y_of(c):.1f}" fill="{color}"><title>{_e(rng)}: {fmt_num(c)}</title></rect>')
    out.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="{INK}" stroke-width="1"/>')
    # x ticks: the bin edges, thinned to fit
    slot = (right - left) / max(nb, 1)
    step = max(1, math.ceil(28 / max(slot, 1)))
    for i in range(0, nb + 1, step):
        x = x_of(edges[i])
        label = f"{edges[i]:g}" + ("+" if last_open and i == nb else "")
        if last_open and i == nb:
            continue
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="{INK}"/>')
        out.append(_text(x, bottom + 16, label, size=11, anchor="middle", fill=MUTED))
    if x_label:
        out.append(_text((left + right) / 2, height - 8, x_label, size=11, anchor="middle", fill=MUTED))
    # reference lines with labels staggered on two rows so neighbours never collide
    for j, ln in enumerate(sorted(lines, key=lambda r: r.x)):
        if not lo <= ln.x <= hi:
            continue
        x = x_of(ln.x)
        ly = 36 + (j % 2) * 14
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{ly + 3}" y2="{bottom}" stroke="{ln.color}" '
                   f'stroke-width="1.5" stroke-dasharray="5 3"/>')
        anchor = "end" if x > right - text_width(ln.label, 11) / 2 else (
            "start" if x < left + text_width(ln.label, 11) / 2 else "middle")
        out.append(_text(x, ly, ln.label, size=11, anchor=anchor, fill=ln.color))
    if not sum(float(c) for c in counts):
        out.append(_text(width / 2, (top + bottom) / 2, "—", anchor="middle", fill=MUTED))
    out.append(tail)
    return "".join(out)


# -- heatmap ------------------------------------------------------------------------------------
def _heat(v: float, vmax: float) -> str:
    """White → dark blue by share of the maximum."""
    t = 0.0 if vmax <= 0 else min(max(v / vmax, 0.0), 1.0) ** 0.5
    r = round(255 + (8 - 255) * t)
    g = round(255 + (69 - 255) * t)
    b = round(255 + (148 - 255) * t)
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(rows: Sequence[str], cols: Sequence[str], matrix: Sequence[Sequence[float]], *, title: str,
            desc: str = "", row_label: str | None = None, col_label: str | None = None,
            width: float = WIDTH, font: str = FONT_STACK, key: str | None = None,
            highlight: Sequence[tuple[int, int]] = ()) -> str:
    """A grid of counts coloured by size, the count written in each cell; cells listed
    in ``highlight`` (row, column) get a red outline."""
    nr, nc = len(rows), len(cols)
    lw = max((text_width(r, 11) for r in rows), default=40) + 12
    top = 44 + (18 if col_label else 0)
    col_h = max((text_width(c, 11) for c in cols), default=20)
    rotate = nc and (width - lw - 20) / nc < max((text_width(c, 11) for c in cols), default=0) + 6
    header_h = (min(col_h, 110) + 10) if rotate else 20
    left = lw + (18 if row_label else 0)
    pad = 12.0
    if rotate and nc:  # a rotated label leans right by half its length
        cw0 = (width - left - pad) / nc
        pad = max(pad, 0.5 * text_width(cols[-1], 11) + 8 - cw0 / 2)
    cw = (width - left - pad) / max(nc, 1)
    ch = 26.0
    grid_top = top + header_h
    height = grid_top + ch * nr + 16
    vmax = max((float(v) for row in matrix for v in row), default=0)
    head, tail = _open(width, height, title, desc, font, key)
    out = [head]
    if col_label:
        out.append(_text(left + cw * nc / 2, 40 + 12, col_label, size=11, anchor="middle", fill=MUTED))
    for j, c in enumerate(cols):
        cx = left + cw * (j + 0.5)
        if rotate:
            out.append(_text(cx + 4, grid_top - 6, c, size=11, anchor="start", fill=MUTED,
                             extra=f'transform="rotate(-60 {cx + 4:.1f} {grid_top - 6:.1f})"'))
        else:
            out.append(_text(cx, grid_top - 6, c, size=11, anchor="middle", fill=MUTED))
    if row_label:
        yc = grid_top + ch * nr / 2
        out.append(_text(12, yc, row_label, size=11, anchor="middle", fill=MUTED,
                         extra=f'transform="rotate(-90 12 {yc:.1f})"'))
    marks = set(highlight)
    for i, r in enumerate(rows):
        y = grid_top + ch * i
        out.append(_text(left - 6, y + ch / 2 + 4, r, size=11, anchor="end", fill=INK))
        for j in range(nc):
            v = float(matrix[i][j])
            fill = _heat(v, vmax)
            x = left + cw * j
            stroke = 'stroke="#d7191c" stroke-width="2.5"' if (i, j) in marks else 'stroke="#fff" stroke-width="1"'
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{cw:.1f}" height="{ch:.1f}" fill="{fill}" {stroke}>'
                       f'<title>{_e(r)} → {_e(cols[j])}: {fmt_num(v)}</title></rect>')
            if v and cw >= text_width(fmt_num(v), 10):
                out.append(_text(x + cw / 2, y + ch / 2 + 4, fmt_num(v), size=10, anchor="middle",
                                 fill=contrast(fill)))
    out.append(tail)
    return "".join(out)


# -- horizontal bars ------------------------------------------------------------------------------
def hbars(labels: Sequence[str], values: Sequence[float], *, title: str, desc: str = "",
          colors: Sequence[str] | None = None, value_labels: Sequence[str] | None = None,
          width: float = WIDTH, font: str = FONT_STACK, key: str | None = None,
          x_label: str | None = None, estimate: str | None = None) -> str:
    """One horizontal bar per label; negative values extend left of a zero line.

    ``estimate``: the bars are estimates, not facts — drawn hatched with a dashed
    outline, each value label starting with ``estimate`` (e.g. "预计") and a note under
    the bars saying so."""
    n = len(labels)
    lw = max((text_width(s, 12) for s in labels), default=40) + 14
    texts = list(value_labels) if value_labels is not None else [fmt_num(v) for v in values]
    vw = max((text_width(t, 11) for t in texts), default=20) + 10
    top = 40.0
    bh = 24.0
    if estimate:
        texts = [f"{estimate} {t}" for t in texts]
        vw = max((text_width(t, 11) for t in texts), default=20) + 10
    height = top + bh * n + (34 if x_label else 18) + (20 if estimate else 0)
    vals = [float(v) for v in values]
    neg = min(min(vals, default=0), 0)
    left, right = lw + (vw if neg < 0 else 0), width - vw
    pos = max(max(vals, default=0), 0)
    span = (pos - neg) or 1

    def x_of(v: float) -> float:
        return left + (right - left) * (v - neg) / span

    uid = key or f"chart{next(_ids)}"
    head, tail = _open(width, height, title, desc, font, uid)
    out = [head]
    zero = x_of(0)
    for i, (lab, v) in enumerate(zip(labels, vals, strict=True)):
        y = top + bh * i
        color = colors[i] if colors else "#4575b4"
        x0, x1 = sorted((zero, x_of(v)))
        out.append(_text(lw - 8, y + bh / 2 + 4, lab, anchor="end"))
        fill = (f'fill="#fff" stroke="{color}" stroke-width="1.2" stroke-dasharray="4 2" class="estimate"'
                if estimate else f'fill="{color}"')
        out.append(f'<rect x="{x0:.1f}" y="{y + 4:.1f}" width="{max(x1 - x0, 0.8):.1f}" height="{bh - 8:.1f}" '
                   f'{fill}><title>{_e(lab)}: {_e(texts[i])}</title></rect>')
        if estimate:
            out.append(_hatch(x0, y + 4, max(x1 - x0, 0.8), bh - 8, color))
        tx = x1 + 4 if v >= 0 else x0 - 4
        out.append(_text(tx, y + bh / 2 + 4, texts[i], size=11, anchor="start" if v >= 0 else "end", fill=MUTED))
    out.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{top + bh * n}" stroke="{INK}"/>')
    if x_label:
        out.append(_text((left + right) / 2, height - 8 - (20 if estimate else 0), x_label, size=11, anchor="middle",
                         fill=MUTED))
    if estimate:
        out.append(f'<rect x="{left:.1f}" y="{height - 21:.1f}" width="18" height="11" fill="#fff" '
                   f'stroke="{MUTED}" stroke-dasharray="3 2"/>')
        out.append(_hatch(left, height - 21, 18, 11, MUTED))
        out.append(_text(left + 24, height - 11, ESTIMATE_NOTE.get(estimate, ESTIMATE_NOTE["预计"]), size=11,
                         fill=MUTED, extra='class="estimate-note"'))
    out.append(tail)
    return "".join(out)


ESTIMATE_NOTE = {"预计": "斜线 = 预计值（尚无实际干预结果），不是实际数字",
                 "est.": "Hatched = estimate (no intervention results yet), not an actual figure"}


def _hatch(x: float, y: float, w: float, h: float, color: str, step: float = 5.0) -> str:
    """Diagonal hatch lines inside the box (x, y, w, h): the fill of an estimated
    figure.  Plain line segments cut to the box (no pattern or clip reference, so the
    page stays free of ``url(…)``)."""
    segs = []
    c = x - (y + h)
    while c < x + w - y:
        y1, y2 = max(y, x - c), min(y + h, x + w - c)
        if y2 > y1:
            segs.append(f"M{y1 + c:.1f} {y1:.1f}L{y2 + c:.1f} {y2:.1f}")
        c += step
    return (f'<path d="{"".join(segs)}" stroke="{_e(color)}" stroke-width="2" fill="none" class="hatch"/>'
            if segs else "")


__all__ = ["FONT_STACK", "WIDTH", "RefLine", "Series", "contrast", "fmt_num", "heatmap", "hbars", "histogram",
           "nice_ticks", "stacked_bars", "text_width"]
