"""Run one cell's streams: one model, or several side by side, in front or in the background.

A :class:`Job` is one model's stream with its own view and stop flag. ``run_jobs``
runs one job in the calling thread (so the kernel's interrupt reaches the socket read
directly), or several at once in threads, turning an interrupt into a stop for each.
No IPython here.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import Runnable

from ipy_stream.outcome import Outcome
from ipy_stream.runner import run_stream
from ipy_stream.view import View

__all__ = ["Job", "run_jobs", "start_thread"]


@dataclass
class Job:
    """One model's run within a cell."""

    model: str
    label: str
    base_url: str | None
    chain: Runnable[Any, Any]
    inputs: dict[str, Any]
    view: View
    explain: Callable[[BaseException, int], str]
    abort: Callable[[], None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    outcome: Outcome | None = None

    def run(self) -> Outcome:
        """Stream to the end, show the final state in the view, and keep the outcome."""
        self.started_at = datetime.now(UTC)
        try:
            outcome = run_stream(
                self.chain, self.inputs, self.view, describe_error=self.explain, stop=self.stop
            )
            self.view.finish(outcome)
            self.outcome = outcome
            return outcome
        finally:
            self.ended.set()


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread that runs ``target`` in a copy of the current context.

    Jupyter kernels keep the current cell in context variables: a copy makes the
    thread's outputs belong to the cell that started it.
    """
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name=name, daemon=True)
    thread.start()
    return thread


def run_jobs(jobs: Sequence[Job], *, poll: float = 0.05) -> None:
    """Run the jobs to their end; an interrupt stops all of them, keeping partial text."""
    if len(jobs) == 1:
        jobs[0].run()
        return
    for job in jobs:
        start_thread(job.run, f"ipy-stream-{job.model}")
    # Waiting on events, not Thread.join: an interrupt inside join can leave the thread
    # marked as finished while it still runs.
    try:
        for job in jobs:
            while not job.ended.wait(poll):
                pass
    except KeyboardInterrupt:
        stop_all(jobs)
        for job in jobs:
            job.ended.wait()


def stop_all(jobs: Sequence[Job]) -> None:
    """Stop every job: at once where its connection can be cut, else at its next token."""
    for job in jobs:
        job.stop.set()
        if job.abort is not None and not job.ended.is_set():
            job.abort()
