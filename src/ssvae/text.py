"""Text from configs, data files and run folders, made inert for the place it is shown in.

A config comes from a colleague, a script or a sweep; a run folder may have been copied from anywhere. Whatever
they hold is shown through one function per output context, so that no string can become markup, a script, a
request to another host, a terminal command or a spreadsheet formula:

- `html_text`: text inside an HTML element or a quoted attribute;
- `markdown_text`, `markdown_code`: literal text (or an inline code span) inside a Markdown line or table cell;
- `markdown_from_config`: a config's own Markdown (a description), re-emitted as a safe subset: no raw HTML,
  links and images only to relative paths inside the run folder (others stay literal text);
- `render_markdown`: Markdown to HTML with raw HTML off (except the folds this project writes itself) and
  the same link rule; `CSP` is the policy every page carries (nothing loads from outside the page);
- `script_json`: JSON to embed inside a `<script>` element;
- `terminal`, `terminal_lines`: text for a terminal, without control characters, escape sequences or bidi
  overrides;
- `plot_text`: a figure title or label (no mathtext);
- `csv_cell`: a spreadsheet cell that cannot start a formula (OWASP's advice: a leading `'`).

Pure Python (markdown-it-py only when rendering), so planning, the CLI and the stage scripts all use it.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import unquote

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC strings (ended by BEL or ESC \), and
# two-character escapes; then the 8-bit forms (C1 CSI 0x9b, C1 OSC 0x9d ... ST 0x9c).
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
# C0 and C1 controls, DEL, and the Unicode characters that reorder or hide text (bidi embeddings, overrides and
# isolates, marks, zero-width joiners and the line/paragraph separators that end a line in some readers).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029\x0b\x0c\x85]")


def plain(value: Any) -> str:
    """`value` as text without control characters, escape sequences or bidi overrides; line breaks and tabs
    become spaces."""
    text = _ESCAPE_SEQUENCE.sub("", str(value))
    return _CONTROL.sub("", _LINE_BREAK.sub(" ", text).replace("\t", " "))


def terminal(value: Any) -> str:
    """One line for a terminal: nothing in it can move the cursor, retitle or clear the window, or reorder
    what the reader sees."""
    return plain(value)


def terminal_lines(value: Any) -> str:
    """`terminal` for output of several lines: each line cleaned, line breaks and tabs kept."""
    return "\n".join("\t".join(terminal(cell) for cell in line.split("\t"))
                     for line in _LINE_BREAK.split(str(value)))


def plot_text(value: Any) -> str:
    """Text for a matplotlib title or label: one line, and a `$` never starts mathtext (a malformed formula
    would stop the figure from being drawn)."""
    return plain(value).replace("$", r"\$")


def html_text(value: Any) -> str:
    """Text inside an HTML element or a quoted attribute value (`&`, `<`, `>`, `"`, `'` as entities)."""
    return html.escape(plain(value), quote=True)


# The ASCII punctuation that means something inside a Markdown line or table cell (CommonMark lets any ASCII
# punctuation be backslash-escaped; these are the ones that need it).
# (`_` only where it can open or close emphasis: never between two letters or digits)
_MARKDOWN_ACTIVE = re.compile(r"([\\`*\[\]<>&|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def markdown_text(value: Any) -> str:
    """Literal text inside a Markdown line or table cell: no emphasis, link, image, HTML or entity, no `|` that
    ends a table cell, one line."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", plain(value))


def markdown_code(value: Any) -> str:
    """An inline code span around `value` that its own backticks cannot close (a `|` escaped for tables)."""
    text = plain(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def relative_inside(target: str) -> bool:
    """Whether a link or image target is a relative path that stays inside the folder of the document: no
    scheme (`http:`, `javascript:`, `data:`), no host (`//`), no absolute path, no `..` above the folder."""
    target = target.strip()
    if not target or target.startswith(("/", "\\")) or ":" in target.split("/", 1)[0].split("#", 1)[0]:
        return target.startswith("#") and len(target) > 1
    depth = 0
    for part in re.split(r"[/\\]", unquote(target.split("#", 1)[0].split("?", 1)[0])):
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return not any(ord(ch) < 0x20 for ch in target)


def _parser():
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    parser.validateLink = relative_inside
    return parser


def _inline_markdown(tokens) -> str:
    """The inline tokens of one block as Markdown, from the safe subset (text, code, emphasis, line breaks, and
    links and images to relative paths inside the folder; anything else as literal text)."""
    out = []
    links = []
    for token in tokens:
        kind = token.type
        if kind == "text":
            out.append(markdown_text(token.content))
        elif kind == "code_inline":
            out.append(markdown_code(token.content))
        elif kind in ("em_open", "em_close"):
            out.append("*")
        elif kind in ("strong_open", "strong_close"):
            out.append("**")
        elif kind == "softbreak":
            out.append("\n")
        elif kind == "hardbreak":
            out.append("\\\n")
        elif kind == "link_open":
            href = token.attrGet("href") or ""
            links.append(href if relative_inside(href) else None)
            out.append("[" if links[-1] is not None else "")
        elif kind == "link_close":
            href = links.pop() if links else None
            out.append(f"]({_link_target(href)})" if href is not None else "")
        elif kind == "image":
            alt = markdown_text("".join(child.content for child in token.children or []))
            src = token.attrGet("src") or ""
            out.append(f"![{alt}]({_link_target(src)})" if relative_inside(src) else alt)
        else:
            out.append(markdown_text(token.content))
    return "".join(out)


def _link_target(target: str) -> str:
    return "<" + re.sub(r"([<>\\])", r"\\\1", target) + ">"


def markdown_from_config(source: Any) -> str:
    """A config's Markdown (a description) as Markdown that is safe to show: paragraphs, lists, quotes, code and
    emphasis survive; raw HTML becomes literal text; a link or image leaving the run folder is shown as the
    literal text it was written as; headings become bold lines (the report's own headings stay the outline)."""
    tokens = _parser().parse(plain_lines(source))
    blocks: list[str] = []
    prefix: list[str] = []
    item_marks: list[str] = []
    numbers: list[int] = []
    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "bullet_list_open":
            numbers.append(0)
        elif kind == "ordered_list_open":
            numbers.append(int(token.attrGet("start") or 1))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            numbers.pop()
        elif kind == "list_item_open":
            if numbers and numbers[-1]:
                item_marks.append(f"{numbers[-1]}. ")
                numbers[-1] += 1
            else:
                item_marks.append("- ")
        elif kind == "list_item_close":
            item_marks.pop()
        elif kind == "blockquote_open":
            prefix.append("> ")
        elif kind == "blockquote_close":
            prefix.pop()
        elif kind == "inline":
            text = _inline_markdown(token.children or [])
            if index and tokens[index - 1].type == "heading_open":
                text = f"**{text}**"
            blocks.append(_indent(text, prefix, item_marks))
        elif kind in ("fence", "code_block"):
            content = plain_lines(token.content).rstrip("\n")
            fence = "~" * max(3, 1 + max((len(r) for r in re.findall(r"~+|`+", content)), default=0))
            blocks.append(_indent(f"{fence}\n{content}\n{fence}", prefix, item_marks))
        elif kind == "html_block":
            blocks.append(_indent(markdown_text(token.content.strip()), prefix, item_marks))
        elif kind == "hr":
            blocks.append(_indent("---", prefix, item_marks))
    return "\n\n".join(b for b in blocks if b.strip())


def _indent(text: str, prefix: list[str], item_marks: list[str]) -> str:
    lead = "".join(prefix) + "".join("   " for _ in item_marks[:-1]) + (item_marks[-1] if item_marks else "")
    rest = "".join(prefix) + "".join("   " for _ in item_marks)
    lines = text.split("\n")
    return "\n".join([lead + lines[0]] + [rest + line for line in lines[1:]])


def plain_lines(value: Any) -> str:
    """`plain` for text of several lines: each line cleaned, the line breaks kept."""
    return "\n".join(plain(line) for line in _LINE_BREAK.split(str(value)))


# The project's own folds (document.fold) are the only raw HTML a rendered page keeps.
_OWN_HTML = re.compile(r"\s*(<details>|</details>|<summary>[^<>]*</summary>)\s*")

# What every page the project writes allows: its own inline style, images from its own folder; no script,
# no request to another host, no form, no plugin, no <base> that would move relative links.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'self'")


def render_markdown(markdown_source: str) -> str:
    """HTML from Markdown the project wrote (with config text escaped into it): raw HTML is shown as text
    except the project's own `<details>` folds; links and images only to relative paths inside the folder."""
    parser = _parser()
    parser.options["html"] = True
    tokens = parser.parse(markdown_source)
    for token in tokens:
        if token.type == "html_block" and not all(_OWN_HTML.fullmatch(line) for line in
                                                  token.content.strip().splitlines()):
            token.type, token.tag = "paragraph_text", ""
        for child in token.children or []:
            if child.type == "html_inline":
                child.type = "text"
    parser.add_render_rule("paragraph_text", lambda self, tokens, idx, options, env:
                           f"<p>{html.escape(tokens[idx].content)}</p>\n")
    return parser.renderer.render(tokens, parser.options, {})


def script_json(value: Any) -> str:
    """JSON that can sit inside a `<script>` element: no `</script>`, `<!--` or line separator can end or
    change it (`<`, `>`, `&`, U+2028, U+2029 as \\u escapes)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet reads as text, never as a formula: a string starting with `=`, `+`, `-`, `@`,
    a tab or a carriage return (or their full-width forms) gets a leading `'`; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value
