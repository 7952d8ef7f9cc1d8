"""Shared look of the report's figures: a title line naming the article figure a plot reproduces, a
mark for the default configuration, readable axis names, and a check for labels that overlap.

Every plotting function in :mod:`rdusim.report.plots` ends with ``_save``, which runs
:func:`label_overlaps` and prints one line per overlap (``rdusim: figure ...: labels overlap``) to
the job's log; the pipeline test fails on such a line, so a new figure inherits the check.
"""
from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

# Readable names of table columns used as figure axes (a column not listed keeps its name).
AXIS_NAMES = {
    "host_link_GBps": "DGX host link (GB/s)",
    "ddr_to_hbm_node_GBps": "SN40L node DDR-to-HBM (GB/s)",
    "ddr_to_hbm_GBps": "SN40L DDR-to-HBM per socket (GB/s)",
    "hbm_bandwidth_GBps": "SN40L HBM bandwidth per socket (GB/s)",
    "hbm_capacity_GB": "SN40L HBM per socket (GB)",
    "ddr_capacity_TB": "SN40L DDR per socket (TB)",
    "experts": "experts",
    "batch": "batch size",
    "gen": "output tokens",
    "zipf": "routing skew (Zipf)",
    "speedup": "speedup over DGX H100",
}
DEFAULT_COLOR = "#111111"
MIN_FONT = 7.0   # no label in a figure smaller than this (points)


def axis_name(column: str) -> str:
    """A column's name as an axis label."""
    return AXIS_NAMES.get(column, column.replace("_", " "))


def figure_title(fig, source: str, text: str, size: float = 11) -> None:
    """The figure's title: what it shows, after the article figure it reproduces (``source``: "Fig. 7",
    "Table 2") or, with an empty ``source``, "Beyond the article"."""
    head = f"Article {source}" if source else "Beyond the article"
    fig.suptitle(f"{head}: {text}", fontsize=size)


def _boxes(fig, renderer):
    """(name, display bbox, axes or None, kind) of every visible label in ``fig``."""
    out, seen = [], set()

    def add(artist, kind, ax=None):
        if artist is None or not artist.get_visible() or id(artist) in seen:
            return
        seen.add(id(artist))
        if hasattr(artist, "get_text") and not artist.get_text().strip():
            return
        bb = artist.get_window_extent(renderer)
        if bb.width > 0 and bb.height > 0:
            name = artist.get_text() if hasattr(artist, "get_text") else type(artist).__name__
            out.append((name[:40], bb, ax, kind))

    for t in fig.texts:
        add(t, "text")
    if getattr(fig, "_suptitle", None) is not None:
        add(fig._suptitle, "title")
    for leg in fig.legends:
        add(leg, "legend")
    for ax in fig.axes:
        for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
            add(t, "title")
        for t in ax.texts:
            add(t, "annotation", ax)
        if ax.get_legend() is not None:
            add(ax.get_legend(), "legend", ax)
    return out


def _on_a_curve(bb, ax) -> str | None:
    """The label of a named curve of ``ax`` that passes through the box ``bb`` (display coordinates)."""
    inner = bb.padded(-1.5)
    for line in ax.lines:
        label = line.get_label()
        if label.startswith("_") or not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) < 2:
            continue
        t = np.linspace(0, 1, 24)[:, None, None]
        pts = (xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2)
        inside = ((pts[:, 0] > inner.x0) & (pts[:, 0] < inner.x1) & (pts[:, 1] > inner.y0) & (pts[:, 1] < inner.y1))
        if inside.any():
            return label
    return None


def label_overlaps(fig) -> list[str]:
    """Pairs of labels (titles, axis names, annotations, legends) whose drawn boxes overlap, and
    annotations drawn across a named curve, each as one sentence; empty when every label is clear."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = _boxes(fig, renderer)
    found = []
    for i, (na, ba, axa, ka) in enumerate(boxes):
        for nb, bb, axb, kb in boxes[i + 1:]:
            if ka == kb == "title" and (axa is axb):
                continue
            if ba.padded(-1.0).overlaps(bb.padded(-1.0)):
                found.append(f"{na!r} and {nb!r}")
        if ka == "annotation" and axa is not None:
            curve = _on_a_curve(ba, axa)
            if curve:
                found.append(f"{na!r} lies on the curve {curve!r}")
    return found


def small_fonts(fig) -> list[str]:
    """Labels drawn smaller than :data:`MIN_FONT` points (legends and annotations included); draws the
    figure first unless it is drawn already (tick labels exist only after a draw)."""
    if fig.stale:
        fig.canvas.draw()
    small: dict[float, list[str]] = {}
    for t in fig.findobj(match=lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT:
            small.setdefault(t.get_fontsize(), []).append(repr(t.get_text()[:30]))
    return [f"{len(names)} labels at {size:g} pt (e.g. {names[0]})" for size, names in small.items()]


def mark_cell(ax, grid, row_value, col_value, label: str | None = None) -> bool:
    """Outline the cell of a seaborn heatmap of ``grid`` (a DataFrame) at (``row_value``, ``col_value``),
    the default configuration; False when the grid has no such cell."""
    rows, cols = list(grid.index), list(grid.columns)
    if row_value not in rows or col_value not in cols:
        return False
    ax.add_patch(Rectangle((cols.index(col_value), rows.index(row_value)), 1, 1, fill=False, lw=2.4,
                           edgecolor=DEFAULT_COLOR, zorder=5, label=label))
    return True
