"""The live view's widget: the kernel keeps the text and sends only what is new.

:class:`LiveMarkdown` is an anywidget whose front end (``js/``, built into
``ipy_stream/static/`` and loaded as :mod:`ipy_stream.bundle` describes) renders the
Markdown incrementally in the browser. At each flush the kernel sends one custom
message per channel with what is new (the answer, the thinking, the tool calls) and
the progress line; :mod:`ipy_stream.outbox` builds the messages and describes them.
Synced traits carry what a view created later needs (``status``, ``footer``,
``length``, ``seq``, ``epoch``, ``checkpoint``, ``thinking`` and its counts,
``tool_calls``): at the first flush, at most once per :data:`STATE_INTERVAL` while
something changed, and at the end.

Custom messages are not replayed: a front end that missed some (a view created
later, a page reloaded) asks for the rest, on whatever thread the kernel delivers it
(a comm subshell while a cell runs, with JupyterLab >= 4.4 and ipykernel >= 7).
Such requests can be lost or late, and the first messages may arrive before the
module has loaded, so ``checkpoint`` also holds a prefix of the text, refreshed
whenever it has doubled or was replaced, up to ``checkpoint_limit`` characters
(state, unlike messages, is never lost): at most twice that limit in extra traffic.

Threads: :meth:`LiveMarkdown.append`, :meth:`~LiveMarkdown.think` and
:meth:`~LiveMarkdown.tool` only add to a buffer under a lock (they are called for
every token). One writer thread flushes at most once per ``interval`` while something
changed, and refreshes the footer once a second while nothing does.
:meth:`LiveMarkdown.finish` stops the writer, flushes the end and sets the final
state. Sends are serialized by a second lock, so messages leave in offset order.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ipy_stream.bundle import shared_front_end, static_path
from ipy_stream.outbox import TextOutbox, ThoughtOutbox, ToolOutbox

__all__ = ["CHECKPOINT_LIMIT", "STATE_INTERVAL", "LiveMarkdown", "static_path"]

#: By default the checkpoint trait follows the text only while it is shorter than
#: this: at most 2 x 16 k characters on top of the answer itself.
CHECKPOINT_LIMIT = 16_384

#: Seconds between two syncs of the traits while streaming: in between, each flush is
#: one custom message only (its ``footer`` shows the progress).
STATE_INTERVAL = 1.0

_STATUSES = ("streaming", "done", "failed", "interrupted")


class LiveMarkdown(anywidget.AnyWidget):
    """Markdown that grows in the notebook while the kernel sends only new text.

    ``progress``, if given, is called at each flush with the number of appends so
    far and returns the footer to show while streaming; after :meth:`start_clock` it is
    also called about once a second while nothing arrives, so the footer never freezes
    (a clock before the first token, a count while a model thinks, a stall shown).
    ``on_sent``, if given, is called with each piece of text after it was sent, on the
    sending thread (the writer, then the one that calls :meth:`finish`).
    ``checkpoint_limit`` bounds the text the checkpoint trait follows (None: all of it,
    so that a front end that lost messages always catches up at the next doubling and
    at the end, for up to three times the answer's size in extra traffic).
    """

    _esm = static_path("loader.js")
    _css = static_path("live.css")
    # Which module renders the view: the one this kernel's FrontEnd widget brings.
    _bundle_id = traitlets.Unicode("").tag(sync=True)

    status = traitlets.Enum(_STATUSES, default_value="streaming").tag(sync=True)
    footer = traitlets.Unicode("").tag(sync=True)
    length = traitlets.Int(0).tag(sync=True)
    seq = traitlets.Int(0).tag(sync=True)
    epoch = traitlets.Int(0).tag(sync=True)
    checkpoint = traitlets.Unicode("").tag(sync=True)
    thinking = traitlets.Unicode("").tag(sync=True)
    thinking_tokens = traitlets.Int(0).tag(sync=True)
    thinking_seconds = traitlets.Float(0.0).tag(sync=True)
    tool_calls: traitlets.List[list[str]] = traitlets.List().tag(sync=True)
    _uid = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        *,
        interval: float = 0.1,
        footer: str = "",
        progress: Callable[[int], str] | None = None,
        checkpoint_limit: int | None = CHECKPOINT_LIMIT,
        on_sent: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            footer=footer, _uid=uuid.uuid4().hex, _bundle_id=shared_front_end(), **kwargs
        )
        self._interval = interval
        self._progress = progress
        self._checkpoint_limit = checkpoint_limit
        self._on_sent = on_sent
        # _lock guards what is added (the outboxes' pending pieces and counts);
        # _send_lock what is sent (the rest of the outboxes), one sender at a time.
        self._lock = threading.Lock()
        self._send_lock = threading.RLock()
        self._text = TextOutbox()
        self._thought = ThoughtOutbox()
        self._tools = ToolOutbox()
        self._synced_at: float | None = None  # when the traits were last synced
        self._footer_at = time.monotonic()  # when the footer was last sent
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()
        self._finished = False
        self.on_msg(self._on_frontend_msg)
        self._route_frontend_messages_to_their_sender()

    def _route_frontend_messages_to_their_sender(self) -> None:
        # ipykernel >= 7.4 routes a front end's comm message to the subshell of the last
        # message the kernel sent on that comm; the writer thread's messages carry the
        # parent of whatever the kernel handled last, which can be a message on a
        # subshell the page deletes at once (a reloaded page does so while it restores
        # widgets). Every resync request would then be dropped ("Unknown subshell_id").
        # Nothing here waits for a reply: a message runs on the subshell its sender chose.
        comm = getattr(self, "comm", None)
        if comm is not None and hasattr(comm, "_reply_subshell_for"):
            comm._reply_subshell_for = lambda _data, default: default

    def _repr_mimebundle_(  # type: ignore[override]  # a dict, like ipywidgets
        self, **kwargs: Any
    ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]] | None:
        # anywidget returns (data, metadata); give plain data when there is no
        # metadata (outside Colab), like every ipywidgets widget, so callers that
        # publish a widget's bundle themselves keep working.
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, tuple) and not bundle[1]:
            return bundle[0]
        return bundle

    # -- the token path: cheap, never blocks on the front end --------------------

    def append(self, text: str) -> None:
        """Buffer ``text``; the writer thread sends it within one interval."""
        self._buffer("append", lambda: self._text.add(text))

    def think(self, text: str) -> None:
        """Buffer a piece of the model's thinking; the writer sends it within one interval."""
        now = time.monotonic()
        self._buffer("think", lambda: self._thought.add(text, now))

    def tool(self, index: int, name: str, arguments: str) -> None:
        """Tool call ``index`` has grown to this name and these arguments: shown within
        one interval."""
        self._buffer("tool", lambda: self._tools.add(index, name, arguments))

    def _buffer(self, what: str, add: Callable[[], None]) -> None:
        with self._lock:
            if self._finished:
                raise RuntimeError(f"{what}() after finish()")
            add()
            self._ensure_writer()

    def start_clock(self) -> None:
        """Start the writer now, before the first append, so the footer ticks."""
        with self._lock:
            if not self._finished:
                self._ensure_writer()

    def _ensure_writer(self) -> None:
        """Start the writer thread unless it runs (call under ``_lock``)."""
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._write_loop, name="ipy-stream-live", daemon=True
            )
            self._writer.start()

    @property
    def text(self) -> str:
        """All the text so far (sent and still buffered)."""
        with self._send_lock, self._lock:
            return self._text.text() + self._text.buffered()

    def _write_loop(self) -> None:
        # Started by the first append: send it at once (the first token is the one a
        # person waits for), then at most once per interval.
        while True:
            if not self.flush():
                self._tick()
            if self._stop.wait(self._interval):
                return

    def _tick(self) -> None:
        """Refresh the progress footer at least once a second while no text arrives
        (this runs once per interval, so it is due an interval early)."""
        due = 1.0 - self._interval
        if self._progress is None or time.monotonic() - self._footer_at < due:
            return
        with self._send_lock:
            if self._finished:
                return
            with self._lock:
                appends = self._text.appends
            self._footer_at = time.monotonic()
            self.footer = self._progress(appends)

    # -- sending ------------------------------------------------------------------

    def flush(self) -> bool:
        """Send what was buffered since the last flush; False if there was nothing."""
        with self._send_lock:
            with self._lock:
                new = self._text.take()
                appends = self._text.appends
                thought = self._thought.take()
                tools = self._tools.take()
            due = self._synced_at is None or time.monotonic() - self._synced_at >= STATE_INTERVAL
            if not new and not thought and not tools:
                if due and (self._thought.unsynced or self._tools.unsynced):
                    self._sync_traits(None)  # the last of them, once they stopped coming
                return False
            footer = self._progress(appends) if self._progress is not None else None
            self._footer_at = time.monotonic()
            first = bool(new) and self._text.sent == 0 and self._text.epoch == 0
            self._send_sides(thought, tools, None if new else footer)
            if new:
                self._send_text(new, footer=footer)
            if due or first:
                self._sync_traits(footer)
            return True

    def _send_sides(self, thought: str, tools: list[list[Any]], footer: str | None) -> None:
        """Send new thinking and tool calls (with the footer, if any, on the first)."""
        if thought:
            self.send(self._thought.message(thought, footer=footer))
            footer = None
        if tools:
            self.send(self._tools.message(tools, footer=footer))

    def _send_text(self, new: str, *, reset: bool = False, footer: str | None = None) -> None:
        """Send ``new`` as the text after what was sent (or, with ``reset``, all of it)."""
        self.send(self._text.message(new, reset=reset, footer=footer))
        if self._on_sent is not None and not reset:
            self._on_sent(new)

    def _sync_traits(
        self, footer: str | None, status: str | None = None, *, reset: bool = False
    ) -> None:
        self._synced_at = time.monotonic()
        sent = self._text.sent
        with self.hold_sync():
            limit = self._checkpoint_limit
            if (limit is None or sent <= limit) and (
                reset or status is not None or sent >= 2 * len(self.checkpoint)
            ):
                self.checkpoint = self._text.text()
            elif reset:
                self.checkpoint = ""  # the old one is no prefix of the new text
            # In the same update as the checkpoint and length, which describe its text.
            self.epoch = self._text.epoch
            self.length = sent
            self.seq = self._text.seq
            if self._thought.unsynced:
                self.thinking = self._thought.sync()
                self.thinking_tokens, self.thinking_seconds = self._thought.stats
            if self._tools.unsynced:
                self.tool_calls = self._tools.sync()
            if footer is not None:
                self.footer = footer
            if status is not None:
                self.status = status

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Answer a front end's resync request with the text it misses."""
        with self._send_lock:
            answer = self._text.resync(content)
            if answer is not None:
                self.send(answer)

    # -- the end ------------------------------------------------------------------

    def _stop_writer(self) -> None:
        with self._lock:
            self._finished = True
            writer = self._writer
        self._stop.set()
        if writer is not None and writer is not threading.current_thread():
            writer.join()

    def finish(
        self, status: str = "done", footer: str | None = None, text: str | None = None
    ) -> None:
        """Stop the writer, send the rest of the text and thinking, then the final state.

        With ``text``, the front end ends with exactly that text: what is missing is
        appended, and a text that does not extend what was sent replaces it.
        """
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}, not {status!r}")
        self._stop_writer()
        with self._send_lock:
            with self._lock:
                buffered = self._text.take()
                thought = self._thought.take()
                tools = self._tools.take()
            self._send_sides(thought, tools, None)
            if buffered:
                self._send_text(buffered)
            reset = False
            if text is not None:
                missing, reset = self._text.ending(text)
                if missing or reset:
                    self._send_text(missing, reset=reset)
            self._sync_traits(footer, status, reset=reset)

    def close(self) -> None:
        """Stop the writer (without a final flush) and close the widget."""
        self._stop_writer()
        super().close()
