"""The payload corpus: strings a hostile or careless config, data file or results folder may hold.

Each HTML payload, if it ran, would set `window.__pwned` (the marker the browser tests read) or request
`http://attacker.invalid/` (the request the browser tests watch for).
"""

MARK = "window.__pwned=1"

HTML = {
    "img_onerror": f"<img src=x onerror=\"{MARK}\">",
    "code_breakout": f"x` <img src=x onerror={MARK}> `y",
    "script_block": f"\n\n<script>{MARK}</script>\n\n",
    "script_close": f"</script><script>{MARK}</script>",
    "svg_onload": f"<svg onload={MARK}>",
    "attribute_breakout": f"\"' onmouseover={MARK} autofocus onfocus={MARK} x=\"",
    "javascript_link": "[click](javascript:window.__pwned=1)",
    "remote_image": "![t](http://attacker.invalid/track.png)",
    "remote_autolink": "<http://attacker.invalid/a>",
    "reference_image": "![t][r]\n\n[r]: http://attacker.invalid/ref.png",
    "iframe": "<iframe src=\"http://attacker.invalid/\"></iframe>",
    "comment": f"<!-- --><img src=x onerror={MARK}>",
    "entity_link": "[x](javascript&#58;window.__pwned=1)",
    "upward_image": "![t](../../../../etc/passwd)",
}

TERMINAL = {
    "osc_title": "\x1b]0;pwned\x07",
    "clear": "\x1b[2J\x1b[H",
    "c1_csi": "\x9b31m",
    "osc8_link": "\x1b]8;;http://attacker.invalid/\x1b\\click\x1b]8;;\x1b\\",
    "bidi_override": "\u202eexe.txt",
    "bell_backspace": "\x07\x08\x08",
}

FORMULAS = ["=HYPERLINK(\"http://attacker.invalid\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
            "\t=1", "\r=1", "＝1"]

# Every payload of the corpus, for the fields that take any text (descriptions, tags).
ALL_TEXT = [*HTML.values(), *TERMINAL.values(), *FORMULAS]
