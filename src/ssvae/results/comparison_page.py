"""COMPARISON.html: the comparison as one offline page, with an interactive view above the static tables.

The interactive part: every ranked run in one table that sorts by any column (click its header) and filters
by text (every cell is searched), and per dataset and test split a parallel-coordinates view (plotly, its
JavaScript inlined: the page loads nothing from the network) of the config keys that differ against accuracy.
Wide tables scroll sideways instead of being cut. The page's Content-Security-Policy lets only its own two
scripts run, by their hashes (plotly's WebGL layer needs 'unsafe-eval'); the data sits in a JSON block made
inert with `text.script_json`. Without WebGL (some remote desktops) the parallel coordinates say so; the table
works everywhere.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from ssvae import document, text

SCROLL_STYLE = """
#filter { font: inherit; padding: 3px 6px; width: 24em; margin: 0.4em 0; }
#runs th { cursor: pointer; white-space: nowrap; } #runs td { white-space: nowrap; }
#runs th[aria-sort]::after { content: " ▾"; }
#runs th[aria-sort="ascending"]::after { content: " ▴"; }
.parcoords { width: 100%; height: 420px; }
"""

APP = r"""
(function () {
  const data = JSON.parse(document.getElementById("comparison-data").textContent);
  const table = document.getElementById("runs");
  const body = table.tBodies[0];
  const count = document.getElementById("shown");
  let order = {column: null, ascending: true};
  function cellText(value) { return value === null || value === undefined ? "" : String(value); }
  function render() {
    const needle = document.getElementById("filter").value.toLowerCase();
    let rows = data.rows.filter(r => data.columns.some(c => cellText(r[c]).toLowerCase().includes(needle)));
    if (order.column !== null) {
      const c = order.column, sign = order.ascending ? 1 : -1;
      rows = rows.slice().sort((a, b) => {
        const x = a[c], y = b[c];
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * sign;
      });
    }
    body.replaceChildren(...rows.map(r => {
      const tr = document.createElement("tr");
      for (const c of data.columns) {
        const td = document.createElement("td");
        td.textContent = cellText(r[c]);
        tr.appendChild(td);
      }
      return tr;
    }));
    count.textContent = rows.length + " of " + data.rows.length + " runs";
  }
  table.tHead.querySelectorAll("th").forEach((th, i) => th.addEventListener("click", () => {
    const c = data.columns[i];
    order = {column: c, ascending: order.column === c ? !order.ascending : true};
    table.tHead.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", order.ascending ? "ascending" : "descending");
    render();
  }));
  document.getElementById("filter").addEventListener("input", render);
  render();
  for (const block of data.parcoords) {
    const dimensions = block.dimensions.map(d => d.ticktext
      ? {label: d.label, values: d.values, tickvals: d.tickvals, ticktext: d.ticktext}
      : {label: d.label, values: d.values});
    Plotly.newPlot(block.id, [{type: "parcoords", dimensions: dimensions,
      line: {color: block.color, colorscale: "Viridis", showscale: true, colorbar: {title: {text: "accuracy %"}}}}],
      {margin: {l: 70, r: 70, t: 50, b: 30}}, {displaylogo: false, responsive: true});
  }
})();
"""

COLUMNS = ("block", "rank", "tied_with_best", "run_id", "arch", "accuracy %", "± SE", "baseline %",
           "gain (points)", "ELBO", "K_eff", "training time (s)")


@functools.cache
def plotly_js() -> str:
    """plotly.js, bundled with the plotly package (no network)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def _round(value, digits: int):
    return None if value is None else round(float(value), digits)


def _rows(blocks: list[list[dict]], block_names: list[str], keys: list[str],
          flatten_config: Callable[[dict], dict]) -> list[dict]:
    rows = []
    for name, ranked in zip(block_names, blocks):
        for rank, entry in enumerate(ranked, 1):
            tied = bool(entry.get("vs_best") and entry["vs_best"]["tied"])
            for m in entry["members"]:
                flat = flatten_config(m.get("config") or {})
                rows.append({
                    "block": name, "rank": rank, "tied_with_best": tied, "run_id": m["run_id"], "arch": m["arch"],
                    "accuracy %": _round(100 * m["accuracy"], 1) if m.get("accuracy") is not None else None,
                    "± SE": _round(100 * m["accuracy_se"], 1) if m.get("accuracy_se") is not None else None,
                    "baseline %": (_round(100 * m["baseline_accuracy"], 1)
                                   if m.get("baseline_accuracy") is not None else None),
                    "gain (points)": _round(100 * m["gain"], 1) if m.get("gain") is not None else None,
                    "ELBO": _round(m.get("elbo"), 1), "K_eff": _round(m.get("k_eff"), 2),
                    "training time (s)": _round(m.get("training_time_sec"), 0),
                    **{k: _cell(flat.get(k)) for k in keys}})
    return rows


def _cell(value: Any):
    return value if isinstance(value, (int, float, str)) or value is None else json.dumps(value)


def _dimensions(rows: list[dict], keys: list[str]) -> list[dict]:
    """One parallel-coordinates axis per key that differs within these rows (numbers as they are, anything
    else as categories), then accuracy."""
    # plotly reads a few HTML tags in axis labels and ticks (<a href>, <b>, ...): config text goes in escaped
    dims = []
    for key in keys:
        values = [r.get(key) for r in rows]
        if len({json.dumps(v) for v in values}) < 2:
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append({"label": text.html_text(key), "values": values})
        else:
            labels = sorted({str(v) for v in values})
            dims.append({"label": text.html_text(key), "values": [labels.index(str(v)) for v in values],
                         "tickvals": list(range(len(labels))), "ticktext": [text.html_text(t) for t in labels]})
    dims.append({"label": "accuracy %", "values": [r.get("accuracy %") for r in rows]})
    return dims


def render(static_markdown: str, blocks: list[list[dict]], block_names: list[str], keys: list[str],
           flatten_config: Callable[[dict], dict]) -> str:
    """The page: the static comparison (`static_markdown`, rendered as in every report page), then an interactive
    table and one parallel-coordinates view per block (`flatten_config`: a run's config as `section.key` ->
    value)."""
    rows = _rows(blocks, block_names, keys, flatten_config)
    columns = [*COLUMNS, *keys]
    parcoords = []
    for i, name in enumerate(block_names):
        mine = [r for r in rows if r["block"] == name and r["accuracy %"] is not None]
        if len(mine) > 1:
            parcoords.append({"id": f"parcoords-{i}", "name": name, "dimensions": _dimensions(mine, keys),
                              "color": [r["accuracy %"] for r in mine]})
    payload = text.script_json({"columns": columns, "rows": rows, "parcoords": parcoords})
    plotly = plotly_js()
    # only these two scripts run (their hashes); 'unsafe-eval' because plotly's WebGL layer (regl) compiles its
    # draw calls with `new Function`; neither script evaluates text from the data
    csp = text.CSP.replace("default-src 'none';",
                           f"default-src 'none'; script-src {_hash(plotly)} {_hash(APP)} 'unsafe-eval';")
    head = "".join(f"<th>{text.html_text(c)}</th>" for c in columns)
    views = "".join(f"<h3>{text.html_text(p['name'])}: the keys that differ against accuracy</h3>\n"
                    f"<div class=\"parcoords\" id=\"{p['id']}\"></div>\n" for p in parcoords)
    interactive = (
        "<h2>Every ranked run (sort: click a column; filter: type)</h2>\n"
        "<input id=\"filter\" type=\"search\" placeholder=\"filter runs, e.g. mnist5k or mix10\" "
        "aria-label=\"filter runs\"> <span id=\"shown\"></span>\n"
        f"<table id=\"runs\"><thead><tr>{head}</tr></thead><tbody></tbody></table>\n"
        + (f"<h2>Parallel coordinates</h2>\n<p>One line per run, coloured by accuracy; drag along an axis to "
           f"select a range.</p>\n{views}" if parcoords else ""))
    body = text.render_markdown(static_markdown)
    title = "Comparison of runs"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n"
            f"<title>{title}</title>\n<style>{document.PAGE_STYLE}{SCROLL_STYLE}</style>\n</head>\n<body>\n"
            f"{body}\n{interactive}"
            f"<script id=\"comparison-data\" type=\"application/json\">{payload}</script>\n"
            f"<script>{plotly}</script>\n<script>{APP}</script>\n</body>\n</html>\n")
