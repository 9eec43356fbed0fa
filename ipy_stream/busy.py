"""Keep the kernel reported busy for as long as a cell blocks on a stream.

Why it is needed: JupyterLab (>= 4.4) sends a widget's comm messages over a kernel
subshell. When the first comm of a target opens (the live view's widget, during the
cell), the page sends ``create_subshell_request`` on the control channel; closing the
last one sends ``delete_subshell_request``. ipykernel answers every control request with
an IOPub ``status`` message ``busy`` and then ``idle`` whose parent is that request
(``Kernel.process_control``), and every comm message handled on a subshell (a view that
asks for a resync, the widgets a reloaded page restores) the same way from the
subshell's thread (``Kernel.dispatch_shell``). JupyterLab's ``KernelConnection`` takes
any IOPub status as the state of the whole kernel, unless its parent's ``msg_type`` is
in the server's ``untracked_message_types`` (jupyter_server's
``MappingKernelManager``), whose default list has ``debug_request`` and
``kernel_info_request`` but none of the subshell requests and, rightly, not
``comm_msg``. So from that ``idle`` on, JupyterLab's kernel status (the status bar's
"Python 3 (ipykernel) | Idle") said *Idle* while the cell still ran, and jupyter_server
recorded the kernel as idle too (``/api/kernels``, the idle culler).

The front end has to get that ``idle``: it is how it learns that its request was
handled (its future matches the parent's ``msg_id``). :func:`kernel_stays_busy`
therefore lets it through, in two steps that each keep the kernel reported busy:

- the ``idle``'s parent header keeps its ``msg_id`` but is labelled
  ``comm_info_request``, a type in ``untracked_message_types``, so JupyterLab and
  jupyter_server complete the request without reading the ``idle`` as the kernel's
  state (letting it through unlabelled left the status bar saying Idle for the time
  between two WebSocket messages, which the page sometimes drew);
- it is followed at once, on the same thread, by a ``busy`` status whose parent is the
  cell's own ``execute_request``, which is still running, for clients that read every
  status. They say Busy again until the cell's real ``idle`` (always sent after the
  block exits: a lock orders the two).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["kernel_stays_busy"]

_ATTRIBUTE = "_publish_status"  # ipykernel's Kernel._publish_status(status, channel, parent)
_UNTRACKED_TYPE = "comm_info_request"  # in jupyter_server's default untracked_message_types


class _BusyKeeper:
    """Wraps one kernel's ``_publish_status`` while cells that must stay busy run."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []  # execute_request messages, innermost last
        self.had_own = _ATTRIBUTE in vars(kernel)
        self.original: Callable[..., Any] = getattr(kernel, _ATTRIBUTE)

    def publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        with self.lock:
            if status != "idle" or not self.requests:
                self.original(status, channel, parent)
                return
            if parent is None:
                parent = self.kernel.get_parent(channel)
            if _msg_id(parent) in {_msg_id(request) for request in self.requests}:
                self.original(status, channel, parent)
                return
            self.original(status, channel, _untracked(parent))
            self.original("busy", "shell", self.requests[-1])

    def install(self) -> None:
        setattr(self.kernel, _ATTRIBUTE, self.publish_status)

    def uninstall(self) -> None:
        if vars(self.kernel).get(_ATTRIBUTE) != self.publish_status:
            return  # wrapped again by someone else: stay, passing everything through
        if self.had_own:
            setattr(self.kernel, _ATTRIBUTE, self.original)
        else:
            delattr(self.kernel, _ATTRIBUTE)


_KEEPERS: dict[int, _BusyKeeper] = {}
_KEEPERS_LOCK = threading.Lock()


def _msg_id(message: Any) -> Any:
    header = message.get("header") if isinstance(message, dict) else None
    return header.get("msg_id") if isinstance(header, dict) else None


def _untracked(parent: Any) -> Any:
    """``parent`` with its header's ``msg_type`` set to one that no client tracks."""
    header = parent.get("header") if isinstance(parent, dict) else None
    if not isinstance(header, dict):
        return parent
    return {**parent, "header": {**header, "msg_type": _UNTRACKED_TYPE}}


def _running_request(kernel: Any) -> dict[str, Any] | None:
    """The ``execute_request`` this thread is handling, or None (no kernel, old kernel)."""
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None or not callable(getattr(kernel, _ATTRIBUTE, None)):
        return None
    try:
        parent = get_parent("shell")
    except Exception:  # noqa: BLE001 - any other kernel: leave it alone
        return None
    if not isinstance(parent, dict) or _msg_id(parent) is None:
        return None
    header = parent["header"]
    return parent if header.get("msg_type") == "execute_request" else None


def _enter(kernel: Any, request: dict[str, Any]) -> _BusyKeeper:
    with _KEEPERS_LOCK:
        keeper = _KEEPERS.get(id(kernel))
        if keeper is None:
            keeper = _KEEPERS[id(kernel)] = _BusyKeeper(kernel)
            keeper.install()
        with keeper.lock:
            keeper.requests.append(request)
        return keeper


def _leave(keeper: _BusyKeeper, request: dict[str, Any]) -> None:
    with _KEEPERS_LOCK, keeper.lock:
        if any(r is request for r in keeper.requests):
            keeper.requests.remove(request)
        if not keeper.requests and _KEEPERS.get(id(keeper.kernel)) is keeper:
            del _KEEPERS[id(keeper.kernel)]
            keeper.uninstall()


@contextlib.contextmanager
def kernel_stays_busy(shell: Any) -> Iterator[None]:
    """Within the block, clients keep seeing the kernel busy with the running cell.

    ``shell`` is the IPython shell (its ``kernel`` is ipykernel's). Enter it in the
    thread that runs the cell, from the start of everything that may open a comm (the
    live view's widget) to the end of the cell's work. Outside an ipykernel cell
    (terminal IPython, a plain InteractiveShell, another kernel) it does nothing.
    Blocks may nest and may run in several threads at once.
    """
    kernel = getattr(shell, "kernel", None)
    request = _running_request(kernel) if kernel is not None else None
    if request is None:
        yield
        return
    keeper = _enter(kernel, request)
    try:
        yield
    finally:
        # Must happen even if an interrupt lands here: a busy sent after the cell's own
        # idle would leave the front end saying Busy for good. The interrupt is kept.
        interrupted = False
        while True:
            try:
                _leave(keeper, request)
                break
            except KeyboardInterrupt:
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt
