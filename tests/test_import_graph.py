"""Each stage imports only what it uses: every stage script runs for real in a fresh process, and the top-level
packages in sys.modules when it exits are checked (lazy imports inside functions included).

- planning (validate_config, derive_arch_code), the naming legend: no JAX, no scikit-learn/scipy/pandas, no
  matplotlib;
- train: JAX, Flax, Optax; no scikit-learn/scipy/pandas, no matplotlib;
- evaluate: JAX and scikit-learn (the logistic-regression baseline, clustering metrics), no matplotlib;
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


def plan(tmp_path: Path) -> tuple[str, str, set[str], set[str]]:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "experiment": {"name": "tiny"}, "data": {"dataset": "digits", "num_samples": 300, "num_labeled": 30},
        "model": {"hidden_dims": [16], "latent_dim": 2, "max_epochs": 1}, "report": {"dpi": 50}}))
    validated, run_json = "results/.plan/tiny/validated.json", "results/.plan/tiny/run.json"
    (tmp_path / "results/.plan/tiny/logs").mkdir(parents=True)
    validate = packages_of(tmp_path, "validate_config.py", str(config), "--key", "tiny", "--out", validated,
                           "--log", "results/.plan/tiny/logs/validate_config.log")
    derive = packages_of(tmp_path, "derive_arch_code.py", validated, "--results", "results", "--out", run_json)
    return validated, run_json, validate, derive


def test_planning_the_legend_and_compare_import_no_jax_and_no_scientific_stack(tmp_path):
    _, _, validate, derive = plan(tmp_path)
    legend = packages_of(tmp_path, "naming_legend.py", "--out", "results/NAMING_LEGEND.md")
    compare = packages_of(tmp_path, "compare.py", "--results", "results")
    for name, imported in (("validate_config", validate), ("derive_arch_code", derive), ("naming_legend", legend)):
        assert not imported & (JAX | SCIENTIFIC | PLOTTING), (name, imported & (JAX | SCIENTIFIC | PLOTTING))
    assert not compare & (JAX | SCIENTIFIC), compare & (JAX | SCIENTIFIC)


@pytest.mark.jax
def test_train_evaluate_and_report_import_only_what_they_use(tmp_path):
    validated, run_json, _, _ = plan(tmp_path)
    run_dir = "results/" + json.loads((tmp_path / run_json).read_text())["run_id"]
    jax_args = ["--threads", "1", "--jax-cache", "none"]
    trained = packages_of(tmp_path, "train.py", "--validated", validated, "--run-json", run_json,
                          "--run-dir", run_dir, *jax_args)
    evaluated = packages_of(tmp_path, "evaluate.py", "--validated", validated, "--run-dir", run_dir, *jax_args)
    reported = packages_of(tmp_path, "report.py", "--validated", validated, "--run-json", run_json,
                           "--run-dir", run_dir)
    assert JAX <= trained and not trained & (SCIENTIFIC | PLOTTING), trained & (SCIENTIFIC | PLOTTING)
    assert {"jax", "sklearn"} <= evaluated and not evaluated & PLOTTING
    assert "matplotlib" in reported and not reported & JAX, reported & JAX
