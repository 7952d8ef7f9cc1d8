"""Look at the Snakemake report in headless Chromium (Playwright): it opens on the front page, every
category is in the menu, every result shows (each figure as a loaded image, each table page as a
visible HTML table), a table's header row and first column stay in view when it scrolls, and no table
page is taller than it needs to be.

Needs Playwright's Python package (``pip install -e .[browser]``) and a Chromium (Debian:
``apt-get install chromium``; the path can be set with ``RDUSIM_CHROMIUM``). Without them the test
is skipped, saying how to enable it, except in CI (``CI=true``), where a missing browser fails.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Chromium as root in a container, with no network: no sandbox, no GPU, no background connections.
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ENABLE = ("to run it: apt-get install chromium (or set RDUSIM_CHROMIUM) and pip install -e .[browser]")
VIEWPORT = {"width": 1400, "height": 1000}
# A table row taller than this holds text that should have been folded (claims.html's why and note).
MAX_ROW_PX = 60
# A table page may be this much taller than its window: the table scrolls inside its own box.
MAX_PAGE_HEIGHTS = 1.6


def chromium_path() -> str | None:
    """A Chromium executable on this machine, or None."""
    if os.environ.get("RDUSIM_CHROMIUM"):
        return os.environ["RDUSIM_CHROMIUM"]
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _unavailable(reason: str):
    """Skip locally; fail in CI, where the browser test must run."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(f"{reason}; {ENABLE}")


def _sync_api():
    try:
        from playwright import sync_api
    except ImportError:
        _unavailable("Playwright's Python package is not installed")
    return sync_api


def _open_html(page, path: str):
    """Show the HTML result ``path`` in the report; its iframe's frame once loaded."""
    page.evaluate("p => app.setView({content: 'html', contentPath: results[p].data_uri, resultPath: p})", path)
    return _shown_frame(page)


def _shown_frame(page):
    frame_el = page.locator("#app iframe").last
    frame_el.wait_for(state="visible", timeout=10_000)
    frame = frame_el.element_handle().content_frame()
    frame.wait_for_load_state()
    return frame


def _table_layout_problems(frame, name: str) -> list[str]:
    """A table page's layout: rows not taller than MAX_ROW_PX, the page not much taller than its window,
    and, in a table that scrolls, the header row and first column still in view after scrolling."""
    problems = []
    info = frame.evaluate("""() => {
        const rows = [...document.querySelectorAll('div.scroll tbody tr')].map(r => r.getBoundingClientRect().height);
        rows.sort((a, b) => a - b);
        return {median: rows.length ? rows[Math.floor(rows.length / 2)] : 0,
                page: document.documentElement.scrollHeight, window: window.innerHeight};
    }""")
    if info["median"] > MAX_ROW_PX:
        problems.append(f"{name}: table rows {info['median']:.0f} px tall (at most {MAX_ROW_PX})")
    if info["page"] > MAX_PAGE_HEIGHTS * info["window"]:
        problems.append(f"{name}: page {info['page']} px tall in a {info['window']} px window")
    moved = frame.evaluate("""() => {
        const box = [...document.querySelectorAll('div.scroll')].pop();
        if (!box || (box.scrollHeight <= box.clientHeight && box.scrollWidth <= box.clientWidth)) return null;
        box.scrollTop = box.scrollHeight; box.scrollLeft = box.scrollWidth;
        const b = box.getBoundingClientRect();
        const th = box.querySelector('thead th:last-child').getBoundingClientRect();
        const rows = box.querySelectorAll('tbody tr');
        const first = rows[rows.length - 1].querySelector('td').getBoundingClientRect();
        return {header: th.top - b.top, column: first.left - b.left, scrolled: [box.scrollTop, box.scrollLeft]};
    }""")
    if moved is not None:
        if abs(moved["header"]) > 2:
            problems.append(f"{name}: header row scrolled out of view ({moved})")
        if abs(moved["column"]) > 2:
            problems.append(f"{name}: first column scrolled out of view ({moved})")
    return problems


def check_report(report: Path) -> list[str]:
    """Problems found while viewing every result of ``report`` (an empty list when all show)."""
    sync_api = _sync_api()
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=LAUNCH_ARGS)
        except Exception as err:  # no browser installed
            _unavailable(f"no Chromium to run the report in ({str(err).splitlines()[0]})")
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(report.resolve().as_uri())
        page.wait_for_function("typeof app !== 'undefined' && typeof results !== 'undefined'")
        # it opens on the front page, without a click
        front = _shown_frame(page)
        if not front.locator("#n-total").count() or not front.locator("#build").count():
            problems.append("the report does not open on its front page (summary.html with its build line)")
        menu = page.inner_text("body")
        for category in page.evaluate("Object.keys(categories)"):
            if category not in menu:
                problems.append(f"category {category!r} not in the menu")
        entries = page.evaluate("Object.entries(results).map(([p, r]) => [p, r.mime_type, r.name])")
        for path, mime, name in entries:
            if mime.startswith("image/"):
                page.evaluate("p => app.setView({content: 'img', contentPath: results[p].data_uri, resultPath: p})",
                              path)
                img = page.locator("#app img").last
                img.wait_for(state="visible", timeout=10_000)
                if not page.evaluate("el => el.complete && el.naturalWidth > 0", img.element_handle()):
                    problems.append(f"{name}: image did not load")
            elif mime == "text/html":
                frame = _open_html(page, path)
                table = frame.locator("table").first
                if not table.count() or not table.is_visible() or table.locator("tr").count() < 2:
                    problems.append(f"{name}: no visible table")
                elif not name.startswith("summary"):
                    problems += _table_layout_problems(frame, name)
            else:
                problems.append(f"{name}: {mime} does not display inline")
        browser.close()
    return problems
