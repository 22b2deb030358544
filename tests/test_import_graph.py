"""Each stage imports only what it uses: every stage runs for real in a fresh process, and the top-level
packages in sys.modules when it exits are checked (lazy imports inside functions included).

- planning (validate_config, derive_arch_code: run inside Snakemake's process), the naming legend: no JAX, no
  scikit-learn/scipy/pandas, no matplotlib;
- train: JAX, Flax, Optax; no scikit-learn/scipy/pandas, no matplotlib;
- evaluate: JAX and scikit-learn (the logistic-regression baseline, clustering metrics); no Optax (it loads
  the model without the training machinery), no matplotlib;
- report and compare: matplotlib, no JAX.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
JAX = {"jax", "jaxlib", "flax", "optax"}
SCIENTIFIC = {"sklearn", "scipy", "pandas"}
PLOTTING = {"matplotlib"}

RECORD = """
import atexit, json, runpy, sys
out, script = sys.argv[1], sys.argv[2]
atexit.register(lambda: json.dump(sorted({m.split('.')[0] for m in sys.modules}), open(out, 'w')))
sys.argv = sys.argv[2:]
sys.path.insert(0, str(__import__('pathlib').Path(script).parent))
runpy.run_path(script, run_name='__main__')
"""


def packages_of(tmp_path: Path, script: str, *args: str) -> set[str]:
    """Top-level packages imported by one real run of scripts/<script> (in tmp_path as working directory)."""
    out = tmp_path / f"{script}.modules.json"
    proc = subprocess.run([sys.executable, "-c", RECORD, str(out), str(SCRIPTS / script), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return set(json.loads(out.read_text()))


PLAN = """
import atexit, json, sys
from pathlib import Path
out, config, results = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
atexit.register(lambda: json.dump(sorted({m.split('.')[0] for m in sys.modules}), open(out, 'w')))
from ssvae.pipeline import stages
plan = results / ".plan" / "tiny"
stages.validate_config(config, "tiny", plan / "validated.json", log=lambda _: None)
stages.derive_arch_code(plan / "validated.json", results, plan / "run.json", log=lambda _: None)
"""


def plan(tmp_path: Path) -> tuple[str, set[str]]:
    """Plan a tiny digits config as the workflow's planning rules do (validate_config, derive_arch_code, in
    Snakemake's own process: here a fresh one); (the run folder, the packages planning imported)."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": {"name": "tiny"}, "data": {"dataset": "digits", "num_samples": 300, "num_labeled": 30},
        "model": {"hidden_dims": [16], "latent_dim": 2, "max_epochs": 1}, "report": {"dpi": 50}}))
    out = tmp_path / "planning.modules.json"
    proc = subprocess.run([sys.executable, "-c", PLAN, str(out), str(config), "results"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = json.loads((tmp_path / "results/.plan/tiny/run.json").read_text())["run_id"]
    return f"results/{run_id}", set(json.loads(out.read_text()))


def test_planning_the_legend_and_compare_import_no_jax_and_no_scientific_stack(tmp_path):
    _, planning = plan(tmp_path)
    legend = packages_of(tmp_path, "naming_legend.py", "--out", "results/NAMING_LEGEND.md")
    compare = packages_of(tmp_path, "compare.py", "--results", "results")
    for name, imported in (("planning", planning), ("naming_legend", legend)):
        assert not imported & (JAX | SCIENTIFIC | PLOTTING), (name, imported & (JAX | SCIENTIFIC | PLOTTING))
    assert not compare & (JAX | SCIENTIFIC), compare & (JAX | SCIENTIFIC)


@pytest.mark.jax
def test_train_evaluate_and_report_import_only_what_they_use(tmp_path):
    run_dir, _ = plan(tmp_path)
    jax_args = ["--threads", "1", "--jax-cache", "none"]
    trained = packages_of(tmp_path, "train.py", "--run-dir", run_dir, *jax_args)
    evaluated = packages_of(tmp_path, "evaluate.py", "--run-dir", run_dir, *jax_args)
    reported = packages_of(tmp_path, "report.py", "--run-dir", run_dir)
    assert JAX <= trained and not trained & (SCIENTIFIC | PLOTTING), trained & (SCIENTIFIC | PLOTTING)
    assert {"jax", "sklearn"} <= evaluated and not evaluated & (PLOTTING | {"optax"})
    assert "matplotlib" in reported and not reported & JAX, reported & JAX
