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


def pytest_collection_modifyitems(config, items):
    """The cluster tier runs last: it installs SLURM's client tools, and while they are installed without a
    running controller every local `snakemake` waits ~10 s for them (tests/cluster/ purges them at the end)."""
    items.sort(key=lambda item: item.get_closest_marker("cluster") is not None)
