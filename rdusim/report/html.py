"""HTML pages for the Snakemake report: every result table as a readable HTML table, and a front page.

Snakemake's report shows an HTML result inline (a CSV only downloads), so each table under
``results/tables`` and ``results/validation`` is rendered here to a small self-contained page and
registered with ``report()``. The front page summarises ``claims.csv`` (passes, fails, calibrated
claims and why each failing claim fails) and the article's Table 2 with a pass/fail mark per cell.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

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
table { border-collapse: collapse; margin: 4px 0 12px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: right; vertical-align: top; white-space: nowrap; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.text, th.text { text-align: left; white-space: normal; min-width: 6em; max-width: 42em; }
.pass { background: #dafbe1; } .fail { background: #ffebe9; } .other { background: #f6f8fa; }
span.count { font-weight: 600; }
ul.why li { margin-bottom: 5px; }
"""

STATUS_MARK = {"pass": "\u2713 pass", "fail": "\u2717 fail"}


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}</title>\n"
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _fmt(value) -> str:
    """A cell as a reader wants it: 4 significant digits, whole numbers without decimals, NaN blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "\u2713" if value else "\u2717"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}" if abs(v) >= 10000 else str(int(v))
        return f"{v:.4g}"
    return str(value)


def _cell_class(column: str, value) -> str:
    """Pass/fail colouring for status-like columns (``status``, ``pass``)."""
    if column == "status":
        return {"pass": "pass", "fail": "fail"}.get(str(value), "other")
    if column == "pass" and isinstance(value, (bool, np.bool_)):
        return "pass" if value else "fail"
    return ""


def table_html(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table (text columns left-aligned, pass/fail cells coloured)."""
    text_cols = {c for c in frame.columns
                 if pd.api.types.is_string_dtype(frame[c]) or pd.api.types.is_object_dtype(frame[c])}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False, name=None):
        cells = []
        for col, v in zip(frame.columns, values):
            classes = [c for c in (_cell_class(col, v), "text" if col in text_cols else "") if c]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            shown = STATUS_MARK.get(v, v) if col == "status" else v
            cells.append(f"<td{attr}>{html.escape(_fmt(shown))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


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
        how.append(f"every {step}th row")
    return part, (f"Showing {len(part):,} of {len(frame):,} rows ({', then '.join(how)}); "
                  "the CSV file has every row.")


def table_page(frame: pd.DataFrame, title: str, source: str) -> str:
    """A standalone page with one result table (long tables shown in part)."""
    part, note = shown_rows(frame)
    intro = f"<p class=\"note\">{html.escape(source)}: {len(frame):,} rows. {html.escape(note)}</p>"
    return _page(title, f"<h1>{html.escape(title)}</h1>\n{intro}\n{table_html(part)}")


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


def front_page(claims: pd.DataFrame, table2: pd.DataFrame, gpu_validation: pd.DataFrame | None = None) -> str:
    """The report's front page: the claims tally, Table 2 with pass/fail marks, the GPU validation line,
    why each claim fails."""
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
    ]
    return _page("rdusim: summary", "\n".join(body))
