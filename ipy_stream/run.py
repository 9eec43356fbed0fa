"""One cell's run, from its start to its one end.

A :class:`Run` takes a checked :class:`~ipy_stream.request.StreamRequest` and owns
everything that follows: it starts one thread per model, waits, stops (the only
place that stops streams: the kernel's interrupt and a Stop button both come
here), and finishes **exactly once**, whatever happened: it sets ``-o``, ends the live
views, adds the chat turn, shows the final output, closes the models' HTTP clients
and writes the run log. Each of those steps runs even if an earlier one failed.

While a blocking run is under way, the kernel's interrupt (SIGINT) does not raise
``KeyboardInterrupt`` in the middle of it; it stops the streams, and the run ends
normally with the partial answers, marked interrupted. Any number of interrupts at
any moment leave the same result. Nothing here knows IPython.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ipy_stream.chats import Chats
from ipy_stream.cost import endpoint_of, estimate_cost
from ipy_stream.display import CellOutput
from ipy_stream.errors import StreamError, clause, sentence
from ipy_stream.outcome import Outcome
from ipy_stream.request import ModelCall, StreamRequest
from ipy_stream.runlog import RunLog
from ipy_stream.runner import ModelStream
from ipy_stream.threads import interrupts_stop, start_thread
from ipy_stream.view import View

__all__ = ["STOP_GRACE", "Run"]

STOP_GRACE = 3.0
"""Seconds a stopped stream may take to end before the run ends without it. A model
whose connection cannot be cut stops at its next token; one that sends none is left
to end on its own, and the run keeps what it had sent."""

_POLL = 0.1


@dataclass
class _Job:
    """One model's stream within the run, on its own thread."""

    call: ModelCall
    view: View
    stream: ModelStream
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: BaseException | None = None

    def body(self) -> None:
        try:
            self.outcome = self.stream.run()
        except BaseException as exc:  # noqa: BLE001 - kept, and raised when the run ends
            self.error = exc
        finally:
            self.ended.set()

    def result(self) -> Outcome:
        """How it ended; a stream that has not ended was stopped, and keeps its text."""
        outcome = self.outcome if self.outcome is not None else self.stream.so_far()
        if self.call.model.reports_usage and not outcome.usage and outcome.status == "done":
            return replace(outcome, usage_missing=True)
        endpoint = endpoint_of(self.call.model.runnable)
        if endpoint is None or not outcome.usage:
            return outcome
        cost = estimate_cost(endpoint.model, outcome.usage, base_url=endpoint.base_url)
        return replace(outcome, cost=cost)


class Run:
    """Start, wait, stop, finish (once) and report one ``%%stream`` cell.

    ``make_output(on_stop)`` builds the cell's output (live views, then the final
    output); ``on_stop`` is the Stop button's action for background runs.
    ``log_path`` None turns the run log off; ``on_log_error`` hears why it could
    not be written. The caller claims the request's conversation
    (:meth:`Chats.claim`) before reading its history; finishing frees it.
    """

    def __init__(
        self,
        request: StreamRequest,
        make_output: Callable[[Callable[[], None] | None], CellOutput],
        *,
        namespace: MutableMapping[str, Any],
        chats: Chats,
        log_path: str | None = None,
        on_log_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.request = request
        self._make_output = make_output
        self._namespace = namespace
        self._chats = chats
        self._log_path = log_path
        self._on_log_error = on_log_error
        self._jobs: list[_Job] = []
        self._output: CellOutput | None = None
        self._lock = threading.Lock()
        self._stopped_at: float | None = None
        self._finishing = False
        self.ended = threading.Event()
        """Set once the run has finished: variables, output and log are in place."""
        self.outcomes: list[Outcome] = []

    # -- the whole run ------------------------------------------------------------------

    def execute(self) -> None:
        """Run in the calling thread until every stream ended, finish, then raise a
        StreamError if a stream failed or was interrupted."""
        with interrupts_stop(self.stop):
            try:
                self.start()
                self.wait()
            finally:
                self.finish()
        self.report()

    def execute_in_background(self) -> None:
        """Start the streams, and wait and finish on another thread; return at once."""

        def wait_and_finish() -> None:
            try:
                self.wait()
            finally:
                self.finish()

        with interrupts_stop(self.stop):
            try:
                self.start()
            except BaseException:
                self.finish()
                raise
            start_thread(wait_and_finish, "ipy-stream-background")

    # -- the steps ----------------------------------------------------------------------

    def start(self) -> None:
        """Show the live views and start one thread per model."""
        on_stop = self.stop if self.request.background else None
        self._output = output = self._make_output(on_stop)
        for call, view in zip(self.request.calls, output.views, strict=True):
            stream = ModelStream(
                call.chain,
                self.request.inputs,
                view.append,
                explain=call.explain,
                abort=call.model.abort,
                on_reasoning=view.think,
                on_tool=view.tool,
            )
            job = _Job(call, view, stream)
            with self._lock:
                self._jobs.append(job)
                stopping = self._stopped_at is not None
            if stopping:
                stream.stop()
            start_thread(job.body, f"ipy-stream-{call.name}")

    def stop(self) -> None:
        """Stop every stream; safe from any thread or signal handler, any number of times."""
        with self._lock:
            if self._stopped_at is None:
                self._stopped_at = time.monotonic()
            jobs = list(self._jobs)
        for job in jobs:
            job.stream.stop()

    def wait(self) -> None:
        """Until every stream has ended, or was stopped more than STOP_GRACE ago."""
        for job in list(self._jobs):
            while True:
                try:
                    if job.ended.wait(_POLL) or self._gave_up():
                        break
                except KeyboardInterrupt:  # where SIGINT could not be taken over
                    self.stop()

    def _gave_up(self) -> bool:
        stopped_at = self._stopped_at
        return stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE

    def finish(self) -> None:
        """Set the variables, end the views, keep the chat turn, show the final output,
        close the models and log the run: once, each step even if another fails."""
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
        self.outcomes = [job.result() for job in self._jobs]
        errors = [job.error for job in self._jobs if job.error is not None]
        for step in (
            self._set_variables,
            self._end_views,
            self._keep_turn,
            self._show_final,
            self._close_models,
            self._log,
        ):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the other steps must still run
                errors.append(exc)
        self.ended.set()
        if errors:
            raise errors[0]

    def report(self) -> None:
        """Raise a one-line StreamError if a stream failed or was interrupted."""
        pairs = list(zip(self.request.calls, self.outcomes, strict=False))
        interrupted = [o for _, o in pairs if o.status == "interrupted"]
        failed = [(call, o) for call, o in pairs if o.status == "failed"]
        out = self.request.out
        kept = f" (kept in '{out}')" if out else ""
        if interrupted:
            tokens = sum(o.tokens for _, o in pairs)
            raise StreamError(
                f"Interrupted after {tokens} token{'s' if tokens != 1 else ''}; "
                f"the partial answer is shown above{kept}.",
                interrupted=True,
            )
        if len(failed) == 1 and len(pairs) == 1:
            raise StreamError(failed[0][1].message)
        if failed:
            reasons = "; ".join(f"{call.name} failed: {clause(o.message)}" for call, o in failed)
            raise StreamError(sentence(reasons))

    # -- what finishing does ------------------------------------------------------------

    def _set_variables(self) -> None:
        names = ((self.request.out, "text"), (self.request.reasoning_out, "reasoning"))
        for name, part in names:
            if name is None or not self.outcomes:
                continue
            values = [getattr(outcome, part) for outcome in self.outcomes]
            if len(self.request.calls) == 1:
                self._namespace[name] = values[0]
            else:
                calls = self.request.calls
                self._namespace[name] = {c.name: v for c, v in zip(calls, values, strict=True)}

    def _end_views(self) -> None:
        for job, outcome in zip(self._jobs, self.outcomes, strict=True):
            job.view.finish(outcome)

    def _keep_turn(self) -> None:
        thread = self.request.thread
        if thread is None:
            return
        try:
            if self.outcomes and self.outcomes[0].status in ("done", "interrupted"):
                first = self.outcomes[0]
                self._chats.append_turn(
                    thread,
                    self.request.turn,
                    first.text,
                    interrupted=first.status == "interrupted",
                )
        finally:
            self._chats.release(thread)

    def _show_final(self) -> None:
        if self._output is not None and len(self.outcomes) == len(self.request.calls):
            labels = [call.model.label for call in self.request.calls]
            self._output.finish(labels, self.outcomes)

    def _close_models(self) -> None:
        for call in self.request.calls:
            if call.model.close is not None:
                call.model.close()

    def _log(self) -> None:
        if self._log_path is None or not self._jobs:
            return
        batch = uuid.uuid4().hex[:12]
        try:
            log = RunLog(self._log_path)
            for job, outcome in zip(self._jobs, self.outcomes, strict=True):
                log.record(
                    batch=batch,
                    started_at=job.started_at,
                    model=job.call.name,
                    label=job.call.model.label,
                    base_url=job.call.model.base_url,
                    params=dict(job.call.params),
                    messages=[dict(m) for m in self.request.messages],
                    outcome=outcome,
                    attachments=[a.record() for a in self.request.attachments],
                )
        except (OSError, sqlite3.Error) as exc:
            if self._on_log_error is not None:
                self._on_log_error(exc)
