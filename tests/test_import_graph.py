"""The library's layering, read from its source, and what each stage imports when it really runs.

Static (from the import statements, lazy ones inside functions included):
- each part of `ssvae` (a sub-package or a top-level module) imports only the parts its `__init__` docstring
  allows (`MAY_IMPORT`), and that table has an order: no part imports one above it;
- no two modules import each other, directly or around a circle;
- nothing imports by a computed name (`importlib.import_module`), which would hide an edge from these tests.

Each stage in a fresh process (the top-level packages in sys.modules when it exits):
- planning (validate_config, derive_arch_code: run inside Snakemake's process), the naming legend: no JAX, no
  scikit-learn/scipy/pandas, no matplotlib;
- train: JAX, Flax, Optax; no scikit-learn/scipy/pandas, no matplotlib;
- evaluate: JAX and scikit-learn (the logistic-regression baseline, clustering metrics); no Optax (it loads
  the model without the training machinery), no matplotlib;
- report and compare: matplotlib, no JAX.
And every module of the JAX-free parts imports without JAX.
"""

from __future__ import annotations

import ast
import graphlib
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

SRC = REPO / "src"

# What each part may import besides itself: the sub-packages' __init__ docstrings say the same in words. `ssvae`
# is the package's own __init__ (the version).
LEAVES = {"ssvae", "text", "shapes", "disk", "document", "naming"}
MAY_IMPORT = {
    "ssvae": set(),
    "text": set(),
    "shapes": {"disk"},
    "disk": set(),
    "document": {"text"},
    "naming": {"document"},
    "config": {"naming"},
    "data": {"config"},
    "runtime": set(),
    "evaluation": {"config", "data", "disk"},
    "results": {"config", "data", "evaluation"} | LEAVES,
    "model": {"config", "data", "evaluation", "runtime", "disk"},
    "training": {"config", "data", "evaluation", "runtime", "model", "disk"},
    "pipeline": {"config", "data", "evaluation", "runtime", "model", "training", "results"} | LEAVES,
    "watch": {"results", "text"},
    "cli": {"config", "pipeline", "results", "watch"} | LEAVES,
}
# The parts that never load JAX, the pipeline modules that run inside Snakemake's process, and the thread setup
# that runs before JAX loads.
JAX_FREE = ("config", "data", "evaluation", "results", "naming", "disk", "document", "text", "shapes")
JAX_FREE_MODULES = ("ssvae.pipeline.planning", "ssvae.pipeline.validation", "ssvae.runtime.compute")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the ssvae modules it imports anywhere in its source (a package's name stands for its __init__)."""
    graph = {}
    for path in sorted((src / "ssvae").rglob("*.py")):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name.split(".")[0] == "ssvae"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([base] if base else []))
                if base.split(".")[0] == "ssvae":
                    targets |= {f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base for a in node.names}
        graph[module] = targets - {module}
    return graph


def part_of(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_part_imports_only_what_it_may():
    wrong = sorted(f"{module} imports {target}" for module, targets in import_graph().items() for target in targets
                   if part_of(target) != part_of(module) and part_of(target) not in MAY_IMPORT[part_of(module)])
    assert not wrong, wrong


def test_the_parts_have_an_order_so_no_import_goes_up():
    assert set(MAY_IMPORT) == {part_of(module_name(p)) for p in (SRC / "ssvae").rglob("*.py")}
    order = list(graphlib.TopologicalSorter(MAY_IMPORT).static_order())  # raises CycleError on a circle
    assert order.index("config") < order.index("data") < order.index("evaluation") < order.index("model")


def test_no_modules_import_each_other_around_a_circle():
    graphlib.TopologicalSorter(import_graph()).prepare()  # raises CycleError naming the circle


def test_nothing_imports_a_module_by_a_computed_name():
    assert not [str(p.relative_to(REPO)) for p in (SRC / "ssvae").rglob("*.py") if "import_module(" in p.read_text()]


def test_the_jax_free_parts_load_no_jax():
    modules = sorted(module_name(p) for p in (SRC / "ssvae").rglob("*.py")
                     if part_of(module_name(p)) in JAX_FREE) + list(JAX_FREE_MODULES)
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'jaxlib', 'flax', 'optax'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", done.stdout


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
