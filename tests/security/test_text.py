"""The escaping functions, one per output context, against the payload corpus."""

import csv
import io
import json
import re

import pytest

from ssvae import text

from .payloads import ALL_TEXT, FORMULAS, HTML

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("payload", ALL_TEXT)
def test_terminal_text_holds_no_control_character(payload):
    shown = text.terminal(f"before {payload} after")
    assert not CONTROL.search(shown), repr(shown)
    assert shown.startswith("before ") and shown.endswith(" after")


def test_terminal_keeps_the_readable_part():
    assert text.terminal("run \x1b]0;title\x07done\x1b[31m red\x1b[0m") == "run done red"
    assert text.terminal("ab\u202ecd") == "abcd"
    assert text.terminal("two\nlines\ttab") == "two lines tab"


@pytest.mark.parametrize("payload", ALL_TEXT)
def test_html_text_has_no_markup(payload):
    escaped = text.html_text(payload)
    assert not re.search(r"[<>\"']", escaped)


@pytest.mark.parametrize("name", sorted(HTML))
def test_markdown_text_renders_to_the_same_literal_text(name):
    payload = HTML[name]
    rendered = text.render_markdown("| a |\n|---|\n| " + text.markdown_text(payload) + " |\n")
    assert "<img" not in rendered and "<script" not in rendered and "<a " not in rendered
    assert "attacker.invalid\"" not in rendered and "<iframe" not in rendered
    cell = re.search(r"<td>(.*)</td>", rendered, re.DOTALL).group(1)
    assert cell.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") \
        == text.plain(payload).strip()


@pytest.mark.parametrize("payload", [HTML["code_breakout"], "a``b`", "`", "| pipe |"])
def test_a_code_span_cannot_be_closed_by_its_content(payload):
    rendered = text.render_markdown("| a |\n|---|\n| " + text.markdown_code(payload) + " |\n")
    assert rendered.count("<code>") == 1 and "<img" not in rendered
    assert text.plain(payload).strip() in re.search(r"<code>(.*)</code>", rendered).group(1) \
        .replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')


@pytest.mark.parametrize("name", sorted(HTML))
def test_markdown_from_a_config_keeps_no_live_html_and_no_outside_link(name):
    safe = text.markdown_from_config(f"Intro **bold**.\n\n{HTML[name]}\n\n[fig](figures/loss.png)")
    rendered = text.render_markdown(safe)
    assert not re.search(r"<(img|script|svg|iframe)\b", rendered), rendered
    assert "javascript:" not in re.findall(r'href="([^"]*)"', rendered)
    assert re.findall(r'(?:href|src)="([^"]*)"', rendered) == ["figures/loss.png"]
    assert "<strong>bold</strong>" in rendered


def test_markdown_from_a_config_keeps_its_structure():
    source = "# Title\n\nA *small* `model`.\n\n- one\n- two\n\n> quoted\n\n```\ncode </script>\n```\n"
    rendered = text.render_markdown(text.markdown_from_config(source))
    assert "<strong>Title</strong>" in rendered and "<em>small</em>" in rendered and "<code>model</code>" in rendered
    assert rendered.count("<li>") == 2 and "<blockquote>" in rendered
    assert "code &lt;/script&gt;" in rendered


def test_the_project_keeps_its_own_folds_and_nothing_else():
    rendered = text.render_markdown("<details>\n<summary>2 keys</summary>\n\ninside\n\n</details>\n\n"
                                    "<details open ontoggle=\"x()\">\n\n<b onclick=x>y</b>\n")
    assert rendered.count("<details>") == 1 and "<summary>2 keys</summary>" in rendered
    assert "ontoggle=" in rendered and "<details open" not in rendered and "<b " not in rendered


@pytest.mark.parametrize("target,inside", [("figures/a.png", True), ("metrics.json", True), ("#figures", True),
                                           ("a/../b.png", True), ("../x", False), ("a/../../x", False),
                                           ("a/%2e%2e/%2e%2e/x", False), ("/etc/passwd", False),
                                           ("http://h/x", False), ("//h/x", False), ("javascript:x", False),
                                           ("data:text/html,x", False), ("file:///etc", False), ("", False)])
def test_relative_inside(target, inside):
    assert text.relative_inside(target) is inside


def test_script_json_cannot_end_its_script_element():
    value = {"d": HTML["script_close"] + "<!-- \u2028 &"}
    embedded = text.script_json(value)
    assert "<" not in embedded and ">" not in embedded and "\u2028" not in embedded
    assert json.loads(embedded) == value


def test_csv_cells_never_start_a_formula():
    buffer = io.StringIO()
    csv.writer(buffer).writerow([text.csv_cell(f) for f in FORMULAS] + [text.csv_cell(-0.5), text.csv_cell("-0.5")])
    cells = next(csv.reader(io.StringIO(buffer.getvalue())))
    assert all(cell.startswith("'") for cell in cells[:len(FORMULAS)]), cells
    assert cells[-2:] == ["-0.5", "-0.5"]
