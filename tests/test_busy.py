"""ipy_stream.busy without a kernel process: a stand-in kernel records the statuses it sends."""

from __future__ import annotations

import threading
from typing import Any

from ipy_stream.busy import kernel_stays_busy


def _message(msg_id: str, msg_type: str) -> dict[str, Any]:
    return {"header": {"msg_id": msg_id, "msg_type": msg_type}}


class FakeKernel:
    """The part of ipykernel's Kernel that kernel_stays_busy uses."""

    def __init__(self, shell_parent: dict[str, Any]) -> None:
        self.parents = {"shell": shell_parent, "control": {}}
        self.sent: list[tuple[str, str | None]] = []  # (status, parent msg_id)
        self.parent_types: list[str | None] = []  # the parent msg_type of each status

    def get_parent(self, channel: str | None = None) -> dict[str, Any]:
        return self.parents[channel or "shell"]

    def _publish_status(self, status: str, channel: str, parent: Any = None) -> None:
        parent = parent or self.get_parent(channel)
        header = parent.get("header", {})
        self.sent.append((status, header.get("msg_id")))
        self.parent_types.append(header.get("msg_type"))


class FakeShell:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel


CELL = _message("cell", "execute_request")
SUBSHELL = _message("sub", "create_subshell_request")
COMM = _message("comm", "comm_msg")


def test_an_idle_for_another_request_is_followed_by_busy_for_the_cell() -> None:
    kernel = FakeKernel(CELL)
    with kernel_stays_busy(FakeShell(kernel)):
        kernel.parents["control"] = SUBSHELL
        kernel._publish_status("busy", "control")
        kernel._publish_status("idle", "control")
        kernel._publish_status("busy", "shell", COMM)
        kernel._publish_status("idle", "shell", COMM)
    assert kernel.sent == [
        ("busy", "sub"),
        ("idle", "sub"),
        ("busy", "cell"),
        ("busy", "comm"),
        ("idle", "comm"),
        ("busy", "cell"),
    ]
    # Each idle keeps its request's msg_id (so the front end's request completes) under a
    # parent type that JupyterLab and jupyter_server leave out of the kernel's state.
    assert kernel.parent_types == [
        "create_subshell_request",
        "comm_info_request",
        "execute_request",
        "comm_msg",
        "comm_info_request",
        "execute_request",
    ]
    assert SUBSHELL["header"]["msg_type"] == "create_subshell_request"  # not changed in place


def test_the_cells_own_idle_and_everything_after_the_block_pass_unchanged() -> None:
    kernel = FakeKernel(CELL)
    with kernel_stays_busy(FakeShell(kernel)):
        kernel._publish_status("idle", "shell")
    assert "_publish_status" not in vars(kernel)
    kernel._publish_status("idle", "shell", COMM)
    assert kernel.sent == [("idle", "cell"), ("idle", "comm")]
    assert kernel.parent_types == ["execute_request", "comm_msg"]


def test_nothing_changes_outside_a_kernels_cell() -> None:
    no_cell = FakeKernel(_message("info", "kernel_info_request"))
    with kernel_stays_busy(FakeShell(no_cell)):
        assert "_publish_status" not in vars(no_cell)
    with kernel_stays_busy(FakeShell(None)), kernel_stays_busy(object()):
        pass


def test_nested_and_concurrent_blocks_keep_the_wrapper_until_the_last_ends() -> None:
    kernel = FakeKernel(CELL)
    shell = FakeShell(kernel)
    inside = threading.Event()
    release = threading.Event()

    def other_block() -> None:
        with kernel_stays_busy(shell):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other_block)
    with kernel_stays_busy(shell):
        thread.start()
        assert inside.wait(10)
    kernel._publish_status("idle", "shell", COMM)
    release.set()
    thread.join(10)
    kernel._publish_status("idle", "shell", COMM)
    assert kernel.sent == [("idle", "comm"), ("busy", "cell"), ("idle", "comm")]
    assert "_publish_status" not in vars(kernel)
