"""Faults, interrupts and secrets: the real ChatOpenAI over HTTP to the project's test server.

Every test drives ``%%stream`` in a fresh IPython shell (the ``ip`` fixture) against
``tests/openai_server`` on 127.0.0.1 and checks what a person would see: the one line
the cell prints, the text kept in ``-o``, the Markdown the notebook keeps (the final
saved ``text/html`` output of the widget view) and the run log.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from pydantic import SecretStr

from ipy_stream.errors import StreamError
from ipy_stream.panes import Panes
from tests.openai_server import StreamServer, generate_reply
from tests.saved_output import Saved, saved
from tests.support import (
    Captured,
    InterruptAfter,
    RecordingChatModel,
    background_threads,
    log_rows,
    run,
    wait_until,
)

MODEL = "gpt-4o-mini"
ENDLESS = 100_000
"""Tokens of a stream that could not end before pytest's timeout (300 s) at the rates used
here: it ends when the test stops it, however slow the machine."""


# -- helpers ---------------------------------------------------------------------------


@dataclass
class Seen:
    """Everything a person sees of one cell."""

    result: Any
    captured: Captured
    out: Any
    saved: Saved
    plain: str

    @property
    def lines(self) -> list[str]:
        """The non-blank lines printed under the cell (stdout and stderr)."""
        text = self.captured.stdout + self.captured.stderr
        return [line for line in text.splitlines() if line.strip()]


def stream(ip: InteractiveShell, cell: str, out: str = "out") -> Seen:
    """Run a ``%%stream -o out`` cell in the widget view and collect what it left behind."""
    ip.user_ns.pop(out, None)
    result, captured = run(ip, cell)
    (kept,) = captured.final_outputs()
    return Seen(
        result=result,
        captured=captured,
        out=ip.user_ns.get(out),
        saved=saved(kept["data"]),
        plain=kept["data"]["text/plain"],
    )


def reply(tokens: int) -> str:
    """The first ``tokens`` tokens of the server's default reply."""
    return "".join(generate_reply(tokens))


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records a notebook would print under the cell (Python shows WARNING and up)."""
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def assert_failed_in_one_line(seen: Seen, *phrases: str) -> str:
    """The cell failed (so Run All stops), said so in one line, with no traceback."""
    assert isinstance(seen.result.error_in_exec, StreamError), seen.result.error_in_exec
    assert "Traceback" not in seen.captured.stdout + seen.captured.stderr
    assert len(seen.lines) == 1, seen.lines
    (line,) = seen.lines
    for phrase in phrases:
        assert phrase in line, line
    return line


def assert_partial_kept(seen: Seen, partial: str, log_path: Path) -> None:
    """The text received before the failure is in -o, in the saved output and in the log."""
    assert seen.out == partial
    assert seen.plain == partial
    assert seen.saved.answer.renders(partial)
    assert seen.saved.answer.status == "failed"
    assert seen.saved.answer.footer.startswith(f"{MODEL} · failed")
    last = log_rows(log_path)[-1]
    assert (last["status"], last["answer"]) == ("failed", partial)


def ipy_stream_threads() -> list[str]:
    """Threads the extension started that still exist.

    Not filtered on ``is_alive()``: on CPython 3.11 a ``Thread.join`` interrupted by
    KeyboardInterrupt can mark a running thread as stopped; ``enumerate`` still lists it.
    """
    return [t.name for t in threading.enumerate() if t.name.startswith("ipy-stream-")]


# -- HTTP errors -------------------------------------------------------------------------


def test_refused_key_says_so_in_one_line_and_shows_no_part_of_the_key(
    http: InteractiveShell, server: StreamServer, secret_key: str, log_path: Path
) -> None:
    # The server's own 401 message quotes the key ("Incorrect API key provided: sk-...abcd").
    server.configure(status=401, fail_times=-1)
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    line = assert_failed_in_one_line(seen, "refused the API key", "401")
    assert_partial_kept(seen, "", log_path)
    shown = line + seen.saved.html + seen.plain + log_path.read_bytes().decode("utf-8", "replace")
    for leak in (secret_key, secret_key[-8:], "sk-...", "Incorrect API key"):
        assert leak not in shown
    assert len(server.completion_requests) == 1, "a refused key is not worth retrying"


@pytest.mark.parametrize("max_retries", [0, 2, 3])
def test_rate_limit_is_retried_max_retries_times_then_reported_in_one_line(
    http: InteractiveShell, server: StreamServer, log_path: Path, max_retries: int
) -> None:
    if max_retries != 2:  # 2 is the default: leave it unset there
        http.run_line_magic("config", f"StreamMagics.max_retries = {max_retries}")
    server.configure(status=429, fail_times=-1, retry_after=0.01)
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    assert_failed_in_one_line(seen, "429")
    assert_partial_kept(seen, "", log_path)
    assert [r.status for r in server.completion_requests] == [429] * (max_retries + 1)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_reported_in_one_line(
    http: InteractiveShell, server: StreamServer, log_path: Path, status: int
) -> None:
    # The server sends no retry-after for 5xx, so the client's own backoff (~0.5 s per
    # retry) applies: one retry keeps the test quick and still shows the count.
    http.run_line_magic("config", "StreamMagics.max_retries = 1")
    server.configure(status=status, fail_times=-1)
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    assert_failed_in_one_line(seen, f"HTTP {status}")
    assert_partial_kept(seen, "", log_path)
    assert [r.status for r in server.completion_requests] == [status, status]


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, 0.01), (500, None), (503, None)], ids=str
)
def test_one_transient_failure_is_invisible(
    http: InteractiveShell,
    server: StreamServer,
    caplog: pytest.LogCaptureFixture,
    status: int,
    retry_after: float | None,
) -> None:
    server.configure(status=status, fail_times=1, retry_after=retry_after, tokens=12, rate=0)
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    assert seen.result.success, seen.lines
    assert seen.lines == []
    assert warnings_logged(caplog) == []
    assert seen.out == reply(12)
    assert seen.saved.answer.renders(reply(12))
    assert seen.saved.answer.footer.startswith(f"{MODEL} · done")
    assert [r.status for r in server.completion_requests] == [status, 200]


def test_unreachable_server_is_one_line(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    http.run_line_magic("config", f"StreamMagics.base_url = 'http://127.0.0.1:{port}/v1'")
    http.run_line_magic("config", "StreamMagics.max_retries = 0")
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    assert_failed_in_one_line(seen, "Could not reach", f"127.0.0.1:{port}")
    assert_partial_kept(seen, "", log_path)


# -- broken streams ----------------------------------------------------------------------


def test_dropped_connection_keeps_the_partial_text(
    http: InteractiveShell, server: StreamServer, log_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.configure(tokens=60, rate=0, drop_after=9)
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    line = assert_failed_in_one_line(seen, "connection", "dropped after 9 tokens")
    # the server was reached: the answer had started
    assert "Could not reach" not in line
    assert_partial_kept(seen, reply(9), log_path)
    assert warnings_logged(caplog) == []
    assert len(server.completion_requests) == 1, "text already shown must not be requested twice"


@pytest.mark.parametrize("stall_after", [0, 7])
def test_a_stalled_stream_times_out_keeping_the_text_before_the_stall(
    http: InteractiveShell, server: StreamServer, log_path: Path, stall_after: int
) -> None:
    server.configure(tokens=60, rate=0, stall_after=stall_after, stall_seconds=30)
    seen = stream(http, f"%%stream -m {MODEL} --timeout 1 -o out\nhi")
    assert_failed_in_one_line(seen, "No token arrived", "timeout")
    assert_partial_kept(seen, reply(stall_after), log_path)
    record = server.completion_requests[-1]
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert record.tokens_sent == stall_after


def test_malformed_chunk_keeps_the_partial_text(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    server.configure(tokens=60, rate=0, malformed_after=11)
    seen = stream(http, f"%%stream -m {MODEL} -o out\nhi")
    assert_failed_in_one_line(seen, "not valid JSON")
    assert_partial_kept(seen, reply(11), log_path)


# -- interrupts and Stop -----------------------------------------------------------------


def test_interrupt_closes_the_http_stream_leaves_no_thread_and_the_next_run_works(
    http: InteractiveShell, server: StreamServer, secret_key: str
) -> None:
    from langchain_openai import ChatOpenAI

    server.configure(tokens=ENDLESS, rate=100)
    http.user_ns["llm"] = ChatOpenAI(
        model=MODEL,
        base_url=server.base_url,
        api_key=SecretStr(secret_key),
        callbacks=[InterruptAfter(6)],
    )
    seen = stream(http, "%%stream -m llm -o out\nA long story")
    error = seen.result.error_in_exec
    assert isinstance(error, StreamError)
    assert error.interrupted
    assert len(seen.lines) == 1, seen.lines
    assert seen.lines[0].startswith("Interrupted after 6 tokens")
    assert "kept in 'out'" in seen.lines[0]
    assert seen.out == reply(6)
    assert seen.saved.answer.renders(reply(6))
    assert seen.saved.answer.status == "interrupted"
    assert "interrupted" in seen.saved.answer.footer
    assert ipy_stream_threads() == []
    record = server.completion_requests[-1]
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert record.tokens_sent < ENDLESS

    assert_next_stream_works(http, server)


class PacedModel(RecordingChatModel):
    """A local model that streams ``reply`` one word every ``delay`` seconds."""

    delay: float = 0.005


def assert_next_stream_works(http: InteractiveShell, server: StreamServer) -> None:
    """After a stop or an interrupt, a fresh %%stream runs to its end."""
    server.reset()
    server.configure(tokens=5, rate=0)
    again = stream(http, f"%%stream -m {MODEL} -o out\nAgain")
    assert again.result.success, again.lines
    assert again.out == reply(5)


def interrupt_main_thread_when(ready: Any, timeout: float = 10) -> threading.Thread:
    """Send SIGINT (what the kernel's stop button does) to the main thread once ``ready()``."""
    main = threading.main_thread().ident
    assert main is not None

    def wait_then_interrupt() -> None:
        try:
            wait_until(ready, timeout)
        except TimeoutError:
            return
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=wait_then_interrupt, daemon=True)
    thread.start()
    return thread


def test_interrupting_side_by_side_streams_keeps_each_partial_answer(
    http: InteractiveShell,
    server: StreamServer,
    caplog: pytest.LogCaptureFixture,
    sigint_raises: None,
    panes: list[Panes],
) -> None:
    # One model over HTTP (a token every 50 ms) and one local model (a word every 5 ms),
    # neither of which could end before the interrupt, however slow the machine.
    # The interrupt reaches the main thread while it waits for the first model, the one
    # slower to notice a stop: the cell must still wait for it before it ends.
    server.configure(tokens=ENDLESS, rate=20)
    local = PacedModel(reply="word " * ENDLESS)
    http.user_ns["local"] = local

    def both_received_three() -> bool:
        """Each view shows 3 tokens: the cell has received them, not only been sent them."""
        if not panes or len(panes[0].views) != 2:
            return False
        over_http, here = (view.widget.text for view in panes[0].views)
        return over_http.startswith(reply(3)) and here.startswith("word " * 3)

    started = interrupt_main_thread_when(both_received_three)
    seen = stream(http, f"%%stream -m {MODEL},local -o both\nA long story", out="both")
    started.join(timeout=10)
    error = seen.result.error_in_exec
    assert isinstance(error, StreamError)
    assert error.interrupted
    # Both partial answers are kept, each a prefix of what its model sent.
    assert isinstance(seen.out, dict)
    assert sorted(seen.out) == [MODEL, "local"], f"-o lost an answer: {seen.out!r}"
    record = server.completion_requests[-1]
    assert seen.out[MODEL].startswith(reply(3))
    assert record.text_sent.startswith(seen.out[MODEL])
    assert seen.out["local"].startswith("word word word ")
    footers = [answer.footer for answer in seen.saved.answers]
    assert [footer.split(" · ")[:2] for footer in footers] == [
        [MODEL, "interrupted (partial answer)"],
        ["local", "interrupted (partial answer)"],
    ], footers
    assert "did not finish" not in seen.saved.visible
    # Nothing keeps running once the cell has returned, and only one line was printed.
    assert ipy_stream_threads() == []
    assert len(seen.lines) == 1, seen.lines
    assert seen.lines[0].startswith("Interrupted after")
    assert warnings_logged(caplog) == []
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert record.tokens_sent < ENDLESS

    assert_next_stream_works(http, server)


def click_stop(panes: Panes) -> None:
    (button,) = [c for c in panes.widget.children if "ipy-stream-stop" in c._dom_classes]
    button.click()


def test_stop_button_ends_a_stalled_background_stream_at_once(
    http: InteractiveShell, server: StreamServer, panes: list[Panes]
) -> None:
    # The server sends 3 tokens, then nothing for 60 s: longer than the test waits for
    # the Stop to act, and than the 30 s timeout after which the client would give up.
    server.configure(tokens=40, rate=0, stall_after=3, stall_seconds=60)
    assert run(http, f"%%stream -m {MODEL} --bg --timeout 30 -o essay\nWrite")[0].success
    (view,) = panes[0].views
    try:
        wait_until(lambda: view.widget.text == reply(3))
    except TimeoutError:
        pytest.fail("the live view never showed the first 3 tokens")
    record = server.completion_requests[-1]
    click_stop(panes[0])
    # Stop must close the connection while the server is still silent: the server then
    # never gets to send a 4th token.
    server.wait_for(lambda: record.client_closed or record.finished is not None, timeout=10)
    assert record.client_closed, "Stop did not close the connection"
    assert record.tokens_sent == 3, "Stop waited for the server to speak again"
    for thread in background_threads():
        thread.join(timeout=10)
    assert background_threads() == []
    assert http.user_ns["essay"] == reply(3)


def test_stopping_a_background_stream_prints_nothing_else(
    http: InteractiveShell, panes: list[Panes], caplog: pytest.LogCaptureFixture
) -> None:
    local = PacedModel(reply="word " * ENDLESS, delay=0.01)  # it ends only when stopped
    http.user_ns["local"] = local
    assert run(http, "%%stream -m local --bg -o essay\nWrite")[0].success
    wait_until(lambda: local.sent >= 5)
    click_stop(panes[0])
    for thread in background_threads():
        thread.join(timeout=10)
    assert background_threads() == []
    assert 0 < len(http.user_ns["essay"]) < len("word " * ENDLESS)
    # In a notebook, a WARNING record is printed under the cell: a Stop is not an error.
    assert warnings_logged(caplog) == []


# -- secrets -----------------------------------------------------------------------------


def test_the_key_is_never_visible_anywhere(
    http: InteractiveShell,
    server: StreamServer,
    secret_key: str,
    log_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http.user_ns["who"] = "otters"
    shown: list[Captured] = []
    outs: list[Any] = []

    def cell(source: str, **knobs: Any) -> None:
        server.reset()
        if knobs:
            server.configure(**knobs)
        http.user_ns.pop("out", None)
        shown.append(run(http, source)[1])
        outs.append(http.user_ns.get("out"))

    cell(f"%%stream -m {MODEL} -o out\nSay hi to {{who}}", tokens=20, rate=0)
    cell(f"%%stream -m {MODEL} -o out\nhi", status=401, fail_times=-1)
    cell(f"%%stream -m {MODEL} -o out\nhi", tokens=30, rate=0, drop_after=4)
    cell(f"%%stream -m {MODEL} --timeout 1 -o out\nhi", stall_after=2, stall_seconds=30)
    http.run_line_magic("config", "StreamMagics.max_retries = 0")
    cell(f"%%stream -m {MODEL} -o out\nhi", status=500, fail_times=-1)
    cell(f"%%stream -m {MODEL},gpt-4o -o out\nhi", tokens=5, rate=0)
    cell("%stream")
    cell("%stream log")
    cell("%stream log -n 50 hi")
    cell("%stream history")

    assert outs[0] == reply(20), "the successful run must have worked"
    assert "OPENAI_API_KEY    set" in shown[6].stdout
    assert "otters" in shown[7].stdout, "the log must list the runs"
    everything = "\n".join(
        [
            *(c.stdout + c.stderr + json.dumps(c.displays, default=repr) for c in shown),
            *(repr(value) for value in outs),
            log_path.read_bytes().decode("utf-8", "replace"),
            caplog.text,
        ]
    )
    assert secret_key not in everything
    assert secret_key[-8:] not in everything
