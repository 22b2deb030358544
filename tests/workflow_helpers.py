"""Run the real `snakemake` on tiny configs in a scratch folder, and read what it did."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SSVAE = str(Path(sys.executable).with_name("ssvae"))

# The workflow's tests train the smallest program: no consistency term (its second forward pass adds to every
# step and to the compile time); tests/test_train.py and tests/test_vamp_and_augment.py test the term.
TINY_MODEL = {"hidden_dims": [32, 16], "latent_dim": 4, "batch_size": 64, "max_epochs": 2, "patience": 2,
              "consistency_weight": 0.0}


def tiny_config(name: str, model: dict | None = None, **sections: dict) -> str:
    """A digits config that trains in a few seconds."""
    doc = {
        "experiment": {"name": name, "description": "tiny test run"},
        "data": {"dataset": "digits", "num_samples": 400, "num_labeled": 40},
        "model": {**TINY_MODEL, **(model or {})},
        "evaluation": {"num_plot_samples": 200},
        "report": {"dpi": 60},
    }
    for section, values in sections.items():
        doc.setdefault(section, {}).update(values)
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Result:
    returncode: int
    output: str

    @property
    def jobs(self) -> list[str]:
        """Rule names of the jobs that ran, in order (from Snakemake's own log lines)."""
        return re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", self.output, flags=re.M)

    def ran(self, rule: str) -> int:
        return self.jobs.count(rule)

    @property
    def nothing_to_do(self) -> bool:
        return "Nothing to be done" in self.output


WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "src", "envs", "profiles"]


# Set by conftest.py for the whole test session: one compilation cache for every workspace, as one user's runs
# share theirs, so that each tiny architecture compiles once a session instead of once a test.
SHARED_JAX_CACHE_ENV = "SSVAE_TEST_JAX_CACHE"


def make_workspace(dst: Path, configs: dict[str, str]) -> Path:
    """A checkout-like folder: the workflow, its scripts and library, and the given configs/*.yaml."""
    dst.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_symlink():
            (dst / name).symlink_to(os.readlink(src))
        elif src.is_dir():
            shutil.copytree(src, dst / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(src, dst / name)
    (dst / "configs").mkdir(exist_ok=True)
    for name, text in configs.items():
        (dst / "configs" / name).write_text(text)
    return dst


def snakemake_cmd(workdir: Path, *args: str, experiments: list[str] | None = None,
                  config: dict[str, str] | None = None) -> list[str]:
    """The command line; the jobs compile into the test session's shared cache (conftest.shared_jax_cache) unless
    `config` names a `jax_cache` of its own."""
    settings = dict(config or {})
    if "jax_cache" not in settings and os.environ.get(SHARED_JAX_CACHE_ENV):
        settings["jax_cache"] = os.environ[SHARED_JAX_CACHE_ENV]
    if experiments is not None:
        settings["experiments"] = "[" + ",".join(experiments) + "]"
    cmd = [SNAKEMAKE, "--cores", "2", *args]
    if settings:  # last: --config takes every word after it, targets included
        cmd += ["--config", *[f"{k}={v}" for k, v in settings.items()]]
    return cmd


def snakemake_env() -> dict:
    """The stage scripts run `python`: make it this test run's interpreter, as an activated venv would."""
    return {**os.environ, "PYTHONUNBUFFERED": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def snakemake(workdir: Path, *args: str, experiments: list[str] | None = None, config: dict | None = None,
              check: bool = True, timeout: int = 600) -> Result:
    cmd = snakemake_cmd(workdir, *args, experiments=experiments, config=config)
    env = snakemake_env()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    result = Result(proc.returncode, proc.stdout + proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{result.output[-6000:]}")
    return result


def run_folders(workdir: Path) -> list[Path]:
    return sorted(p for p in (workdir / "results").glob("*__*__*") if p.is_dir())


def folder_hashes(folder: Path) -> dict[str, str]:
    """Content hash of every file under a folder, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def clone_workspace(src: Path, dst: Path) -> Path:
    """A copy of a finished workspace (results and Snakemake's metadata, mtimes kept)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst
