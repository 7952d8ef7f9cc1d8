"""Look at the Snakemake report in headless Chromium (Playwright): every category is in the menu, and
every result shows: each figure as a loaded image, each table page as a visible HTML table.

Needs ``pip install playwright`` and a Chromium (Debian: ``apt-get install chromium``; or
``playwright install chromium``). Without them the caller's test is skipped. The browser path can be
set with ``RDUSIM_CHROMIUM``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """A Chromium executable on this machine, or None (Playwright's own download is also accepted)."""
    if os.environ.get("RDUSIM_CHROMIUM"):
        return os.environ["RDUSIM_CHROMIUM"]
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def check_report(report: Path) -> list[str]:
    """Problems found while viewing every result of ``report`` (an empty list when all show)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = chromium_path()
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as err:  # no browser installed: skip, as documented
            pytest.skip(f"no Chromium to run the report in ({str(err).splitlines()[0]})")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(report.resolve().as_uri())
        page.wait_for_function("typeof app !== 'undefined' && typeof results !== 'undefined'")
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
                page.evaluate("p => app.setView({content: 'html', contentPath: results[p].data_uri, resultPath: p})",
                              path)
                frame_el = page.locator("#app iframe").last
                frame_el.wait_for(state="visible", timeout=10_000)
                frame = frame_el.element_handle().content_frame()
                frame.wait_for_load_state()
                table = frame.locator("table").first
                if not table.count() or not table.is_visible() or table.locator("tr").count() < 2:
                    problems.append(f"{name}: no visible table")
            else:
                problems.append(f"{name}: {mime} does not display inline")
        browser.close()
    return problems
