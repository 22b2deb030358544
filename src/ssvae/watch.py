"""`ssvae watch`: a live terminal view of every run of a workspace, read from the run folders alone.

It reads what each training writes into its own folder after every epoch (progress.json) and what the later
stages leave there (summary.json), never the scheduler, so it shows the same on a laptop, over SSH and for runs
that train on SLURM nodes sharing the file system. Running trainings come first (epoch, ETA, losses), then the
runs waiting for a stage, then the failed ones with their reason, then the finished ones with their headline.
It refreshes until nothing runs: no training is live and no run folder has changed for `grace` seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ssvae import text
from ssvae.results import runs

RUNNING = ("training",)
WAITING = ("planned", "waiting", "stopped", "trained", "evaluated")
FINISHED = ("success", "partial")
_ORDER = {"running": 0, "waiting": 1, "failed": 2, "finished": 3}


def kind(row: dict) -> str:
    status = row["status"]
    if status in RUNNING:
        return "running"
    if status in WAITING:
        return "waiting"
    if status in FINISHED:
        return "finished"
    return "failed"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _loss(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _ago(seconds: float) -> str:
    return f"{runs.duration_text(seconds)} ago"


def _progress_cells(row: dict, now: float) -> list[str]:
    progress = row.get("progress") or {}
    losses = progress.get("losses") or {}
    updated = progress.get("updated_unix")
    bar = ""
    if progress.get("epoch") is not None and progress.get("max_epochs"):
        width = 12
        filled = round(width * min(1.0, progress["epoch"] / progress["max_epochs"]))
        bar = "█" * filled + "░" * (width - filled) + " "
    per_epoch = progress.get("seconds_per_epoch")
    return [bar + (runs.progress_text(progress) or "no progress yet"),
            "-" if per_epoch is None else f"{per_epoch:.2f}",
            _loss(losses.get("train_loss")), _loss(losses.get("val_loss")), _pct(progress.get("val_accuracy")),
            "-" if updated is None else _ago(now - updated)]


def _finished_cells(row: dict) -> list[str]:
    accuracy = row.get("accuracy")
    headline = "-"
    if accuracy is not None:
        se = row.get("accuracy_se")
        headline = f"{_pct(accuracy)} %" + ("" if se is None else f" ± {100 * se:.1f} (binomial SE)")
        if row.get("baseline_accuracy") is not None:
            gain = accuracy - row["baseline_accuracy"]
            headline += f", baseline {_pct(row['baseline_accuracy'])} % ({100 * gain:+.1f} points)"
    return [headline, row.get("dataset") or "-", str(row.get("n") or "-")]


def frame(results: Path, rows: list[dict], *, now: float | None = None, height: int | None = None,
          until_exit: float | None = None):
    """The view as a rich renderable: a header line, then one table per kind of run that has any."""
    now = time.time() if now is None else now
    current = [r for r in rows if not r.get("superseded_by")]
    by_kind: dict[str, list[dict]] = {k: [] for k in _ORDER}
    for row in current:
        by_kind[kind(row)].append(row)
    by_kind["finished"].sort(key=lambda r: r["ts"], reverse=True)
    counts = ", ".join(f"{len(v)} {k}" for k, v in by_kind.items() if v) or "no runs"
    clock = dt.datetime.fromtimestamp(now).strftime("%H:%M:%S")
    header = Text(f"{text.terminal(results)}: {counts} · {clock}", style="bold")
    if until_exit is not None:
        header.append(f" · nothing runs: leaving in {runs.duration_text(until_exit)}", style="dim")
    parts = [header]
    budget = None if height is None else max(4, height - 4)

    def table(title: str, columns: list[str], body: list[list[str]], left_off: int):
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
        for i, column in enumerate(columns):
            wraps = column in ("reason", "headline")
            t.add_column(column, justify="left" if i < 2 or column == "progress" or wraps else "right",
                         no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
        for cells in body:
            t.add_row(*(Text(text.terminal(c)) for c in cells))
        parts.append(t)
        if left_off:
            parts.append(Text(f"… {left_off} more ({'ssvae runs' if title != 'running' else 'widen the window'}"
                              " lists them)", style="dim"))

    def take(items: list[dict], reserve: int) -> tuple[list[dict], int]:
        nonlocal budget
        if budget is None:
            return items, 0
        room = max(1, budget - reserve)
        shown = items[:room]
        budget -= len(shown) + 4
        return shown, len(items) - len(shown)

    if by_kind["running"]:
        shown, left = take(by_kind["running"], 0)
        table("running", ["run", "status", "progress", "s/epoch", "train loss", "val loss", "val acc %", "updated"],
              [[r["run_id"], r["status"], *_progress_cells(r, now)] for r in shown], left)
    if by_kind["waiting"]:
        stage = {"planned": "waiting to train", "trained": "waiting to evaluate", "evaluated": "waiting for report"}
        shown, left = take(by_kind["waiting"], 6)
        table("waiting", ["run", "status", "next"],
              [[r["run_id"], r["status"], stage.get(r["status"]) or r.get("reason") or ""] for r in shown], left)
    if by_kind["failed"]:
        shown, left = take(by_kind["failed"], 6)
        table("failed or unreadable", ["run", "status", "reason"],
              [[r["run_id"], r["status"], (r.get("reason") or "")[:160]] for r in shown], left)
    if by_kind["finished"]:
        shown, left = take(by_kind["finished"], 0)
        table("finished (newest first)", ["run", "status", "headline", "dataset", "n"],
              [[r["run_id"], r["status"], *_finished_cells(r)] for r in shown], left)
    return Group(*parts)


def last_change(results: Path, rows: list[dict]) -> float:
    """The latest modification time of the results folder, of every run folder (an atomic write in a folder
    changes its time) and of its stage logs (a Snakemake job opens its log when it starts), in seconds since
    the epoch."""
    times = [results.stat().st_mtime] if results.exists() else []
    for row in rows:
        folder = Path(row["path"])
        for path in (folder, folder / "logs", *folder.glob("logs/*.log")):
            try:
                times.append(path.stat().st_mtime)
            except OSError:
                continue
    return max(times, default=0.0)


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader stopped reading (`ssvae watch --once | head`): end as the other commands do (cli.main)."""
        self.quiet = True
        raise BrokenPipeError


def _signature(rows: list[dict]) -> tuple:
    return tuple((r["run_id"], r["status"], (r.get("progress") or {}).get("epoch")) for r in rows)


def watch(results: Path, read_rows: Callable[[], list[dict]], *, interval: float = 2.0, grace: float = 60.0,
          once: bool = False, console: Console | None = None) -> int:
    """Show the view every `interval` seconds until nothing runs for `grace` seconds; `once`: show it once.
    On a terminal the view is redrawn in place; otherwise (a pipe, a log file) a new view is printed whenever a
    run's status or epoch changes. Returns the exit status: 0, or 130 after Ctrl-C."""
    # through a pipe, lines as wide as they need (a script or `grep` reads them), not folded at 80 columns
    console = console or _Console(highlight=False, width=None if sys.stdout.isatty() else 400)
    rows = read_rows()
    if once:
        console.print(frame(results, rows))
        return 0
    live = None
    if console.is_terminal:
        from rich.live import Live

        live = Live(console=console, auto_refresh=False, redirect_stdout=False, vertical_overflow="crop")
        live.start()
    printed = None
    try:
        while True:
            now = time.time()
            running = sum(kind(r) == "running" for r in rows)
            idle_for = now - last_change(results, rows)
            leaving = not running and idle_for >= grace
            if live is not None:
                with contextlib.suppress(OSError):  # the real size (a COLUMNS variable may be stale), each refresh
                    console.size = os.get_terminal_size(console.file.fileno())
                until_exit = None if running else max(0.0, grace - idle_for)
                live.update(frame(results, rows, now=now, height=console.size.height, until_exit=until_exit),
                            refresh=True)
            elif _signature(rows) != printed:
                printed = _signature(rows)
                console.print(frame(results, rows, now=now))
            if leaving:
                return 0
            time.sleep(interval)
            rows = read_rows()
    except KeyboardInterrupt:
        return 130
    finally:
        if live is not None:
            live.stop()
