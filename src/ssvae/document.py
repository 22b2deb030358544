"""Markdown documents: escaped table cells, folds, and the HTML page a Markdown report becomes.

Every Markdown table the project writes (REPORT.md, COMPARISON.md, NAMING_LEGEND.md, `ssvae legend`) goes
through `table`, so a `|` inside a cell (p(y|x), KL(q || p)) never splits it. The HTML rendering (for the
Snakemake report, which shows HTML items) uses markdown-it-py with GitHub-style tables: the same text, no
second renderer to keep in step.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from typing import Any, Iterable, Sequence

from ssvae import text as text_mod

PAGE_STYLE = """
body { background: #fff; color: #1f2328; font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 1.2em 2em; max-width: 100em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: #f3f4f6; padding: 0 3px; border-radius: 3px; font-size: 92%; }
details { margin: 0.4em 0 1em; }
summary { cursor: pointer; color: #0969da; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #d8dee4; } h3 { font-size: 1.1em; }
"""


def format_number(value: float | int) -> str:
    """A number in at most four significant digits (booleans as yes/no, non-finite as —)."""
    # numpy scalars without importing numpy (naming imports this module at Snakefile parse time)
    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b":
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def plus_minus(value: float | None, error: float | None = None, *, scale: float = 100, signed: bool = False,
               unit: str = "", sep: str = " ± ", missing: str = "—") -> str:
    """A fraction as a percentage (or points) with one decimal and its error: `71.2% ± 2.4`, `+4.8 ± 2.1`;
    `missing` for no value, the value alone for no error."""
    if value is None:
        return missing
    text = f"{scale * value:{'+' if signed else ''}.1f}{unit}"
    return text if error is None else f"{text}{sep}{scale * error:.1f}"


def format_value(value: Any, max_items: int = 10) -> str:
    """A value as one short line; long lists and matrices point to metrics.json."""
    if value is None:
        return "—"
    if isinstance(value, numbers.Number) or getattr(value, "shape", None) == ():  # numpy scalars have shape ()
        return format_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], (list, tuple)):
            return f"{len(value)}×{len(value[0])} matrix (metrics.json)"
        if len(value) > max_items:
            return f"{len(value)} values (metrics.json)"
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            nested = bool(item) and isinstance(item[0], (list, dict)) if isinstance(item, (list, tuple)) else False
            if isinstance(item, (list, tuple)) and (len(item) > max_items or nested):
                continue
            parts.append(f"{key}: {format_value(item, max_items)}")
        return "; ".join(parts)
    return str(value)


# a `|` or `<` not already backslash-escaped (text_mod.markdown_text escapes them; escaping twice would undo it)
_UNESCAPED = re.compile(r"(?<!\\)((?:\\\\)*)([|<])")


def cell(value) -> str:
    """One table cell: a `|` escaped (it would end the cell), `<` escaped (no raw HTML), control characters
    and line breaks removed. Text from a config or a run folder goes through `text.markdown_text` or
    `text.markdown_code` first."""
    return _UNESCAPED.sub(r"\1\\\2", text_mod.plain(value))


def table(header: Sequence, rows: Iterable[Sequence], align: Sequence[str] | None = None) -> list[str]:
    """A Markdown table as lines; every header and body cell escaped with `cell`.

    `align`: one of "l", "r", "c" per column (default left).
    """
    header = [cell(h) for h in header]
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    rule = [marks[a] for a in align] if align else ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def fold(summary: str, lines: list[str]) -> list[str]:
    """A `<details>` fold around Markdown lines (GitHub and the HTML page open it on click)."""
    return ["<details>", f"<summary>{html.escape(summary)}</summary>", "", *lines, "", "</details>", ""]


def to_html(markdown_text: str, title: str) -> str:
    """A standalone HTML page (UTF-8, inline style, nothing loaded from outside it, no script: its
    Content-Security-Policy says so to the browser too) from Markdown text (`text.render_markdown`)."""
    body = text_mod.render_markdown(markdown_text)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{text_mod.CSP}\">\n"
            f"<title>{text_mod.html_text(title)}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")
