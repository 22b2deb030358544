"""Planning many configs at once (ssvae.pipeline.planning), the timestamp ledger's recovery, and the train lock."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ssvae import disk
from ssvae.pipeline import planning, stages
from ssvae.results import runlock, runs

GOOD = textwrap.dedent("""\
    experiment: {{name: {name}}}
    data: {{dataset: digits, num_samples: 400, num_labeled: 40}}
    model: {{hidden_dims: [16], latent_dim: 2, max_epochs: 1, learning_rate: {lr}}}
""")


def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


def plan(tmp_path, results, files):
    sources = planning.plan_sources(files, results)
    validated = planning.validate_all(sources, results)
    derived = planning.derive_all(sources, results)
    return sources, validated, derived


def test_every_bad_file_fails_only_its_own_plans(tmp_path, results):
    files = [write(tmp_path, "good.yaml", GOOD.format(name="good", lr=0.001)),
             write(tmp_path, "latin1.yaml", "experiment: {description: 'caf\xe9'}\n".encode("latin-1")),
             write(tmp_path, "broken.yaml", "model: [unclosed\n"),
             str(tmp_path / "missing.yaml"),
             write(tmp_path, "a/dup.yaml", GOOD.format(name="dup_a", lr=0.002)),
             write(tmp_path, "b/dup.yaml", GOOD.format(name="dup_b", lr=0.003)),
             write(tmp_path, "twin1.yaml", GOOD.format(name="twin", lr=0.004)),
             write(tmp_path, "twin2.yaml", GOOD.format(name="twin", lr=0.004))]
    sources, validated, derived = plan(tmp_path, results, files)
    assert sorted(sources) == ["broken", "dup", "good", "latin1", "missing", "twin1", "twin2"]
    assert [k for k, d in derived.items() if d["ok"]] == ["good"]
    errors = {key: (results / ".plan" / key / "errors.txt").read_text() for key in sources if key != "good"}
    assert "latin1.yaml" in errors["latin1"] and "missing.yaml" in errors["missing"]
    assert "broken.yaml" in errors["broken"]
    assert f"{files[4]} and {files[5]} both give the run key 'dup'" in errors["dup"]
    assert f"gives the same run as {files[7]}" in errors["twin1"]
    assert f"gives the same run as {files[6]}" in errors["twin2"]
    assert not (results / ".plan" / "good" / "errors.txt").exists()
    # the run id -> plan pointer the stage scripts use
    run_id = derived["good"]["run_id"]
    assert planning.plan_of_run(results, run_id) == (results / ".plan" / "good" / "validated.json",
                                                    results / ".plan" / "good" / "run.json")
    (results / ".plan" / "runs" / f"{run_id}.json").unlink()  # lost pointer: found by scanning
    assert planning.plan_of_run(results, run_id)[1] == results / ".plan" / "good" / "run.json"
    with pytest.raises(planning.PlanNotFound, match="no plan under"):
        planning.plan_of_run(results, "other__std_head_plain__20260101_000000")


SEARCH = GOOD + textwrap.dedent("""\
    search:
      trials: 2
      space: {{model.learning_rate: {{log_uniform: [1.0e-4, 1.0e-2]}}}}
""")


def test_two_config_files_cannot_share_a_search_name(tmp_path, results, capsys):
    files = [write(tmp_path, "a.yaml", SEARCH.format(name="shared", lr=0.001)),
             write(tmp_path, "b.yaml", SEARCH.format(name="shared", lr=0.002) + "  seed: 7\n"),
             write(tmp_path, "own.yaml", SEARCH.format(name="own", lr=0.001))]
    sources, validated, derived = plan(tmp_path, results, files)
    assert sorted(sources) == ["a.t000", "a.t001", "b.t000", "b.t001", "own.t000", "own.t001"]
    assert sorted(k for k, d in derived.items() if d["ok"]) == ["own.t000", "own.t001"]
    for key, file, other in (("a.t000", files[0], files[1]), ("b.t001", files[1], files[0])):
        error = validated[key]["errors"][0]
        assert error["key"] == "experiment.name" and error["value"] == "shared"
        # both files, the key, the value and what to do
        assert error["text"] == (
            f"{file}: experiment.name: {file} and {other} both declare a search named 'shared', so their trials "
            f"would share results/.search/shared/ (promotions and decisions) and their run names; give one of "
            f"them another experiment.name (got 'shared')")
        assert error["text"] in (results / ".plan" / key / "errors.txt").read_text()
    # the preview says the same, and `ssvae validate` finds it too
    assert {row["key"]: row["action"] for row in planning.preview(files, results)} == {
        "a.t000": "invalid", "a.t001": "invalid", "b.t000": "invalid", "b.t001": "invalid",
        "own.t000": "new", "own.t001": "new"}
    from ssvae import cli

    assert cli.main(["validate", files[0], files[2]]) == 0
    capsys.readouterr()
    assert cli.main(["validate", *files]) == 1
    shown = capsys.readouterr().err
    assert f"invalid: {files[1]}: 1 error(s)\n  - {files[1]}: experiment.name: {files[1]} and {files[0]} " in shown
    assert "both declare a search named 'shared'" in shown


def test_plan_keys_are_cached_by_content(tmp_path, results):
    path = write(tmp_path, "sw.yaml", GOOD.format(name="sw", lr=0.001) + "sweep: {seeds: [0, 1]}\n")
    sources = planning.plan_sources([path], results)
    assert sources == {"sw.s0": [path], "sw.s1": [path]}
    planning.validate_all(sources, results)
    cache = json.loads((results / ".plan" / "keys.json").read_text())
    assert cache["files"][path]["keys"] == ["sw.s0", "sw.s1"]
    # parsing takes the keys of an unchanged file from the cache (here doctored, to show it is what is read) ...
    cache["files"][path]["keys"] = ["sw.cached"]
    (results / ".plan" / "keys.json").write_text(json.dumps(cache))
    assert planning.plan_sources([path], results) == {"sw.cached": [path]}
    # ... and reads a changed file again
    write(tmp_path, "sw.yaml", GOOD.format(name="sw", lr=0.001) + "sweep: {seeds: [7]}\n")
    assert planning.plan_sources([path], results) == {"sw.s7": [path]}


def test_a_current_plan_set_is_recognised_and_any_change_is_not(tmp_path, results):
    files = [write(tmp_path, "one.yaml", GOOD.format(name="one", lr=0.001))]
    sources = planning.plan_sources(files, results)
    digest = planning.contents_digest(files)
    derived = planning.derived_path(results, "set1", digest)
    assert not planning.plans_current(derived, sources, results)  # never planned
    assert planning.missing_plan_outputs(derived, sources, results) == [derived, str(results / ".plan/one/run.json")]
    planning.validate_all(sources, results)
    planning.write_derived(derived, planning.derive_all(sources, results), digest)
    assert planning.plans_current(derived, sources, results)
    assert planning.missing_plan_outputs(derived, sources, results) == []
    # an edit names another plan-set file, which does not exist yet
    write(tmp_path, "one.yaml", GOOD.format(name="one", lr=0.002))
    edited = planning.derived_path(results, "set1", planning.contents_digest(files))
    assert edited != derived and not planning.plans_current(edited, sources, results)
    assert planning.missing_plan_outputs(edited, sources, results) == [edited]
    # planning the edit removes the set's file for the earlier contents: going back plans again
    planning.validate_all(sources, results)
    planning.write_derived(edited, planning.derive_all(sources, results), planning.contents_digest(files))
    assert not Path(derived).exists()
    # a run.json deleted by hand is asked for again
    (results / ".plan" / "one" / "run.json").unlink()
    assert not planning.plans_current(edited, sources, results)
    assert planning.missing_plan_outputs(edited, sources, results) == [str(results / ".plan/one/run.json")]
    # a run.json rewritten since (by another invocation's plan set sharing the key): not current, the run ids are
    # read through the checkpoint
    planning.derive_all(sources, results)
    later = Path(edited).stat().st_mtime_ns + 10**9
    os.utime(results / ".plan" / "one" / "run.json", ns=(later, later))
    assert not planning.plans_current(edited, sources, results)
    assert planning.missing_plan_outputs(edited, sources, results) == [] and Path(edited).exists()


def test_a_lost_ledger_is_recovered_from_the_run_folders(results):
    ts = runs.mint_timestamp(results, "exp", "std_head_plain", "abc123")
    folder = results / f"exp__std_head_plain__{ts}"
    folder.mkdir(parents=True)
    disk.write_yaml(folder / "config.yaml", {"experiment": {"name": "exp"}, "identity": "abc123"})
    for path in (results / ".ledger").iterdir():
        path.unlink()
    assert runs.mint_timestamp(results, "exp", "std_head_plain", "abc123") == ts
    assert json.loads((results / ".ledger" / "exp.json").read_text())["abc123"]["ts"] == ts
    (results / ".ledger" / "exp.json").unlink()
    assert runs.rebuild_ledger(results) == {"exp": 1}
    assert json.loads((results / ".ledger" / "exp.json").read_text())["abc123"]["recovered_from"] == folder.name
    assert runs.mint_timestamp(results, "exp", "std_head_plain", "other") != ts  # a new identity: a new ts


def test_jax_cache_setting(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert stages.jax_cache_dir("auto", "res") == os.path.join("res", ".jax_cache")
    assert stages.jax_cache_dir("none") is None and stages.jax_cache_dir("") is None
    monkeypatch.setenv("SCRATCH_X", "/scratch/me")
    assert stages.jax_cache_dir("$SCRATCH_X/jax") == "/scratch/me/jax"
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert stages.jax_cache_dir("auto", "res").startswith("/tmp/ssvae-jax-cache-")


def test_a_second_train_job_on_a_busy_run_folder_fails_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); from ssvae.results import runlock;"
         "ctx = runlock.holding(sys.argv[2]); ctx.__enter__(); print('held', flush=True); time.sleep(60)",
         str(planning.__file__).rsplit("/ssvae/", 1)[0], str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "SLURM_JOB_ID": "4242"})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runlock.RunFolderBusy, match=r"SLURM job 4242, pid \d+ .*scancel 4242"):
            with runlock.holding(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with runlock.holding(tmp_path):  # the holder is gone, and with it the lock
        assert f"pid {os.getpid()}" in (tmp_path / runlock.LOCK_NAME).read_text()


def test_the_preview_says_what_the_next_invocation_does_without_writing(tmp_path, results):
    """`ssvae plan`: new, stale (which stage, why), done or invalid per plan; nothing under results/ changes."""
    from ssvae.results import runstate

    files = [write(tmp_path, "one.yaml", GOOD.format(name="one", lr=0.001)),
             write(tmp_path, "two.yaml", GOOD.format(name="two", lr=0.002)),
             write(tmp_path, "bad.yaml", "model: {prior_type: mixtur}\n")]
    sources = planning.plan_sources(files, results)
    planning.validate_all(sources, results)
    derived = planning.derive_all(sources, results)
    folder = results / derived["one"]["run_id"]
    validated = disk.read_json(results / ".plan" / "one" / "validated.json")
    for path in runstate.RUN_OUTPUTS:  # a finished run, as the workflow leaves it
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        if path == "figures":
            (folder / path).mkdir()
        else:
            (folder / path).write_text("{}")
    disk.write_yaml(folder / "config.yaml", validated["effective"])
    before = sorted((p, p.stat().st_mtime_ns) for p in results.rglob("*"))
    rows = {row["key"]: row for row in planning.preview(files, results, workdir=tmp_path)}
    assert sorted((p, p.stat().st_mtime_ns) for p in results.rglob("*")) == before
    assert (rows["one"]["action"], rows["one"]["run_id"]) == ("done", folder.name)
    assert (rows["two"]["action"], rows["two"]["stage"]) == ("new", "train")  # planned, never started
    assert rows["two"]["run_id"] == derived["two"]["run_id"]
    assert rows["bad"]["action"] == "invalid" and "model.prior_type" in rows["bad"]["reason"]
    write(tmp_path, "one.yaml", GOOD.format(name="one", lr=0.001) + "evaluation: {num_plot_samples: 100}\n")
    (row,) = [r for r in planning.preview(files[:1], results, workdir=tmp_path)]
    assert (row["action"], row["stage"], row["reason"]) == ("stale", "evaluate", "evaluation.num_plot_samples changed")
    (folder / "REPORT.md").unlink()
    write(tmp_path, "one.yaml", GOOD.format(name="one", lr=0.001))
    (row,) = planning.preview(files[:1], results, workdir=tmp_path)
    assert (row["action"], row["stage"], row["reason"]) == ("stale", "report", "REPORT.md missing")
    shutil.rmtree(folder)
    (row,) = planning.preview(files[:1], results, workdir=tmp_path)
    assert (row["action"], row["stage"], row["run_id"]) == ("new", "train", folder.name)
    write(tmp_path, "one.yaml", GOOD.format(name="one", lr=0.003))  # a model never planned: no run id yet
    (row,) = planning.preview(files[:1], results, workdir=tmp_path)
    assert (row["action"], row["run_id"], row["reason"]) == ("new", None, "not trained yet")
