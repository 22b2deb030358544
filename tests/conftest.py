import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def write_config(tmp_path):
    """Write a YAML config (dedented text) into tmp_path and return its path."""

    def write(text: str, name: str = "exp.yaml", folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(scope="session", autouse=True)
def shared_jax_cache(tmp_path_factory):
    """The compilation cache that every `snakemake` of the tests' workspaces uses (workflow_helpers.snakemake_cmd),
    unless a test names its own `jax_cache`: each architecture of the tiny configs compiles once a session. Cached
    programs are keyed by the program itself, so a hit runs exactly what a fresh compile would."""
    import os

    from workflow_helpers import SHARED_JAX_CACHE_ENV

    path = tmp_path_factory.mktemp("shared-jax-cache")
    os.environ[SHARED_JAX_CACHE_ENV] = str(path)
    yield path
    os.environ.pop(SHARED_JAX_CACHE_ENV, None)


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """A real summary.json (from a run of the synthetic model) that the comparison and CLI tests copy and vary."""
    from synthetic_run import template_summary

    return template_summary(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory):
    """A workspace where the real `snakemake` trained, evaluated, reported and compared two tiny runs (a standard
    prior, and a τ-classifier mixture declared as a one-seed sweep, so its run is `beta-s42`), shared by the
    results tests that need real run folders. Copy it (workflow_helpers.clone_workspace) before changing
    anything."""
    from workflow_helpers import make_workspace, snakemake, tiny_config

    configs = {"alpha.yaml": tiny_config("alpha"),
               "beta.yaml": tiny_config("beta", model={"prior_type": "mixture", "num_components": 10,
                                                       "use_tau_classifier": True, "decoder_conditioning": "film"},
                                     sweep={"seeds": [42]})}
    workspace = make_workspace(tmp_path_factory.mktemp("trained"), configs)
    snakemake(workspace)
    return workspace


def pytest_collection_modifyitems(config, items):
    """The cluster tier runs last (with pytest-xdist: last on its worker): it installs SLURM's client tools, and
    while they are installed without a running controller every local `snakemake` waits ~10 s for them
    (tests/cluster/ purges them at the end)."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)
