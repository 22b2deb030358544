"""Reading a config file into a mapping of sections, or the errors that say why it cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .types import SECTIONS, ConfigError


def read_yaml(path: Path) -> tuple[Any, list[ConfigError]]:
    """The file's top-level mapping (empty file: {}), or None and the errors."""
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return None, [ConfigError(file, "", None, f"cannot read the file: {exc.strerror or exc}")]
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigError(file, "", None, f"not valid YAML{where}: {problem}")]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [ConfigError(file, "", type(raw).__name__, "a config must be a mapping of sections",
                                  allowed=", ".join(SECTIONS + ("sweep",)))]
    return raw, []
