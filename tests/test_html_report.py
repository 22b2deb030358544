"""`snakemake --report report.html` carries the numbers, read back through a real headless Chromium: the ranked
comparison table and each run's report page (headline metrics, warnings) open from the report's own navigation,
runs labelled by experiment and arch with the timestamp after them, and no script error in the viewer (a
second label with two values on half the rows once made it fail to open rows).

Screenshots of every view checked go to $SSVAE_SCREENSHOTS when it is set (to look at them), else to tmp_path.
"""

import json
import os
from pathlib import Path

import pytest
from browser import Browser, find_chromium
from workflow_helpers import clone_workspace, run_folders, snakemake

pytestmark = pytest.mark.workflow

CLICK_LINK = ("(() => {{ const a = Array.from(document.querySelectorAll('a'))"
              ".find(a => a.textContent.trim() === {0}); if (a) a.click(); return !!a; }})()")
CLICK_ROW = ("(() => {{ const r = Array.from(document.querySelectorAll('tr'))"
             ".find(r => r.textContent.includes({0})); if (r) r.querySelector('a').click(); return !!r; }})()")
RECORD_ERRORS = ("window.__errors = []; window.addEventListener('error', "
                 "e => window.__errors.push(String(e.message)))")
NAV_TEXT = "document.querySelector('#app') ? document.querySelector('#app').textContent : ''"


@pytest.fixture(scope="module")
def chromium():
    path, how = find_chromium()
    print(f"chromium: {how}")
    if path is None:
        pytest.skip(f"no headless browser for the report test: {how}")
    return path


@pytest.fixture(scope="module")
def built_report(trained_workspace, tmp_path_factory):
    workspace = clone_workspace(trained_workspace, tmp_path_factory.mktemp("report") / "ws")
    snakemake(workspace, "--report", "report.html")
    return workspace


def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("SSVAE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_view(browser, category: str, row_text: str):
    """Click a category in the report's navigation (from inside another one: through the `Results` crumb), then
    the eye button of the result row containing `row_text`."""
    if not browser.evaluate(CLICK_LINK.format(json.dumps(category))):
        assert browser.evaluate(CLICK_LINK.format(json.dumps("Results")))
        assert browser.wait_for(CLICK_LINK.format(json.dumps(category)))
    assert browser.wait_for(CLICK_ROW.format(json.dumps(row_text)))


def test_the_report_shows_the_ranked_comparison_and_each_runs_numbers(built_report, chromium, tmp_path):
    folders = {f.name.split("__")[0]: f for f in run_folders(built_report)}
    summaries = {name: json.loads((f / "summary.json").read_text()) for name, f in folders.items()}
    shots = screenshots(tmp_path)
    with Browser(chromium) as browser:
        browser.open((built_report / "report.html").as_uri())
        nav = browser.wait_for(f"{NAV_TEXT}.includes('Runs') && {NAV_TEXT}")
        browser.evaluate(RECORD_ERRORS)
        assert "Comparison" in nav and "alpha" in nav and "beta" in nav
        browser.screenshot(shots / "report_home.png")

        open_view(browser, "Comparison", "1. ranked table of every run")
        table = browser.frame_text("data:text/html")
        browser.screenshot(shots / "report_comparison.png")
        assert "ranking by accuracy" in table and "vs best (points)" in table and "gain (points)" in table
        for name, summary in summaries.items():
            head = summary["headline"]
            line = next(line for line in table.splitlines() if line.split("\t")[1:2] == [name])
            assert f"{100 * head['accuracy']:.1f}\u00a0±\u00a0{100 * head['accuracy_se']:.1f}" in line
            assert f"{100 * head['gain']:+.1f}" in line

        open_view(browser, "Runs", "alpha")
        runs_list = browser.evaluate("document.querySelector('#app').innerText")
        alpha = folders["alpha"].name.split("__")
        assert f"{alpha[0]} · {alpha[1]} · {alpha[2]}" in runs_list  # experiment, arch, then the timestamp
        page = browser.frame_text("data:text/html")
        browser.screenshot(shots / "report_run_alpha.png")
        head = summaries["alpha"]["headline"]
        assert page.startswith("alpha") and "Headline" in page
        assert f"{100 * head['accuracy']:.1f}% ± {100 * head['accuracy_se']:.1f}" in page
        assert f"{100 * head['baseline_accuracy']:.1f}%" in page and "logistic regression on raw pixels" in page
        for warning in summaries["alpha"]["warnings"]:
            assert warning.split(":")[0] in page
        assert "Configuration" in page and "Metrics" in page

        # a sweep's figures sit under its config file's category, labelled by run and figure
        open_view(browser, "beta", "loss_curves")
        figures = browser.evaluate("document.querySelector('#app').innerText")
        beta = folders["beta-s42"].name.split("__")
        assert f"{beta[0]} · {beta[2]}\tloss_curves" in figures
        assert browser.wait_for("(() => { const i = document.querySelector('img[src^=\"data:image/png\"]');"
                                " return i && i.naturalWidth > 300; })()")
        browser.screenshot(shots / "report_figure_loss_curves.png")
        assert browser.evaluate("JSON.stringify(window.__errors)") == "[]"


def test_a_report_of_one_config_still_has_a_page_for_every_run_of_the_comparison(trained_workspace, chromium,
                                                                                 tmp_path):
    workspace = clone_workspace(trained_workspace, tmp_path / "ws")
    snakemake(workspace, "--report", "alpha.html", "--config", "experiments=[configs/alpha.yaml]")
    beta = next(f.name for f in run_folders(workspace) if f.name.startswith("beta-s42__"))
    with Browser(chromium) as browser:
        browser.open((workspace / "alpha.html").as_uri())
        browser.wait_for(f"{NAV_TEXT}.includes('Runs') && {NAV_TEXT}")
        browser.evaluate(RECORD_ERRORS)
        name, arch, ts = beta.split("__")
        open_view(browser, "Runs", f"{name} · {arch} · {ts}")  # a run of the config not named
        page = browser.frame_text("data:text/html")
        browser.screenshot(screenshots(tmp_path) / "report_other_config_run.png")
        assert page.startswith("beta-s42") and "Headline" in page
        assert browser.evaluate("JSON.stringify(window.__errors)") == "[]"
