"""Reading a config file: bounded, strict YAML 1.2 into a mapping of sections, or errors naming file:line.

The file is read as UTF-8 (a byte-order mark is allowed) and parsed by ruamel.yaml as YAML 1.2, so `1e-3`
is a number and `yes` is text. Before anything is parsed the file must be a regular file of at most
`MAX_CONFIG_BYTES`; while it is parsed (one pass, through `_CheckedParser`) it must be one document with no
tags, no recursive aliases, aliases that add at most `MAX_ALIAS_NODES` nodes when expanded (a "billion
laughs" file stops there, not after filling memory) and nesting at most `MAX_DEPTH` deep. Duplicate keys
are errors. The line of every key is kept, so later errors can name `file:line` too.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.parser import Parser

from ssvae.config.types import SECTIONS, ConfigError, clip, shorten

MAX_CONFIG_BYTES = 1_000_000
MAX_ALIAS_NODES = 10_000
MAX_DEPTH = 50


@dataclasses.dataclass
class Loaded:
    """A config file as read: its top-level mapping (None if unreadable), the errors, and key -> line."""

    raw: dict | None
    errors: list[ConfigError]
    lines: dict[str, int]


class _Rejected(Exception):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message, self.line = message, line


@dataclasses.dataclass
class _Frame:
    path: tuple
    is_map: bool
    anchor: str | None
    start_nodes: int
    expect_key: bool = True
    key: Any = None
    index: int = 0


class _Scan:
    """Watches the parser's events: documents, tags, aliases, and the line of every key."""

    def __init__(self):
        self.documents = 0
        self.nodes = 0  # nodes so far, aliases counted expanded
        self.alias_nodes = 0
        self.anchors: dict[str, int] = {}  # anchor -> expanded size of its node
        self.open_anchors: set[str] = set()
        self.stack: list[_Frame] = []
        self.lines: dict[str, int] = {}

    def _path_of_next_node(self, event, line: int) -> tuple | None:
        """Where the node this event starts sits; None if it is a mapping key."""
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if not frame.is_map:
            frame.index += 1
            return frame.path + (frame.index - 1,)
        if frame.expect_key:
            if not isinstance(event, ScalarEvent):
                raise _Rejected("mapping keys must be plain words (a list, mapping or alias is not a key)", line)
            frame.key = event.value
            frame.expect_key = False
            self.lines.setdefault(".".join(map(str, frame.path + (event.value,))), line)
            return None
        frame.expect_key = True
        return frame.path + (frame.key,)

    def see(self, event) -> None:
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _Rejected("a config is one YAML document; this file holds several (a second '---')", line)
            return
        if isinstance(event, CollectionEndEvent):
            frame = self.stack.pop()
            if frame.anchor is not None:
                self.anchors[frame.anchor] = self.nodes - frame.start_nodes
                self.open_anchors.discard(frame.anchor)
            return
        if not isinstance(event, NodeEvent):
            return
        path = self._path_of_next_node(event, line)
        if isinstance(event, AliasEvent):
            if event.anchor in self.open_anchors:
                raise _Rejected(f"alias *{shorten(event.anchor)} refers to a node that contains it", line)
            size = self.anchors.get(event.anchor, 1)
            self.nodes += size
            self.alias_nodes += size
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise _Rejected(f"aliases expand to more than {MAX_ALIAS_NODES:,} values; a config must stay small",
                                line)
            return
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _Rejected(f"YAML tags are not allowed in configs (found {shorten(str(tag))}); write plain values",
                            line)
        self.nodes += 1
        if path is not None and path:
            self.lines.setdefault(".".join(map(str, path)), line)
        if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
            if len(self.stack) >= MAX_DEPTH:
                raise _Rejected(f"nested more than {MAX_DEPTH} levels deep", line)
            self.stack.append(_Frame(path or (), isinstance(event, MappingStartEvent), event.anchor, self.nodes))
            if event.anchor is not None:
                self.open_anchors.add(event.anchor)
        elif event.anchor is not None:
            self.anchors[event.anchor] = 1


class _CheckedParser(Parser):
    """ruamel's parser, with every event shown to a `_Scan` as the composer takes it."""

    scan: _Scan

    def get_event(self):
        event = super().get_event()
        self.scan.see(event)
        return event


def _yaml(scan: _Scan) -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    yaml.max_depth = MAX_DEPTH + 5
    yaml.allow_duplicate_keys = False
    parser_class = type("Parser", (_CheckedParser,), {"scan": scan})
    yaml.Parser = parser_class
    return yaml


def _read_bytes(path: Path, file: str) -> tuple[bytes | None, ConfigError | None]:
    """The file's bytes, refusing before reading anything that is not a regular file or is too big."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return None, ConfigError(file, "", None, f"cannot read the file: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return None, ConfigError(file, "", None, "not a regular file (a folder, pipe or device is not a config)")
    if info.st_size > MAX_CONFIG_BYTES:
        return None, ConfigError(file, "", None, f"the file is {info.st_size:,} bytes; a config may be at most "
                                 f"{MAX_CONFIG_BYTES:,} bytes")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        return None, ConfigError(file, "", None, f"cannot read the file: {exc.strerror or exc}")
    if len(data) > MAX_CONFIG_BYTES:
        return None, ConfigError(file, "", None, f"the file is over {MAX_CONFIG_BYTES:,} bytes")
    return data, None


def _decode(data: bytes, file: str) -> tuple[str | None, ConfigError | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, ConfigError(
            file, "", None, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} cannot be read; "
            "save the file as UTF-8 (it may be Latin-1 or UTF-16)", line=line)


def _yaml_error(exc: YAMLError, file: str) -> ConfigError:
    """A parser error as one short line: what is wrong and where (never the file's text)."""
    mark = getattr(exc, "problem_mark", None) if isinstance(exc, MarkedYAMLError) else None
    problem = getattr(exc, "problem", None) or type(exc).__name__
    if "duplicate key" in str(problem):
        problem = str(problem).split(" with value")[0] + " (each key may appear once in a mapping)"
    where = f" at column {mark.column + 1}" if mark is not None else ""
    return ConfigError(file, "", None, f"not valid YAML{where}: {clip(str(problem))}",
                       line=mark.line + 1 if mark is not None else None)


def _key_errors(raw: Any, file: str, lines: dict[str, int], path: tuple = ()) -> list[ConfigError]:
    """Mapping keys that are not text (`1:`, `true:`, `null:`) cannot name a config key."""
    errors = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            if not isinstance(key, str):
                dotted = ".".join(map(str, path + (key,)))
                errors.append(ConfigError(file, dotted, key, "a key must be text (quote it if it is a name)",
                                          line=lines.get(dotted)))
            else:
                errors += _key_errors(value, file, lines, path + (key,))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            errors += _key_errors(value, file, lines, path + (i,))
    return errors[:20]


def read_config(path: str | Path) -> Loaded:
    """Read one config file (see the module docstring for every bound)."""
    path = Path(path)
    file = str(path)
    data, error = _read_bytes(path, file)
    if error is not None:
        return Loaded(None, [error], {})
    text, error = _decode(data, file)
    if error is not None:
        return Loaded(None, [error], {})
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        return Loaded(None, [ConfigError(file, "", None, "the file is empty; write `{}` for a config with "
                                         "every default")], {})
    scan = _Scan()
    try:
        raw = _yaml(scan).load(text)
    except _Rejected as exc:
        return Loaded(None, [ConfigError(file, "", None, exc.message, line=exc.line)], {})
    except YAMLError as exc:
        return Loaded(None, [_yaml_error(exc, file)], {})
    except RecursionError:
        return Loaded(None, [ConfigError(file, "", None, f"nested more than {MAX_DEPTH} levels deep")], {})
    if not isinstance(raw, dict):
        return Loaded(None, [ConfigError(file, "", type(raw).__name__, "a config must be a mapping of sections",
                                         allowed=", ".join(SECTIONS + ("sweep", "search")), line=1)], {})
    errors = _key_errors(raw, file, scan.lines)
    return Loaded(None if errors else raw, errors, scan.lines)


def read_yaml(path: str | Path) -> tuple[Any, list[ConfigError]]:
    """The file's top-level mapping, or None and the errors (see `read_config`)."""
    loaded = read_config(path)
    return loaded.raw, loaded.errors
