"""Threads and signals for runs: threads that belong to the running cell, and the
kernel's interrupt turned into a stop while a run waits."""

from __future__ import annotations

import contextvars
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["interrupts_stop", "start_thread"]


def start_thread(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread that runs ``target`` in a copy of the current context.

    Jupyter kernels keep the current cell in context variables: a copy makes the
    thread's outputs belong to the cell that started it.
    """
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target,), name=name, daemon=True)
    thread.start()
    return thread


@contextmanager
def interrupts_stop(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGINT calls ``stop`` instead of raising KeyboardInterrupt.

    A KeyboardInterrupt can land on any line, including the ones that finish the
    run; a stop cannot break anything. Only the main thread receives signals; elsewhere
    (or where the handler cannot be set) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop())
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.signal(
            signal.SIGINT, previous if previous is not None else signal.default_int_handler
        )
