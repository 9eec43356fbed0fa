"""The benchmark's report: a Markdown table of every run, with the targets, the machine and
the software it ran on."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.scenarios import TARGETS

if TYPE_CHECKING:
    from benchmarks.figures import Run
    from benchmarks.scenarios import Settings

ROOT = Path(__file__).resolve().parents[1]


def num(value: float | None, digits: int = 0) -> str:
    """``value`` with thousands separators and ``digits`` decimals; ``-`` for None."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _mark(run: Run, figure: str) -> str:
    for target in TARGETS.get(run.scenario.key, ()):
        if target.figure == figure:
            value = run.figures.get(figure)
            if value is None:
                return " ✗"
            if figure == "complete":
                return " ✓" if value >= target.limit else " ✗"
            return " ✓" if value <= target.limit else " ✗"
    return ""


def row(run: Run) -> list[str]:
    f = run.figures
    if run.status == "error":
        return [run.view, run.scenario.title, f"**error**: {run.note}"] + ["-"] * (len(HEADER) - 3)
    status = run.status
    if run.status == "capped":
        reached = f.get("reached", {})
        status = (
            f"capped at {f.get('cap_s', 0):.0f} s: {reached.get('visible', -1) + 1:,} of "
            f"{reached.get('sent', 0):,} sent tokens visible"
        )
        status += f" ({run.note})" if run.note else ""
    elif run.status == "incomplete":
        status = f"incomplete: {run.note}"
    status += _mark(run, "complete")
    latency = (
        f"{num(f.get('latency_p50_ms'))}{_mark(run, 'latency_p50_ms')} / "
        f"{num(f.get('latency_p95_ms'))}"
    )
    if f.get("markers_visible") and f["markers_visible"] < f.get("markers_sent", 0):
        latency += f" ({f['markers_visible']}/{f['markers_sent']} markers)"
    cell = "-"
    if "cell_over_stream" in f:
        cell = f"{f['cell_over_stream']:.2f} (+{f['tail_s']:.2f} s){_mark(run, 'tail_s')}"
    overhead = "-"
    if "overhead_ratio" in f:
        bound = "≥ " if f.get("overhead_lower_bound") else ""
        overhead = f"{bound}{f['overhead_ratio']:.3f}{_mark(run, 'overhead_ratio')}"
    return [
        run.view,
        run.scenario.title,
        status,
        latency,
        num(f.get("client_lag_p50_ms")),
        num(f.get("first_visible_s"), 2),
        f"{num(f.get('ws_mb'), 2)}{_mark(run, 'ws_mb')}",
        f"{f.get('iopub_max_per_s', 0):,}{_mark(run, 'iopub_max_per_s')} / "
        f"{f.get('iopub_total', 0):,}",
        f"{num(f.get('longtask_live_ms'))} / {num(f.get('longtask_ms'))}"
        f"{_mark(run, 'longtask_ms')}",
        cell,
        f"{num(f.get('kernel_bytes_ratio'), 1)}{_mark(run, 'kernel_bytes_ratio')}",
        overhead,
    ]


HEADER = [
    "view",
    "scenario",
    "result",
    "latency p50 / p95 (ms)",
    "of which before the view got it, p50 (ms)",
    "first visible (s)",
    "WS recv (MB)",
    "IOPub max/s / total",
    "long tasks live / total (ms)",
    "cell ÷ stream (+ tail)",
    "kernel bytes ÷ answer",
    "%%stream ÷ raw",
]


def report(
    runs: list[Run], settings: Settings, info: dict[str, Any], elapsed: float
) -> tuple[str, bool]:
    lines = [
        f"# ipy_stream live view benchmark{' (quick)' if settings.quick else ''}",
        "",
        f"- command: `{shlex.join(sys.orig_argv)}` (in {ROOT})",
        f"- date: {info['date']}; wall time of the benchmark: {elapsed / 60:.1f} min",
        f"- machine: {info['machine']}; {_load(runs)}",
        f"- software: {info['software']}",
        f"- `ipy_stream` view: {info['view']}",
        "- baselines (`benchmarks/baselines.py`): `per-token` sets an `ipywidgets.HTML` "
        "value to the whole answer rendered (markdown-it-py) on every token; "
        "`throttle-50ms` does the same at most once per 50 ms.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row(r)) + " |" for r in runs]
    lines += ["", "Targets (✓/✗ next to the figure; not asserted):", ""]
    for scenario in settings.scenarios:
        targets = "; ".join(t.text for t in TARGETS.get(scenario.key, ()))
        lines.append(f"- {scenario.title}: {targets}")
    if settings.quick:
        lines.append(
            "- (`--quick` streams are shorter than those the targets were set for: "
            "a smoke run, not a measurement.)"
        )
    lines += [
        "",
        "Latency: a marker word's first appearance in the page (`.ipy-stream-body`, or "
        "the saved output once the live view is gone) minus the moment the server flushed "
        "that token. IOPub counted by a second subscriber to the kernel; WS bytes by CDP. "
        "See benchmarks/README.md for every figure.",
    ]
    ok = all(r.ok for r in runs)
    failed = [f"{r.view} {r.scenario.title}: {r.status}" for r in runs if not r.ok]
    if failed:
        lines += ["", "FAILED: " + "; ".join(failed)]
    return "\n".join(lines) + "\n", ok


def _load(runs: list[Run]) -> str:
    loads = [x for r in runs for x in r.figures.get("load_1min", [])]
    if not loads:
        return "load unknown"
    return f"1-min load average during the runs {min(loads):.1f} to {max(loads):.1f}"


def machine_info(browser_version: str) -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import ipykernel
    import jupyterlab

    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}",
        "software": (
            f"Python {platform.python_version()}, JupyterLab {jupyterlab.__version__}, "
            f"ipykernel {ipykernel.__version__}, Chromium {browser_version} (headless)"
        ),
    }
