"""The whole bad-config corpus beside one good tiny config, through one real `snakemake --keep-going`.

Snakemake must parse, the good experiment must finish, each bad config must fail in its own validate_config
job with its readable message, no run folder may exist for a bad config, and the invocation exits non-zero.
"""

from __future__ import annotations

import json
import re

import pytest
from workflow_helpers import make_workspace, run_folders, snakemake, tiny_config

from ssvae import config

from .corpus import CORPUS, write_corpus

pytestmark = pytest.mark.workflow

ITEMS = [item for item in CORPUS if item.workflow]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    workspace = make_workspace(tmp_path_factory.mktemp("corpus_ws"), {"good.yaml": tiny_config("good")})
    paths = write_corpus(workspace / "configs", ITEMS)
    result = snakemake(workspace, "--keep-going", check=False, timeout=900)
    return workspace, paths, result


def plan_logs(workspace, key: str) -> str:
    """Every log of one plan (whichever planning job reported its errors)."""
    return "\n".join(p.read_text() for p in sorted((workspace / "results" / ".plan" / key / "logs").glob("*.log")))


def test_snakemake_parses_runs_the_good_config_and_fails_each_bad_one_alone(corpus_run):
    workspace, paths, result = corpus_run
    assert result.returncode != 0, result.output[-3000:]
    head, sep, _ = result.output.partition("Building DAG of jobs")
    assert sep and "Traceback" not in head, result.output[:3000]
    keys = {item.id: config.plan_keys(paths[item.id]) for item in ITEMS}
    bad_keys = [key for item_keys in keys.values() for key in item_keys]
    for key in bad_keys + ["good"]:
        assert (workspace / "results" / ".plan" / key).is_dir(), key  # every config was planned

    folders = run_folders(workspace)
    assert [f.name.split("__")[0] for f in folders] == ["good"], [f.name for f in folders]
    summary = json.loads((folders[0] / "summary.json").read_text())
    assert summary["status"] == "success"
    assert (workspace / "results" / "NAMING_LEGEND.md").is_file()

    failed = re.findall(r"^Error in rule (\w+):", result.output, flags=re.M)
    assert len(failed) == len(bad_keys) and set(failed) <= {"validate_config", "invalid_config"}, failed
    for item in ITEMS:
        for key in keys[item.id]:
            log = plan_logs(workspace, key)
            assert "Traceback" not in log, (item.id, log)
            assert str(paths[item.id].relative_to(workspace)) in log, (item.id, log)
            for words in item.expect:
                assert words in log, (item.id, words, log)


def test_compare_is_built_over_the_good_runs(corpus_run):
    workspace, _, _ = corpus_run
    assert "good__" in (workspace / "results" / "COMPARISON.md").read_text()
