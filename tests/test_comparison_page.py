"""COMPARISON.html opened offline in a real headless Chromium: the table of every ranked run sorts and filters,
the parallel-coordinates view is drawn, no script error, and nothing is loaded from the network."""

import json
import re
import time

import pytest
from browser import Browser, find_chromium
from synthetic_run import write_summary_folder

from ssvae.results import compare

RECORD_ERRORS = ("window.__errors = []; window.addEventListener('error', "
                 "e => window.__errors.push(String(e.message)))")
CELLS = "Array.from(document.querySelectorAll('#runs tbody tr')).map(r => r.cells[{0}].textContent)"


@pytest.fixture(scope="module")
def chromium():
    path, how = find_chromium()
    if path is None:
        pytest.skip(f"no headless browser: {how}")
    return path


def test_comparison_page_sorts_filters_and_draws_parallel_coordinates_offline(tmp_path, template, chromium):
    results = tmp_path / "results"
    for i, lr in enumerate((0.001, 0.003, 0.01)):
        write_summary_folder(results, template, f"lr{i}__std_head_plain__20250102_00000{i}", accuracy=0.7 + 0.05 * i,
                             baseline=0.6, elbo=-100.0 - i, model={"learning_rate": lr})
    write_summary_folder(results, template, "big__std_head_plain__20250105_000000", accuracy=0.9, baseline=0.75,
                         elbo=-90.0, dataset="mnist5k", n=1000, model={"learning_rate": 0.5})
    compare.compare_runs(results)
    page = (results / "COMPARISON.html").read_text()
    markup = re.sub(r"(?s)<script\b[^>]*>.*?</script>", "<script></script>", page)  # the tags, not the scripts
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup) and "<script src" not in page
    columns = json.loads(page.split('<script id="comparison-data" type="application/json">')[1]
                         .split("</script>")[0])["columns"]
    accuracy = columns.index("accuracy %")
    with Browser(chromium, webgl=True) as browser:
        browser.open((results / "COMPARISON.html").as_uri())
        browser.evaluate(RECORD_ERRORS)
        assert browser.wait_for("document.getElementById('shown').textContent") == "4 of 4 runs"
        browser.evaluate(f"document.querySelectorAll('#runs th')[{accuracy}].click()")
        assert browser.evaluate(CELLS.format(accuracy)) == ["70", "75", "80", "90"]
        browser.evaluate(f"document.querySelectorAll('#runs th')[{accuracy}].click()")
        assert browser.evaluate(CELLS.format(accuracy)) == ["90", "80", "75", "70"]
        browser.evaluate("const f = document.getElementById('filter'); f.value = 'mnist5k';"
                         "f.dispatchEvent(new Event('input'))")
        assert browser.evaluate(CELLS.format(columns.index("run_id"))) == ["big__std_head_plain__20250105_000000"]
        # one view for the digits block (three runs); the mnist5k block has a single run
        assert browser.wait_for("document.querySelectorAll('.parcoords canvas').length")
        time.sleep(1)
        axes = browser.evaluate("Array.from(document.querySelectorAll('.parcoords .axis-title'))"
                                ".map(t => t.textContent)")
        assert axes == ["model.learning_rate", "accuracy %"]
        assert "WebGL is not supported" not in browser.evaluate("document.body.innerText")
        browser.evaluate("document.querySelector('.parcoords').scrollIntoView()")
        browser.screenshot(tmp_path / "comparison_parcoords.png")
        assert browser.evaluate("JSON.stringify(window.__errors)") == "[]"
        # nothing was fetched: every resource the page used is its own
        assert browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)") == []
