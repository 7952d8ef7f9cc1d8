"""Where a report came from, and whether it is stale.

Every pipeline run computes a *build stamp*: the git commit of the checkout (``-dirty`` with
uncommitted changes), the rdusim version, a hash of the whole pipeline config and the library's
code version. The front page prints it and carries it in a ``<meta name="rdusim-build">`` tag, and
``results/report.html`` carries the stamp of the results it was built from. A report is stale when it
is missing, older than a file it shows, or its stamp is not the current one; results are stale for
``snakemake --report`` when the front page's stamp is not the current one (a config or code change not
run yet). The Snakefile checks both when Snakemake exits (:func:`staleness`) and, after
``snakemake --report``, makes the report open on its front page (:func:`open_on_front_page`).
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
from pathlib import Path

from rdusim import __version__

META = "rdusim-build"
FIELDS = ("commit", "version", "config", "code")
_META_RE = re.compile(r'<meta name="rdusim-build" content="([^"]*)"')


def config_hash(config: dict) -> str:
    """First 12 hex digits of the SHA-256 of the config as sorted JSON (key order and YAML layout do
    not change it)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def git_commit(root: str | Path) -> str:
    """Short commit of the checkout at ``root`` (``-dirty`` when tracked files differ), or ``unknown``
    outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "--short=10", "HEAD")
        if head.returncode:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty else "")


def build_stamp(config: dict, code_version: str, root: str | Path) -> dict[str, str]:
    """The stamp of a run: commit, rdusim version, config hash, code version."""
    return {"commit": git_commit(root), "version": __version__, "config": config_hash(config), "code": code_version}


def _encode(stamp: dict) -> str:
    return ";".join(f"{k}={stamp[k]}" for k in FIELDS)


def stamp_meta(stamp: dict) -> str:
    """The ``<meta>`` tag that carries ``stamp`` in a page."""
    return f'<meta name="{META}" content="{html.escape(_encode(stamp))}">'


def stamp_sentence(stamp: dict) -> str:
    """One line for a reader: what this page was built from."""
    return (f"Built from commit <code>{html.escape(stamp['commit'])}</code>, rdusim {html.escape(stamp['version'])}, "
            f"config hash <code>{html.escape(stamp['config'])}</code> (SHA-256 of <code>config/config.yaml</code> "
            f"as loaded), code version <code>{html.escape(stamp['code'])}</code>.")


def read_stamp(path: str | Path) -> dict[str, str] | None:
    """The stamp in a page (the front page or the report), None when it has none or is missing."""
    try:
        with open(path, errors="replace") as fh:
            head = fh.read(4_000_000)
    except OSError:
        return None
    found = _META_RE.findall(head)
    if not found:
        return None
    pairs = dict(part.split("=", 1) for part in html.unescape(found[-1]).split(";") if "=" in part)
    return pairs if all(k in pairs for k in FIELDS) else None


def _differs(old: dict, new: dict) -> str:
    return ", ".join(f"{k} {old[k]} -> {new[k]}" for k in ("config", "code", "commit") if old[k] != new[k])


def staleness(report: str | Path, shown: list[str | Path], stamp: dict) -> str | None:
    """Why ``report`` does not show the current results (None when it does): missing, older than a
    file under the ``shown`` folders, or built from another config, code or commit than ``stamp``."""
    report = Path(report)
    if not report.exists():
        return f"{report} has not been built"
    built = read_stamp(report)
    if built is None:
        return f"{report} carries no build stamp (built before rdusim 0.2)"
    if built["config"] != stamp["config"] or built["code"] != stamp["code"]:
        return f"{report} was built from other inputs ({_differs(built, stamp)})"
    newest = max((p.stat().st_mtime for d in shown for p in Path(d).glob("*") if p.is_file()), default=0.0)
    if report.stat().st_mtime < newest:
        return f"{report} is older than the results it shows"
    return None


def results_staleness(front_page: str | Path, stamp: dict) -> str | None:
    """Why the results under results/ are not those of the current config and code (None when they
    are), judged by the front page's stamp."""
    built = read_stamp(front_page)
    if built is None:
        return f"{front_page} is missing or carries no build stamp"
    if built["config"] != stamp["config"] or built["code"] != stamp["code"]:
        return f"the results were computed from other inputs ({_differs(built, stamp)})"
    return None


# Opens the front page once Snakemake's report app has loaded (it sets the global `app`).
_OPEN_FRONT = """<script id="rdusim-open-front-page">
(function () {
  function open() {
    if (typeof app === "undefined" || !app || typeof results === "undefined") { return setTimeout(open, 25); }
    var key = Object.keys(results).find(function (p) { return /(^|\\/)summary\\.html$/.test(p); });
    if (key) { app.setView({content: "html", contentPath: results[key].data_uri, resultPath: key}); }
  }
  open();
})();
</script>
"""


def open_on_front_page(report: str | Path, stamp: dict) -> bool:
    """Make Snakemake's self-contained ``report`` open on the front page (``summary.html``) and carry
    ``stamp``; idempotent. False when ``report`` is not such a file."""
    report = Path(report)
    if report.suffix != ".html" or not report.exists():
        return False
    text = report.read_text(errors="surrogateescape")
    text = re.sub(r'<script id="rdusim-open-front-page">.*?</script>\n', "", text, flags=re.S)
    text = re.sub(r'<meta name="rdusim-build" content="[^"]*">\n?', "", text)
    if "</body>" not in text or "<head>" not in text:
        return False
    text = text.replace("<head>", "<head>\n" + stamp_meta(stamp), 1)
    head, sep, tail = text.rpartition("</body>")
    report.write_text(head + _OPEN_FRONT + sep + tail, errors="surrogateescape")
    return True
