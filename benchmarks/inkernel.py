"""Benchmark helpers that run inside the kernel (imported by the benchmark notebook).

* :func:`describe` writes which live view ``%%stream`` has (the product's ``WidgetView``
  and the widget class behind it), so the report can say what was measured.
* :func:`overhead` times ``%%stream`` against consuming the same chain raw, alternating.
"""

from __future__ import annotations

import _thread
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["describe", "overhead"]


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe(out: str) -> dict[str, Any]:
    """Write (JSON, to ``out``) the product's view class and the widget class it shows."""
    import anywidget
    import ipywidgets

    from benchmarks.baselines import product_view

    view_cls = product_view()
    view = view_cls("describe", interval=0.1)
    try:
        widget_cls = type(view.widget)
        kinds = [base.__module__.split(".")[0] for base in widget_cls.__mro__]
        kind = (
            "anywidget"
            if issubclass(widget_cls, anywidget.AnyWidget)
            else "ipywidgets"
            if "ipywidgets" in kinds
            else "other"
        )
    finally:
        view.close()
    info = {
        "view": _name(view_cls),
        "widget": _name(widget_cls),
        "widget_kind": kind,
        "ipywidgets": ipywidgets.__version__,
        "anywidget": getattr(anywidget, "__version__", "?"),
    }
    Path(out).write_text(json.dumps(info), encoding="utf-8")
    return info


def _raw_chain(shell: Any, cell: str, model: str) -> tuple[Any, dict[str, Any]]:
    """The chain ``%%stream -m model`` builds for ``cell`` (same template, same
    ``ChatOpenAI`` settings), built with ipy_stream's own request, and its inputs."""
    from ipy_stream.request import Options, build_request

    magics = shell.magics_manager.registry["StreamMagics"]
    defaults = magics.defaults(os.environ)
    request = build_request(Options(model=model), cell, shell.user_ns, defaults)
    return request.calls[0].chain, dict(request.inputs)


def overhead(
    shell: Any,
    out: str,
    *,
    cell: str = "bench",
    model: str = "gpt-4o-mini",
    reps: int = 3,
    cap: float = 30.0,
    settle: float = 0.5,
) -> dict[str, Any]:
    """Time ``%%stream -m model`` and ``for _ in chain.stream(...)`` on the same stream,
    ``reps`` times each, alternating which goes first; write the timings to ``out`` (JSON).

    A ``%%stream`` run longer than ``cap`` seconds is interrupted (as the kernel's stop
    button would) and recorded as capped: its ratio is then only a lower bound. Between
    runs the outputs are cleared and the kernel sleeps ``settle`` s so that the browser's
    rendering of one run does not eat into the next one's CPU.
    """
    from IPython.display import clear_output

    from benchmarks import baselines

    baselines.use(baselines.selected())  # the view itself, without the arrival recording
    chain, inputs = _raw_chain(shell, cell, model)
    stream_times: list[float] = []
    raw_times: list[float] = []
    capped: list[bool] = []
    raw_chunks = 0

    def run_magic() -> None:
        fired = threading.Event()

        def fire() -> None:
            fired.set()
            _thread.interrupt_main()

        timer = threading.Timer(cap, fire)
        clear_output()
        start = time.perf_counter()
        timer.start()
        try:
            shell.run_cell_magic("stream", f"-m {model}", cell)
        except (Exception, KeyboardInterrupt):  # the capped run ends so
            if not fired.is_set():
                raise
        finally:
            timer.cancel()
            stream_times.append(time.perf_counter() - start)
            capped.append(fired.is_set())

    def run_raw() -> None:
        nonlocal raw_chunks
        start = time.perf_counter()
        chunks = 0
        for _ in chain.stream(inputs):
            chunks += 1
        raw_times.append(time.perf_counter() - start)
        raw_chunks = chunks

    for rep in range(reps):
        order = (run_magic, run_raw) if rep % 2 == 0 else (run_raw, run_magic)
        for step in order:
            step()
            time.sleep(settle)
    clear_output()
    stream_med = statistics.median(stream_times)
    raw_med = statistics.median(raw_times)
    result = {
        "stream_seconds": stream_times,
        "raw_seconds": raw_times,
        "capped": capped,
        "raw_chunks": raw_chunks,
        "stream_median": stream_med,
        "raw_median": raw_med,
        "ratio": stream_med / raw_med if raw_med > 0 else None,
        "ratio_is_lower_bound": any(capped),
        "cap": cap,
    }
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return result
