"""Run folders and ledgers that hold valid JSON of the wrong shape (or no JSON at all): `ssvae runs`, `show`,
`diff` and the comparison list such a run as `unreadable`, naming the file and the key; a damaged ledger is
rebuilt from the run folders instead of stopping planning."""

from __future__ import annotations

import copy
import json

import pytest
from synthetic_run import write_summary_folder

from ssvae import cli
from ssvae.results import compare, runs

GOOD = "good__std_head_plain__20250101_000000"
BAD = "bad__std_head_plain__20250102_000000"

CONFUSED = {
    "a list": ([1, 2], "(the whole document)"),
    "metadata a list": ({"metadata": ["x"]}, "metadata"),
    "tags a string": ({"metadata": {"tags": "=cmd"}}, "metadata.tags"),
    "accuracy a string": ({"evaluation": {"metrics": {"accuracy": {"status": "success", "value": "0.9"}}}},
                          "evaluation.metrics.accuracy.value"),
    "elbo value a list": ({"evaluation": {"metrics": {"elbo": {"status": "success", "value": [1]}}}},
                          "evaluation.metrics.elbo.value"),
    "best epoch a string": ({"training": {"best_epoch": "4"}}, "training.best_epoch"),
    "warnings an object": ({"warnings": {"a": 1}}, "warnings"),
    "config section a number": ({"config": {"model": 3}}, "config.model"),
    "plot files a string": ({"plots": {"loss_curves": {"status": "success", "value": {"files": "x"}}}},
                            "plots.loss_curves.value.files"),
    "diagnostic a string": ({"diagnostics": ["x"]}, "diagnostics.0"),
}


def _merge(base, patch):
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}


@pytest.fixture
def results(tmp_path, template):
    results = tmp_path / "results"
    write_summary_folder(results, template, GOOD, accuracy=0.8, baseline=0.7, elbo=-90.0)
    write_summary_folder(results, template, BAD, accuracy=0.8, baseline=0.7, elbo=-90.0)
    return results


@pytest.mark.parametrize("case", sorted(CONFUSED))
def test_a_summary_of_the_wrong_shape_is_unreadable_and_crashes_nothing(results, case, capsys):
    patch, key = CONFUSED[case]
    summary = json.loads((results / BAD / "summary.json").read_text())
    (results / BAD / "summary.json").write_text(json.dumps(patch if isinstance(patch, list) else
                                                           _merge(summary, patch)))
    rows = {r["run_id"]: r for r in compare.run_rows(results)}
    assert rows[BAD]["status"] == "unreadable"
    assert rows[BAD]["reason"].startswith(f"summary.json: {key}:"), rows[BAD]["reason"]
    assert rows[GOOD]["status"] == "success"
    for args in (["runs"], ["runs", "--csv"], ["runs", "--json"], ["show", "bad"], ["diff", "bad", "good"]):
        assert cli.main([*args, "--results", str(results)]) == 0, args
    out = capsys.readouterr()
    assert f"skipped {results / BAD}: summary.json: {key}:" in out.err


def test_the_comparison_lists_every_confused_summary_as_unreadable(results, template):
    for i, (patch, _) in enumerate(CONFUSED.values()):
        folder = write_summary_folder(results, template, f"bad{i}__std_head_plain__20250103_00000{i}",
                                      accuracy=0.8, baseline=0.7, elbo=-90.0)
        summary = json.loads((folder / "summary.json").read_text())
        (folder / "summary.json").write_text(json.dumps(patch if isinstance(patch, list) else
                                                        _merge(summary, patch)))
    compare.compare_runs(results)
    table = (results / "COMPARISON.md").read_text()
    assert table.count("| unreadable |") == len(CONFUSED)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"[" * 100000, b"[1]", b'{"abc": [1]}',
                                     b'{"abc": {"ts": "yesterday"}}', b'"text"'])
def test_a_damaged_ledger_is_rebuilt_from_the_run_folders(tmp_path, content):
    results = tmp_path / "results"
    ts = runs.mint_timestamp(results, "exp", "std_head_plain", "abc123")
    folder = results / f"exp__std_head_plain__{ts}"
    folder.mkdir()
    (folder / "config.yaml").write_text("identity: abc123\n")
    ledger = results / ".ledger" / "exp.json"
    ledger.write_bytes(content)
    assert runs.mint_timestamp(results, "exp", "std_head_plain", "abc123") == ts
    assert json.loads(ledger.read_text())["abc123"]["ts"] == ts
    ledger.write_bytes(content)
    assert runs.rebuild_ledger(results) == {"exp": 1}
    assert runs.recorded_timestamp(results, "exp", "abc123") == ts


@pytest.mark.parametrize("spec", ["/", "", " ", "..", "../results", "/etc", "g*", "good\x1b]0;x\x07",
                                  "../../" + BAD])
def test_show_takes_only_run_ids_run_folders_and_experiment_names(results, spec, capsys, monkeypatch, tmp_path):
    (results / BAD).rename(results.parent / BAD)  # one run left: a spec resolving to "any run" would find it
    monkeypatch.chdir(results / GOOD)
    with pytest.raises(SystemExit) as stop:
        cli.main(["show", spec, "--results", str(results)])
    assert stop.value.code != 0 and "\x1b" not in str(stop.value.code)
    assert capsys.readouterr().out == ""


def test_show_still_takes_a_run_folder_under_results(results, capsys):
    for spec in (GOOD, "good", str(results / GOOD), f"{results / GOOD}/"):
        assert cli.main(["show", spec, "--results", str(results)]) == 0
        assert capsys.readouterr().out.startswith(GOOD)


def test_text_from_summaries_cannot_break_the_comparison_plots(results, template):
    """A `$` in a dataset, a seed group or a likelihood would start matplotlib's mathtext; a malformed formula
    stopped the figure from being drawn."""
    for i, seed in enumerate((0, 1)):
        folder = write_summary_folder(results, template, f"m-s{seed}__std_head_plain__20250104_00000{i}",
                                      accuracy=0.8, baseline=0.7, elbo=-90.0, group="$\\frac{$", seed=seed,
                                      dataset="$\\bad{$", likelihood="$^$")
        assert folder.exists()
    compare.compare_runs(results)
    for name in ("comparison_accuracy.png", "comparison_elbo.png"):
        assert (results / name).stat().st_size > 1000


@pytest.mark.parametrize("metrics", [[], {"split": "test"}, {"metrics": {"accuracy": {"status": "success",
                                                                                       "value": "high"}}}])
def test_a_metrics_file_of_the_wrong_shape_stops_the_report_naming_it(tmp_path, metrics):
    from ssvae.results import report

    (tmp_path / "train.json").write_text("{}")
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r"metrics\.json cannot be reported: metrics\.json: "):
        report.build_report(tmp_path, None, {}, {}, [])


LIST_RUNS = ("import sys; from ssvae import cli; sys.exit(cli.main(['runs', '--results', sys.argv[1]]) "
             "or cli.main(['compare', '--results', sys.argv[1]]))")


def test_fifos_and_devices_under_results_neither_hang_nor_crash_the_listing(results, template):
    import os
    import subprocess
    import sys

    (results / BAD / "summary.json").unlink()
    os.mkfifo(results / BAD / "summary.json")
    other = write_summary_folder(results, template, "zero__std_head_plain__20250105_000000",
                                 accuracy=0.8, baseline=0.7, elbo=-90.0)
    (other / "summary.json").unlink()
    (other / "summary.json").symlink_to("/dev/zero")
    failed = results / "failed__std_head_plain__20250106_000000"
    failed.mkdir()
    os.mkfifo(failed / "train_failed.json")
    (results / ".ledger").mkdir()
    os.mkfifo(results / ".ledger" / "good.json")
    (results / ".plan" / "good").mkdir(parents=True)
    (results / ".plan" / "good" / "run.json").symlink_to("/dev/zero")
    done = subprocess.run([sys.executable, "-c", LIST_RUNS, str(results)], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "summary.json cannot be read (not a regular file)" in done.stderr
    rows = {r["run_id"]: r for r in compare.run_rows(results)}
    assert rows[BAD]["status"] == rows[other.name]["status"] == "unreadable"
    assert rows[failed.name]["status"] == "failed"
    assert runs.recorded_timestamp(results, "good", "x") is None


@pytest.mark.parametrize("content", [None, b"[1]", b'{"trials": "x"}', b'{"rung": 0, "trials": [1]}', b"{"])
def test_a_damaged_or_fifo_search_record_is_left_out_of_the_decisions(tmp_path, content):
    import os

    from ssvae.results import halving, searches

    folder = tmp_path / halving.SEARCH_DIR / "s"
    folder.mkdir(parents=True)
    if content is None:
        os.mkfifo(folder / "rung0.json")
    else:
        (folder / "rung0.json").write_bytes(content)
    with __import__("ssvae.pipeline.planning", fromlist=["_time_limit"])._time_limit(30):
        assert searches._promotions(tmp_path, "s") == {}
