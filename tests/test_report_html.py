"""The report's HTML pages: tables render as HTML, and the front page agrees with claims.csv."""
import re

import pandas as pd
import pytest

from rdusim.report.html import claim_counts, front_page, page_claims, shown_rows, table_page, why

CLAIMS = pd.DataFrame([
    {"id": "a", "claim": "A holds", "paper": 2.0, "reproduced": 2.05, "status": "pass", "note": "fine"},
    {"id": "b", "claim": "B holds", "paper": 3.0, "reproduced": 1.2, "status": "fail", "note": "B's note"},
    {"id": "c", "claim": "C holds", "paper": 4.0, "reproduced": float("nan"), "status": "not modelled", "note": ""},
    {"id": "d", "claim": "D <holds>", "paper": 1.0, "reproduced": 9.0, "status": "fail", "note": ""},
])
TABLE2 = pd.DataFrame([
    {"metric": "overall_bs8_20tok", "baseline": "dgx-a100", "profile": "paper", "experts": 148, "paper": "6.6",
     "reproduced": "8.464", "rel_err": 0.28, "pass": False},
    {"metric": "model_switching", "baseline": "dgx-a100", "profile": "paper", "experts": 148, "paper": "31",
     "reproduced": "31.25", "rel_err": 0.008, "pass": True},
    {"metric": "oom_150_experts", "baseline": "dgx-a100", "profile": "paper", "experts": 150, "paper": "DGX OOM",
     "reproduced": "DGX OOM", "rel_err": float("nan"), "pass": True},
])


def _count(page: str, name: str) -> int:
    return int(re.search(rf'id="n-{name}">(\d+)<', page).group(1))


def test_front_page_counts_match_claims():
    page = front_page(CLAIMS, TABLE2)
    assert (_count(page, "total"), _count(page, "pass"), _count(page, "fail"), _count(page, "not-modelled")) == (4, 1, 2, 1)
    assert "n-calibrated" not in page  # no basis column yet
    # one why per failing claim, the note as fallback, escaped
    items = re.findall(r"<li>(.*?)</li>", page, re.S)
    assert len(items) == 2
    assert "note: B&#x27;s note" in items[0] and "D &lt;holds&gt;" in items[1] and "no explanation recorded" in items[1]


def test_front_page_uses_basis_and_why_when_present():
    claims = CLAIMS.assign(basis=["predicted", "calibrated: GPU constants", "predicted", "input"],
                           why=["", "the GPU model is calibrated on H100 runs", "", ""])
    page = front_page(claims, TABLE2)
    assert (_count(page, "calibrated"), _count(page, "input"), _count(page, "predicted")) == (1, 1, 2)
    assert claim_counts(claims)["calibrated"] == 1
    assert "the GPU model is calibrated on H100 runs" in page
    assert why(claims.iloc[3]) == "no explanation recorded"


def test_front_page_table2_marks_each_cell():
    page = front_page(CLAIMS, TABLE2)
    grid = re.search(r'<table id="table2">(.*?)</table>', page, re.S).group(1)
    assert re.search(r'class="fail">8.46x \u2717', grid)
    assert re.search(r'class="pass">31.2x \u2713', grid)
    assert "DGX OOM \u2713" in grid


def test_table_page_renders_every_row_of_a_short_table():
    page = table_page(CLAIMS, "Claims", "results/validation/claims.csv")
    assert page.count("<tr>") == len(CLAIMS) + 1
    assert 'class="fail label"' in page or 'class="fail"' in page


def test_long_table_is_shown_in_part_and_says_so():
    frame = pd.DataFrame({"platform": ["x"] * 1000 + ["y"] * 1000, "experts": list(range(1, 1001)) * 2})
    part, note = shown_rows(frame, max_rows=400)
    assert sorted(part.experts.unique()) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    assert "20 of 2,000 rows" in note
    many = pd.DataFrame({"v": range(5000)})
    part, note = shown_rows(many, max_rows=400)
    assert len(part) <= 400 and part.v.iloc[0] == 0 and "every 13th row" in note


@pytest.mark.parametrize("column, value, shown", [
    ("v", 1.23456, "1.235"), ("v", 3.0, "3"), ("v", 123456, "123,456"), ("total_ms", 11880.46, "11,880"),
    ("total_ms", 1234.5, "1,234"), ("v", 0.5, "0.5"), ("weight_bytes_bf16", 13476831232, "13.48 GB"),
    ("kv_bytes_per_token", 524288, "524.3 kB"), ("fits", True, "\u2713"), ("sn40l_fits", False, "\u2717"),
    ("one_node_oom", True, "yes"), ("one_node_oom", False, "no")])
def test_cells_are_formatted_for_reading(column, value, shown):
    """No exponent in millisecond columns, bytes in SI units, a mark only where true is good."""
    page = table_page(pd.DataFrame({column: [value]}), "t", "s")
    assert f">{shown}</td>" in page


def test_every_nth_row_uses_an_ordinal():
    _, note = shown_rows(pd.DataFrame({"v": range(800)}), max_rows=400)
    assert "every 2nd row" in note


def test_repeated_long_text_is_one_note_and_long_text_folds():
    long = "a sentence that explains why a claim fails, long enough that it would take a whole line " * 2
    frame = pd.DataFrame({"id": ["a", "b", "c"], "why": [long, long, "x" + long]})
    page = table_page(frame, "t", "s")
    assert page.count(long) == 1 and page.count("see note 1") == 2
    assert "<details><summary>" in page


def test_table_page_opens_with_the_articles_values_and_defines_sources():
    claims = pd.DataFrame([{"id": "fig8_x", "claim": "X", "source": "[A] Fig. 8", "paper": 19, "reproduced": 20,
                            "status": "pass"},
                           {"id": "dgx_y", "claim": "Y", "source": "[A] Figure 8 text", "paper": 1, "reproduced": 1,
                            "status": "pass"},
                           {"id": "fig3_z", "claim": "Z", "source": "[P] Fig. 3", "paper": 1, "reproduced": 1,
                            "status": "pass"}])
    mine = page_claims("fig8_footprint", claims)
    assert mine["id"].tolist() == ["fig8_x", "dgx_y"]
    page = table_page(pd.DataFrame({"source": ["[A] Fig. 8"]}), "t", "s", claims=mine)
    assert "The article's values on this page" in page and ">19</td>" in page
    assert 'id="sources"' in page and "arXiv 2405.07518" in page
