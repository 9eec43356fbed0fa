"""The server: a daemon thread serving HTTP, its knobs, and its records of requests."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

from .handler import Handler
from .knobs import Knobs
from .protocol import CHAT_COMPLETIONS_PATH, RESPONSES_PATH
from .transport import POLL_SECONDS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from .records import RequestRecord

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1")
"""Model ids listed by ``GET /v1/models``. Any model name is accepted by completions."""


class OwnedHTTPServer(ThreadingHTTPServer):
    """The HTTP server of a StreamServer: one daemon thread per connection."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: StreamServer) -> None:
        self.owner = owner
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about client disconnects unless the owner is verbose."""
        if self.owner.verbose:
            super().handle_error(request, client_address)


class StreamServer:
    """OpenAI-compatible server on a daemon thread; see the package docstring.

    Args:
        host: Interface to bind (default ``127.0.0.1``).
        port: Port to bind; ``0`` picks a free ephemeral port.
        knobs: Initial knobs; also what :meth:`reset` returns to (default ``Knobs()``).
        models: Model ids listed by ``GET /v1/models``.
        verbose: Log requests and handler errors to stderr.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        knobs: Knobs | None = None,
        *,
        models: Sequence[str] = DEFAULT_MODELS,
        verbose: bool = False,
    ) -> None:
        baseline = dataclasses.replace(knobs) if knobs is not None else Knobs()
        baseline.validate()
        self.host = host
        self.port = port
        self.models: tuple[str, ...] = tuple(models)
        self.verbose = verbose
        self._baseline = baseline
        self._knobs = dataclasses.replace(baseline)
        self._failures_served = 0
        self._records: list[RequestRecord] = []
        self._cond = threading.Condition(threading.RLock())
        self._stall_ended = threading.Event()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: OwnedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Self:
        """Bind and start serving on a daemon thread (idempotent); returns ``self``."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = OwnedHTTPServer((self.host, self.port), self)
        self.port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name=f"StreamServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and abort open connections (idempotent, never hangs)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._httpd = None
        self._thread = None
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the server."""
        self.close()

    def serve_until_interrupted(self) -> None:
        """Block the calling thread until Ctrl-C, then close (for the command line)."""
        self.start()
        try:
            while self._httpd is not None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("StreamServer is not running; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, for ``OpenAI(base_url=...)`` / ``ChatOpenAI(base_url=...)``."""
        return self.url + "/v1"

    # -- knobs --------------------------------------------------------------------

    @property
    def knobs(self) -> Knobs:
        """A copy of the current knobs."""
        with self._cond:
            return dataclasses.replace(self._knobs)

    def configure(self, **knobs: Any) -> Knobs:
        """Change some knobs (see :class:`Knobs`) and return the new full set.

        Raises ``TypeError`` for unknown names and ``ValueError`` for bad values; on error
        nothing changes. Setting ``status`` or ``fail_times`` restarts the failure count.
        """
        unknown = set(knobs) - Knobs.names()
        if unknown:
            raise TypeError(f"unknown knobs: {', '.join(sorted(unknown))}")
        with self._cond:
            new = dataclasses.replace(self._knobs, **knobs)
            new.validate()
            self._knobs = new
            if {"status", "fail_times"} & set(knobs):
                self._failures_served = 0
            self._cond.notify_all()
            return dataclasses.replace(new)

    def end_stall(self) -> None:
        """End every stall now, and skip stalls until :meth:`reset` (streams go on at
        their rate): a test holds a stream with ``stall_seconds``, then lets it go."""
        self._stall_ended.set()

    def reset(self) -> None:
        """Restore the initial knobs, forget all requests, restart the failure count."""
        with self._cond:
            self._knobs = dataclasses.replace(self._baseline)
            self._failures_served = 0
            self._records.clear()
            self._stall_ended.clear()
            self._cond.notify_all()

    # -- observation ----------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot list of the (live) records of every request so far, oldest first."""
        with self._cond:
            return list(self._records)

    @property
    def completion_requests(self) -> list[RequestRecord]:
        """The records of ``POST /v1/chat/completions`` requests only."""
        with self._cond:
            return [r for r in self._records if r.path == CHAT_COMPLETIONS_PATH]

    @property
    def responses_requests(self) -> list[RequestRecord]:
        """The records of ``POST /v1/responses`` requests only (the Responses API)."""
        with self._cond:
            return [r for r in self._records if r.path == RESPONSES_PATH]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true; raise ``TimeoutError`` after *timeout* s.

        The predicate is re-evaluated whenever a record or the knobs change (and at
        least every 0.1 s), so tests never need fixed sleeps. It runs with the server's
        (re-entrant) lock held, so it sees a consistent state; keep it quick.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s")
                self._cond.wait(min(remaining, 0.1))

    def wait_for_tokens(self, n: int, timeout: float = 5.0) -> RequestRecord:
        """Wait until a chat completion has sent at least *n* tokens; return its record."""
        found: list[RequestRecord] = []

        def ready() -> bool:
            found[:] = [r for r in self.completion_requests if r.tokens_sent >= n]
            return bool(found)

        self.wait_for(ready, timeout)
        return found[-1]

    def wait_for_finished(self, count: int = 1, timeout: float = 5.0) -> list[RequestRecord]:
        """Wait until *count* chat completion requests have finished; return them all."""

        def ready() -> bool:
            done = [r for r in self.completion_requests if r.finished is not None]
            return len(done) >= count

        self.wait_for(ready, timeout)
        return self.completion_requests

    # -- used by handlers -------------------------------------------------------------

    def _admit(self) -> tuple[Knobs, bool]:
        """Snapshot the knobs and decide (atomically) whether this request must fail."""
        with self._cond:
            knobs = dataclasses.replace(self._knobs)
            fail = knobs.status is not None and (
                knobs.fail_times < 0 or self._failures_served < knobs.fail_times
            )
            if fail:
                self._failures_served += 1
            return knobs, fail

    def _add_record(self, record: RequestRecord) -> None:
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    def _update(self, record: RequestRecord, **changes: Any) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(record, name, value)
            self._cond.notify_all()

    def _token_sent(self, record: RequestRecord, token: str) -> None:
        with self._cond:
            record.tokens_sent += 1
            record.text_parts.append(token)  # joined on demand: += would be quadratic
            record.token_times.append(time.monotonic())
            self._cond.notify_all()

    def _tool_call_opened(self, record: RequestRecord, call_id: str, name: str) -> None:
        """Note that a tool call was opened (its id and name sent)."""
        with self._cond:
            record.tool_calls_sent.append({"id": call_id, "name": name, "arguments": ""})
            self._cond.notify_all()

    def _tool_call_piece(self, record: RequestRecord, piece: str) -> None:
        """Note a piece of the arguments of the last tool call opened."""
        with self._cond:
            record.tool_calls_sent[-1]["arguments"] += piece
            self._cond.notify_all()

    def _finish_record(self, record: RequestRecord) -> None:
        self._update(record, finished=time.monotonic())

    def _register_connection(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.add(conn)

    def _unregister_connection(self, conn: socket.socket) -> None:
        with self._cond:
            self._connections.discard(conn)
