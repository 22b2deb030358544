"""What Snakemake's parsing reads (the config files, the plan files): a FIFO, a device or a symlink to one fails
only its own plan, readably; a damaged plan file is removed and planned again. Parsing runs in a child process
with a time limit, so a regression hangs one test, not the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from workflow_helpers import tiny_config

from ssvae.pipeline import planning

PLAN = textwrap.dedent("""
    import json, sys
    from ssvae.pipeline import planning
    files = sys.argv[1:]
    sources = planning.plan_sources(files, results="results")
    digest = planning.contents_digest([f for fs in sources.values() for f in fs])
    documents = planning.validate_all(sources, results="results")
    print(json.dumps({key: [e["text"] for e in doc["errors"]] for key, doc in documents.items()}))
""")


@pytest.fixture
def hazards(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "good.yaml").write_text(tiny_config("good"))
    os.mkfifo(configs / "fifo.yaml")
    (configs / "zero.yaml").symlink_to("/dev/zero")
    (configs / "null.yaml").symlink_to("/dev/null")
    (configs / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (configs / "folder.yaml").mkdir()
    return tmp_path


def test_parsing_plans_the_good_config_and_fails_each_hazard_alone(hazards):
    files = sorted(str(p.relative_to(hazards)) for p in (hazards / "configs").iterdir())
    done = subprocess.run([sys.executable, "-c", PLAN, *files], cwd=hazards, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr[-3000:]
    errors = json.loads(done.stdout)
    assert errors.pop("good") == []
    assert set(errors) == {"fifo", "zero", "null", "dangling", "folder"}
    for key, found in errors.items():
        assert len(found) == 1 and f"configs/{key}.yaml" in found[0], (key, found)
        assert "not a regular file" in found[0] or "cannot read" in found[0], (key, found)


@pytest.mark.parametrize("content", [b"", b'{"ok": tru', b"\xff", b"[1]", b'{"ok": "yes"}', b'{"ok": true}',
                                     b"[" * 100000])
def test_a_damaged_plan_file_is_removed_with_the_manifest(tmp_path, content):
    plan = tmp_path / "results" / ".plan" / "exp"
    plan.mkdir(parents=True)
    (plan / "run.json").write_text(json.dumps({"ok": True, "run_id": "exp__std_head_plain__20250101_000000"}))
    (plan / "validated.json").write_bytes(content)
    manifest = tmp_path / "results" / ".plan" / "sets" / "x.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    good, damaged = planning.drop_damaged_plan_files(["exp"], manifest, results=tmp_path / "results")
    assert list(good) == [str(plan / "run.json")]
    assert len(damaged) == 1 and str(plan / "validated.json") in damaged[0] and "planned again" in damaged[0]
    assert not (plan / "validated.json").exists() and not manifest.exists()


@pytest.mark.workflow
def test_snakemake_plans_again_over_damaged_files_and_fails_only_the_hazards(trained_workspace, tmp_path):
    from reliability.conftest import finished_runs_unchanged
    from workflow_helpers import clone_workspace, run_folders, snakemake

    workspace = clone_workspace(trained_workspace, tmp_path / "ws")
    results = workspace / "results"
    before = {f.name for f in run_folders(workspace)}
    (results / ".plan" / "alpha" / "run.json").write_text('{"ok": true, "run_')
    (results / ".plan" / "beta.s42" / "validated.json").write_text("[]")
    (results / ".ledger" / "alpha.json").write_bytes(b"\x00garbage")
    (results / ".ledger" / "beta-s42.json").write_text("")
    os.mkfifo(workspace / "configs" / "fifo.yaml")
    (workspace / "configs" / "zero.yaml").symlink_to("/dev/zero")
    with finished_runs_unchanged(results):
        result = snakemake(workspace, "--keep-going", check=False, timeout=600)
    assert result.returncode != 0  # the two hazards are invalid configs
    assert result.ran("train") == 0 and result.ran("evaluate") == 0, result.jobs
    assert result.ran("invalid_config") == 2
    assert "configs/fifo.yaml" in result.output and "configs/zero.yaml" in result.output
    assert "not a regular file" in result.output
    assert "run.json was damaged" in result.output and "validated.json was damaged" in result.output
    assert {f.name for f in run_folders(workspace)} == before
    assert json.loads((results / ".plan" / "alpha" / "run.json").read_text())["run_id"] in before


def test_an_invalid_configs_message_holds_no_escape_sequence_from_its_file_name(tmp_path):
    name = "bad\x1b]0;pwned\x07\u202e.yaml"
    (tmp_path / name).write_text("model:\n  prior_type: \"\\e[2J\"\n")
    sources = planning.plan_sources([str(tmp_path / name)], results=tmp_path / "results")
    documents = planning.validate_all(sources, results=tmp_path / "results")
    shown = planning.error_text(next(iter(documents.values())))
    assert "bad" in shown and "prior_type" in shown
    assert not any(ch in shown for ch in "\x1b\x07\u202e"), repr(shown)


def test_a_fifo_or_a_device_among_the_plan_files_is_removed_without_being_read(tmp_path):
    plan = tmp_path / "results" / ".plan" / "exp"
    plan.mkdir(parents=True)
    os.mkfifo(plan / "run.json")
    (plan / "validated.json").symlink_to("/dev/zero")
    manifest = tmp_path / "results" / ".plan" / "sets" / "x.json"
    manifest.parent.mkdir()
    os.mkfifo(manifest)
    with planning._time_limit(30):  # a FIFO read would wait for a writer forever
        assert not planning.plans_current(manifest, {"exp": ["configs/exp.yaml"]},
                                          results=tmp_path / "results")
        good, damaged = planning.drop_damaged_plan_files(["exp"], manifest, results=tmp_path / "results")
    assert good == {} and len(damaged) == 2 and all("not a regular file" in line for line in damaged)
    assert not (plan / "run.json").exists() and not (plan / "validated.json").is_symlink()
