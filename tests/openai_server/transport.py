"""HTTP plumbing of one connection: writing JSON and chunked events, noticing a client that
went away or a server that is shutting down."""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, ClassVar

from .protocol import MALFORMED_EVENT, dumps, error_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from .knobs import Knobs
    from .records import RequestRecord
    from .server import OwnedHTTPServer, StreamServer

POLL_SECONDS = 0.05
"""Longest a streaming handler blocks before re-checking the stop flag and the socket."""


class ClientGoneError(Exception):
    """The client closed the connection (write failed or EOF seen)."""


class StoppingError(Exception):
    """The server is shutting down."""


class Connection(BaseHTTPRequestHandler):
    """One connection's lifecycle and low-level I/O; all state lives in the owning
    StreamServer."""

    protocol_version = "HTTP/1.1"
    server_version = "ipy-stream-test-openai/1.0"
    disable_nagle_algorithm = True
    server: OwnedHTTPServer

    _ids: ClassVar[itertools.count[int]] = itertools.count(1)
    _interval = 0.0
    _next_at = 0.0

    # -- lifecycle ----------------------------------------------------------------

    @property
    def owner(self) -> StreamServer:
        """The StreamServer this handler belongs to."""
        return self.server.owner

    def setup(self) -> None:
        """Register the connection so ``close()`` can unblock it."""
        super().setup()
        self.owner._register_connection(self.connection)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.owner._unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Log to stderr only when verbose."""
        if self.owner.verbose:
            super().log_message(format, *args)

    # -- low-level I/O --------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        return self.rfile.read(int(length))

    def _end_headers(self, record: RequestRecord | None, status: int) -> None:
        if record is not None:
            self.owner._update(record, status=status)
        try:
            self.end_headers()
        except OSError as exc:
            raise self._gone() from exc

    def _send_json(
        self,
        status: int,
        payload: dict[str, Any],
        record: RequestRecord | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        data = dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_test{next(self._ids)}")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self._end_headers(record, status)
        self._write(data)

    def _send_error(
        self,
        status: int,
        record: RequestRecord,
        *,
        model: str = "gpt-4o-mini",
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        key = "sk-..." + (record.auth_last4 or "")
        body = error_body(None, status, model=model, key=key)
        record.error = f"HTTP {status}"
        self._send_json(status, body, record, extra_headers)

    def _send_invalid_url(self, record: RequestRecord) -> None:
        message = f"Invalid URL ({self.command} {self.path.split('?', 1)[0]})"
        self._send_json(404, error_body(message, 404), record)

    def _mark_completed(self, record: RequestRecord, final_write: Callable[[], None]) -> None:
        """Mark *record* completed, then do the write that completes it (undo on failure)."""
        self.owner._update(record, completed=True)
        try:
            final_write()
        except (ClientGoneError, StoppingError):
            self.owner._update(record, completed=False)
            raise

    def _start_events(self, record: RequestRecord, request_id: str) -> None:
        """Send the headers of a 200 Server-Sent Events stream."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", request_id)
        self._end_headers(record, 200)

    def _write_event(self, payload: dict[str, Any]) -> None:
        self._write_chunk(f"data: {dumps(payload)}\n\n".encode())

    def _write_chunk(self, data: bytes, *, last: bool = False) -> None:
        frame = f"{len(data):X}\r\n".encode() + data + b"\r\n"
        if last:
            frame += b"0\r\n\r\n"
        self._write(frame)

    def _write(self, data: bytes) -> None:
        if self.owner._stopping.is_set():
            raise StoppingError
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            raise self._gone() from exc

    def _gone(self) -> Exception:
        return StoppingError() if self.owner._stopping.is_set() else ClientGoneError()

    def _peer_closed(self, timeout: float) -> bool:
        """Wait up to *timeout* for the socket to become readable; True on EOF/reset."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
            if not readable:
                return False
            data = sock.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True
        if data == b"":
            return True
        # The client sent bytes mid-response (unusual); don't spin on them.
        time.sleep(timeout)
        return False

    def _stall(self, seconds: float) -> None:
        """Send nothing for ``seconds``, or until the owner's ``end_stall()``; the pace
        goes on from there."""
        deadline = time.monotonic() + seconds
        while not self.owner._stall_ended.is_set() and time.monotonic() < deadline:
            self._wait_until(min(deadline, time.monotonic() + POLL_SECONDS))
        self._next_at = max(self._next_at, time.monotonic())

    # -- pace and injected faults ---------------------------------------------------

    def _start_pace(self, rate: float) -> None:
        """Pace the next tokens at *rate* per second (``0``: as fast as possible)."""
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next_at = time.monotonic()

    def _paced(self) -> None:
        """Wait for the next token's turn."""
        self._wait_until(self._next_at)
        self._next_at += self._interval

    def _faults(self, record: RequestRecord, knobs: Knobs, index: int) -> bool:
        """Before answer token *index* (or after the last): the malformed line, the stall
        and the drop that the knobs ask for there. False when the connection was dropped."""
        if index == knobs.malformed_after:
            self._write_chunk(MALFORMED_EVENT)
        if index == knobs.stall_after:
            self._stall(knobs.stall_seconds)
        if index == knobs.drop_after:
            self.owner._update(
                record, dropped=True, error=f"dropped after {record.tokens_sent} tokens"
            )
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return False
        return True

    def _wait_until(self, deadline: float) -> None:
        """Sleep until *deadline*, noticing shutdown and a client that went away."""
        while True:
            if self.owner._stopping.is_set():
                raise StoppingError
            remaining = deadline - time.monotonic()
            if self._peer_closed(max(0.0, min(remaining, POLL_SECONDS))):
                raise self._gone()
            if remaining <= 0:
                return
