"""HTML pages for the Snakemake report: every result table as a readable HTML table, and a front page.

Snakemake's report shows an HTML result inline (a CSV only downloads), so each table under
``results/tables`` and ``results/validation`` is rendered here to a small self-contained page and
registered with ``report()``. The front page summarises ``claims.csv`` (passes, fails, calibrated
claims and why each failing claim fails) and the article's Table 2 with a pass/fail mark per cell.
"""
from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd

from rdusim.report.stamp import stamp_meta, stamp_sentence
from rdusim.scenarios.coe import load_profile

# Tables longer than this are shown in part (the CSV has every row; the page says which rows it shows).
MAX_ROWS = 400
# Expert counts kept when a long table sweeps experts: a 1-2-5 series.
EXPERT_SERIES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 13px; margin: 12px;
       color: #1f2328; }
h1 { font-size: 18px; margin: 0 0 8px 0; } h2 { font-size: 15px; margin: 18px 0 6px 0; }
p.note { color: #57606a; margin: 4px 0 8px 0; }
div.scroll { max-height: 80vh; overflow: auto; margin: 4px 0 12px 0; border: 1px solid #d0d7de; width: max-content;
             max-width: 100%; }
table { border-collapse: separate; border-spacing: 0; }
th, td { border-right: 1px solid #d0d7de; border-bottom: 1px solid #d0d7de; padding: 3px 7px; text-align: right;
         vertical-align: top; white-space: nowrap; background: #fff; }
th { background: #f6f8fa; }
div.scroll thead th { position: sticky; top: 0; z-index: 2; }
div.scroll tbody td:first-child { position: sticky; left: 0; z-index: 1; box-shadow: 1px 0 0 #d0d7de; }
div.scroll thead th:first-child { left: 0; z-index: 3; }
td.text, th.text { text-align: left; white-space: normal; min-width: 16em; max-width: 30em; }
td.label, th.label { text-align: left; }
td.text details summary { cursor: pointer; color: #57606a; }
.pass { background: #dafbe1; } .fail { background: #ffebe9; } .other { background: #f6f8fa; }
span.count { font-weight: 600; }
ul.why li { margin-bottom: 5px; }
div.scroll.short { max-height: 30vh; }
ol.notes { margin: 0 0 12px 0; padding-left: 2.2em; max-width: 60em; } ol.notes li { margin-bottom: 3px; }
"""

STATUS_MARK = {"pass": "\u2713 pass", "fail": "\u2717 fail"}
# Boolean columns where true is good: shown as a check mark or a cross. Other booleans (one_node_oom,
# ...) read yes / no, so a mark never praises a failure.
GOOD_WHEN_TRUE = ("pass", "fits", "ok")
# Text longer than this folds into a click-to-open cell; repeated long text becomes a numbered note.
FOLD_CHARS = 60
SOURCES_LEGEND = ("[A]: the IEEE Micro article, Prabhakar et al., <i>Composition of Experts on the SN40L "
                  "Reconfigurable Dataflow Unit</i>; [P]: its conference version, arXiv 2405.07518.")


def _page(title: str, body: str, head: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n{head}<title>{html.escape(title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def human_bytes(value: float) -> str:
    """A byte count in SI units (kB, MB, GB, TB; 1 GB = 1e9 bytes), 4 significant digits."""
    v = float(value)
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.4g} {unit}"
    return f"{v:.4g} B"


def _is_bytes(column: str) -> bool:
    return "bytes" in column.split("_")


def _good_when_true(column: str) -> bool:
    return column in GOOD_WHEN_TRUE or column.endswith(tuple(f"_{g}" for g in GOOD_WHEN_TRUE))


def _fmt(value, column: str = "") -> str:
    """A cell as a reader wants it: 4 significant digits and no exponent from 1e-3 to 1e15 (thousands
    separated), byte counts in SI units, NaN blank, booleans as a mark (columns true-is-good) or yes/no."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        if _good_when_true(column):
            return "\u2713" if value else "\u2717"
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer, float, np.floating)):
        v = float(value)
        if _is_bytes(column) and abs(v) >= 1e3:
            return human_bytes(v)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}" if abs(v) >= 10000 else str(int(v))
        if abs(v) >= 1000 and abs(v) < 1e15:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(value)


def _cell_class(column: str, value) -> str:
    """Pass/fail colouring for status-like columns (``status``, ``pass``)."""
    if column == "status":
        return {"pass": "pass", "fail": "fail"}.get(str(value), "other")
    if column == "pass" and isinstance(value, (bool, np.bool_)):
        return "pass" if value else "fail"
    return ""


def _long_text_notes(frame: pd.DataFrame, text_cols: set) -> dict[str, int]:
    """Long text that repeats in a column: numbered once under the table instead of in every cell."""
    notes: dict[str, int] = {}
    for col in frame.columns:
        if col not in text_cols:
            continue
        counts = frame[col].dropna().astype(str).value_counts()
        for text, n in counts.items():
            if n > 1 and len(text) > FOLD_CHARS and text not in notes:
                notes[text] = len(notes) + 1
    return notes


def _text_cell(text: str, notes: dict[str, int]) -> str:
    if text in notes:
        return f"see note {notes[text]}"
    if len(text) > FOLD_CHARS:
        cut = text[:FOLD_CHARS - 15].rsplit(" ", 1)[0]
        return (f"<details><summary>{html.escape(cut)} \u2026</summary>{html.escape(text[len(cut):])}</details>")
    return html.escape(text)


def _text_columns(frame: pd.DataFrame) -> set:
    return {c for c in frame.columns if pd.api.types.is_string_dtype(frame[c]) or pd.api.types.is_object_dtype(frame[c])}


def _wrapping(frame: pd.DataFrame, text_cols: set) -> set:
    """Text columns with sentences (wrapped, min 16em); shorter text stays on one line."""
    return {c for c in text_cols if frame[c].dropna().astype(str).str.len().max() > 28}


def table_html(frame: pd.DataFrame, box: str = "scroll") -> str:
    """``frame`` as an HTML table in a scrolling box whose header row and first column stay in view (text
    columns left-aligned, long text folded, repeated long text numbered once as a note under the table,
    pass/fail cells coloured)."""
    text_cols = _text_columns(frame)
    wrapping = _wrapping(frame, text_cols) if len(frame) else set()
    notes = _long_text_notes(frame, text_cols)

    def kind(col):
        return "text" if col in wrapping else "label" if col in text_cols else ""
    head = "".join(f"<th{f' class={chr(34)}{kind(c)}{chr(34)}' if kind(c) else ''}>{html.escape(str(c))}</th>"
                   for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False, name=None):
        cells = []
        for col, v in zip(frame.columns, values):
            classes = [c for c in (_cell_class(col, v), kind(col)) if c]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            shown = STATUS_MARK.get(v, v) if col == "status" else v
            text = _fmt(shown, str(col))
            cells.append(f"<td{attr}>{_text_cell(text, notes) if col in text_cols else html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = (f"<div class=\"{box}\"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows)
             + "\n</tbody>\n</table></div>")
    if notes:
        table += "\n<ol class=\"notes\">" + "".join(f"<li>{html.escape(t)}</li>" for t in notes) + "</ol>"
    return table


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def shown_rows(frame: pd.DataFrame, max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, str]:
    """The rows of a long table that its page shows, and a sentence saying which."""
    if len(frame) <= max_rows:
        return frame, ""
    part, how = frame, []
    if "experts" in frame.columns:
        series = part[part["experts"].isin(EXPERT_SERIES)]
        if len(series):
            part = series
            how.append("expert counts 1, 2, 5, 10, 20, 50, ...")
    if len(part) > max_rows:
        step = math.ceil(len(part) / max_rows)
        part = part.iloc[::step]
        how.append(f"every {_ordinal(step)} row")
    return part, (f"Showing {len(part):,} of {len(frame):,} rows ({', then '.join(how)}); "
                  "the CSV file has every row.")


def page_claims(name: str, claims: pd.DataFrame) -> pd.DataFrame:
    """The article's claims that a table page reproduces: ids starting with the page's figure or table
    (``fig8_...`` for ``fig8_footprint``) or a ``source`` naming it (``Fig. 8``, ``Table 2``)."""
    m = re.match(r"(fig|table)(\d+)", name)
    if m is None or claims is None or not len(claims):
        return claims.iloc[0:0] if claims is not None else pd.DataFrame()
    kind, num = m.groups()
    word = r"Fig(?:ure)?\.?" if kind == "fig" else r"Table"
    by_source = claims.get("source", pd.Series("", index=claims.index)).fillna("").astype(str).str.contains(
        rf"\b{word}\s*{num}\b", regex=True)
    return claims[claims["id"].astype(str).str.startswith(f"{kind}{num}") | by_source]


def table_page(frame: pd.DataFrame, title: str, source: str, claims: pd.DataFrame | None = None) -> str:
    """A standalone page with one result table (long tables shown in part). With ``claims`` (the rows
    of claims.csv this page reproduces, :func:`page_claims`), the article's value and the reproduced one
    open the page."""
    part, note = shown_rows(frame)
    intro = f"<p class=\"note\">{html.escape(source)}: {len(frame):,} rows. {html.escape(note)}</p>"
    body = [f"<h1>{html.escape(title)}</h1>", intro]
    if claims is not None and len(claims):
        cols = [c for c in ("claim", "paper", "reproduced", "status", "basis") if c in claims.columns]
        body += ["<h2>The article's values on this page</h2>", table_html(claims[cols].reset_index(drop=True), "scroll short"),
                 "<h2>The reproduced table</h2>"]
    body.append(table_html(part))
    shown_text = [f[c] for f in (frame, claims if claims is not None else frame) for c in _text_columns(f)]
    if any(col.astype(str).str.contains(r"\[[AP]\]", regex=True).any() for col in shown_text):
        body.append(f"<p class=\"note\" id=\"sources\">{SOURCES_LEGEND}</p>")
    return _page(title, "\n".join(body))


# ----------------------------------------------------------------------------- front page
TABLE2_LABELS = {
    "overall_bs8_20tok": "Overall speedup, BS 8, 20 tokens",
    "overall_bs1_20tok": "Overall speedup, BS 1, 20 tokens",
    "expert_bs1_20tok": "Expert speedup, BS 1, 20 tokens",
    "overall_bs8_200tok": "Overall speedup, BS 8, 200 tokens",
    "overall_bs1_200tok": "Overall speedup, BS 1, 200 tokens",
    "expert_bs1_200tok": "Expert speedup, BS 1, 200 tokens",
    "model_switching": "Model switching time",
    "oom_150_experts": "150 experts",
}


def claim_counts(claims: pd.DataFrame) -> dict[str, int]:
    """Claims per status (pass, fail, not modelled) and, where ``claims.csv`` has a ``basis`` column,
    how many are calibrated (basis ``calibrated: ...``) or inputs (basis ``input``)."""
    status = claims["status"].astype(str)
    counts = {"total": len(claims), "pass": int((status == "pass").sum()), "fail": int((status == "fail").sum()),
              "not modelled": int((status == "not modelled").sum())}
    if "basis" in claims.columns:
        basis = claims["basis"].fillna("").astype(str).str.strip()
        counts["calibrated"] = int(basis.str.startswith("calibrated").sum())
        counts["input"] = int((basis == "input").sum())
        counts["predicted"] = int((basis == "predicted").sum())
    return counts


def why(row: pd.Series) -> str:
    """One sentence of why a claim fails: the ``why`` column where there is one, else the ``note``
    (what was compared, labelled as such)."""
    text = row.get("why")
    if isinstance(text, str) and text.strip():
        return text.strip()
    text = row.get("note")
    if isinstance(text, str) and text.strip():
        return "no explanation recorded; note: " + text.strip()
    return "no explanation recorded"


def _x(value) -> str:
    try:
        return f"{float(value):.3g}x"
    except (TypeError, ValueError):
        return str(value)


def table2_grid(table2: pd.DataFrame) -> str:
    """The article's Table 2 as it prints it, each model cell marked pass or fail (10% of the article)."""
    profiles = list(dict.fromkeys(table2["profile"]))
    baselines = list(dict.fromkeys(table2["baseline"]))
    head = "<tr><th rowspan=\"2\" class=\"text\">metric</th>" + "".join(
        f"<th colspan=\"{1 + len(profiles)}\">vs {html.escape(b.upper().replace('-', ' '))}</th>" for b in baselines)
    head += "</tr><tr>" + "".join("<th>article</th>" + "".join(f"<th>{html.escape(p)} profile</th>" for p in profiles)
                                  for _ in baselines) + "</tr>"
    rows = []
    for metric in dict.fromkeys(table2["metric"]):
        cells = [f"<td class=\"text\">{html.escape(TABLE2_LABELS.get(metric, metric))}</td>"]
        for base in baselines:
            sub = table2[(table2.metric == metric) & (table2.baseline == base)]
            if not len(sub):
                cells.append("<td></td>" * (1 + len(profiles)))
                continue
            cells.append(f"<td>{html.escape(_x(sub['paper'].iloc[0]))}</td>")
            for p in profiles:
                r = sub[sub.profile == p]
                if not len(r):
                    cells.append("<td></td>")
                    continue
                ok = str(r["pass"].iloc[0]).lower() == "true"
                mark = "\u2713" if ok else "\u2717"
                cells.append(f"<td class=\"{'pass' if ok else 'fail'}\">{html.escape(_x(r['reproduced'].iloc[0]))} {mark}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table id=\"table2\">\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def gpu_validation_line(summary: pd.DataFrame) -> str:
    """One paragraph: the GPU model's error on the independent measurements, held-out and fitted rows apart
    (the ``all`` rows of ``gpu_validation_summary.csv``)."""
    rows = summary[(summary["source"] == "all")].set_index("split")
    parts = []
    for split, label in (("predicted", "rows no constant saw"), ("fitted", "fitted rows")):
        if split in rows.index:
            r = rows.loc[split]
            parts.append(f"{label} ({int(r['n'])}): median |error| <span class=\"count\" id=\"gpu-{split}-median\">"
                         f"{r['median_abs_error']:.1%}</span>, 90th percentile {r['p90_abs_error']:.1%}")
    return ("<p>GPU model against independent measurements (Argonne, Splitwise, TensorRT-LLM; see GPU validation): "
            + "; ".join(parts) + ".</p>")


def front_page(claims: pd.DataFrame, table2: pd.DataFrame, gpu_validation: pd.DataFrame | None = None,
               stamp: dict | None = None) -> str:
    """The report's front page: the claims tally, Table 2 with pass/fail marks, the GPU validation line,
    why each claim fails, and with ``stamp`` (:func:`rdusim.report.stamp.build_stamp`) the commit, version
    and config it was built from."""
    c = claim_counts(claims)
    tally = (f"<p>Of the article's <span class=\"count\" id=\"n-total\">{c['total']}</span> quantitative claims, "
             f"the model reproduces <span class=\"count\" id=\"n-pass\">{c['pass']}</span> within their tolerance "
             f"and misses <span class=\"count\" id=\"n-fail\">{c['fail']}</span>; "
             f"<span class=\"count\" id=\"n-not-modelled\">{c['not modelled']}</span> are not modelled yet.")
    if "calibrated" in c:
        tally += (f" <span class=\"count\" id=\"n-calibrated\">{c['calibrated']}</span> of them are calibrated "
                  f"(a constant was fitted to data that bears on them, so agreement there is partly by construction) "
                  f"and <span class=\"count\" id=\"n-input\">{c['input']}</span> are inputs taken from the article; "
                  f"the other <span class=\"count\" id=\"n-predicted\">{c['predicted']}</span> are predictions.")
    tally += "</p>"
    fails = claims[claims["status"].astype(str) == "fail"]
    items = []
    for _, row in fails.iterrows():
        items.append(f"<li><b>{html.escape(str(row['claim']))}</b> (article {html.escape(_fmt(row['paper']))}, "
                     f"model {html.escape(_fmt(row['reproduced']))}): {html.escape(why(row))}</li>")
    body = [
        "<h1>rdusim: the article's results reproduced</h1>",
        "<p class=\"note\">Composition of Experts on the SN40L Reconfigurable Dataflow Unit (IEEE Micro), "
        "regenerated from a performance model. Each figure draws the article's values as reference marks; "
        "every table of <code>results/</code> is in the report as HTML (see the categories on the left).</p>",
        "<h2>Claims</h2>", tally,
        "<h2>Table 2: SN40L node speedups (\u2713 within 10% of the article)</h2>",
        table2_grid(table2),
        "<p class=\"note\">" + "; ".join(f"<i>{html.escape(name)}</i>: {html.escape(load_profile(name).description)}"
                                        for name in dict.fromkeys(table2.profile)) + ".</p>",
        *(["<h2>GPU predictions beyond the article</h2>", gpu_validation_line(gpu_validation)]
          if gpu_validation is not None else []),
        f"<h2>Why claims fail ({len(fails)})</h2>",
        "<ul class=\"why\" id=\"why\">" + "\n".join(items) + "</ul>" if items else "<p>None.</p>",
        f"<p class=\"note\" id=\"sources\">Sources in claims.csv: {SOURCES_LEGEND}</p>",
    ]
    if stamp:
        body.insert(1, f"<p class=\"note\" id=\"build\">{stamp_sentence(stamp)}</p>")
    return _page("rdusim: summary", "\n".join(body), head=stamp_meta(stamp) + "\n" if stamp else "")
