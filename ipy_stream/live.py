"""The live view's widget: the kernel keeps the text and sends only what is new.

:class:`LiveMarkdown` is an anywidget whose front end (``js/``, built into
``ipy_stream/static/``) renders the Markdown incrementally in the browser. The
kernel side keeps the whole text; at each flush it sends one custom message with
the new characters only, and the progress line to show under them::

    {"type": "append", "seq": n, "epoch": e, "offset": <chars before>,
     "text": <new chars>, "footer": <progress>}

so the traffic for an answer of N characters is about N, whatever the token rate.
Offsets count code points (Python ``str`` indices); the front end counts the same
way. Synced traits carry the state a view created later needs: ``status``,
``footer``, ``length`` (code points sent so far), ``seq`` (of the last flush),
``epoch`` and ``checkpoint``. They are synced at the first flush, then at most once
per :data:`STATE_INTERVAL` while streaming, and at the end: one message per flush,
not two.

``epoch`` counts the times the text was replaced (:meth:`LiveMarkdown.finish` with
a ``text`` that does not extend what was sent: a message with ``"reset": true``
and the whole new text). Within one epoch the text only grows, so a front end's
text is right as far as it goes when its epoch is the kernel's, and an offset and a
length are all it needs to compare; a front end that missed a reset finds a newer
epoch in the next message or state update, whatever the new text's length, drops
its text, and takes the new one from ``checkpoint`` or asks for it. A few bytes a
message, where a hash of the text would cost a pass over it at each check.

Custom messages are not replayed: a front end that missed some (a view created
later, a page reloaded) finds ``offset`` or ``length`` ahead of what it holds, or a
newer ``epoch``, and asks ``{"type": "resync", "have": k, "epoch": e}``; the kernel
answers with an ``append`` message carrying ``text[k:]`` (``"resync": true``), or,
when ``e`` is not its epoch (or ``k`` is past the end), the whole text with
``"reset": true``. It is handled on whatever thread the kernel delivers it (a comm
subshell while a cell runs, with JupyterLab >= 4.4 and ipykernel >= 7; otherwise
only between cells). Messages to the kernel can be lost or late, though, and the
first messages may arrive before the browser has loaded the module: so
``checkpoint`` also holds a prefix of the text (of the current epoch), refreshed
whenever the text has doubled or was replaced, for the first ``checkpoint_limit``
characters (state, unlike messages, is never lost), which bounds its cost to twice
that limit (and that limit again at a reset).

The model's thinking (:meth:`LiveMarkdown.think`) is kept apart from the answer: it
never enters the text above, its ``length``, ``checkpoint`` or epochs. It only grows,
so it needs no epochs or resync requests: each flush that has new thinking sends::

    {"type": "thinking", "offset": <code points before>, "text": <new chars>,
     "tokens": <pieces so far>, "seconds": <from the first piece to the last>}

and the synced traits ``thinking`` (all of it so far), ``thinking_tokens`` and
``thinking_seconds`` follow it with the other traits: at most once per
:data:`STATE_INTERVAL` while it changed, and at the end. A front end takes a message
whose offset it has reached and otherwise waits for the trait, which is never lost.

The front end's code is loaded as :mod:`ipy_stream.bundle` describes.

Threads: :meth:`LiveMarkdown.append` and :meth:`LiveMarkdown.think` only add to a
buffer under a lock (they are called for every token). One writer thread flushes at
most once per ``interval`` while something changed. :meth:`LiveMarkdown.finish` stops
the writer and always flushes the end and sets the final status and footer. Sends are
serialized by a second lock, so messages leave in offset order.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeGuard

import anywidget
import traitlets

from ipy_stream.bundle import packed_bundle, static_path

__all__ = ["CHECKPOINT_LIMIT", "STATE_INTERVAL", "LiveMarkdown", "static_path"]

#: By default the checkpoint trait follows the text only while it is shorter than
#: this: at most 2 x 16 k characters on top of the answer itself.
CHECKPOINT_LIMIT = 16_384

#: Seconds between two syncs of the traits while streaming: in between, each flush is
#: one custom message only (its ``footer`` shows the progress).
STATE_INTERVAL = 1.0

_STATUSES = ("streaming", "done", "failed", "interrupted")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    """``text`` that UTF-8 can carry: each (lone) surrogate becomes one U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _is_count(value: object) -> TypeGuard[int]:
    """A non-negative int from JSON (not a bool, not a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class LiveMarkdown(anywidget.AnyWidget):
    """Markdown that grows in the notebook while the kernel sends only new text.

    ``progress``, if given, is called at each flush with the number of appends so
    far and returns the footer to show while streaming; after :meth:`start_clock` it is
    also called about once a second while nothing arrives, so the footer never freezes
    (a clock before the first token, a count while a model thinks, a stall shown).
    ``on_sent``, if given, is called with each piece of text after it was sent, on the
    sending thread (the writer,
    then the one that calls :meth:`finish`). ``checkpoint_limit`` bounds
    the text the checkpoint trait follows (None: all of it, so that a front end that
    lost messages always catches up at the next doubling and at the end, for up to
    three times the answer's size in extra traffic).
    """

    _esm = static_path("loader.js")
    _css = static_path("live.css")
    # The view's module, gzipped: sent as a binary buffer, unpacked by loader.js.
    _bundle = traitlets.Bytes(b"").tag(sync=True)
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
        bundle, bundle_id = packed_bundle()
        super().__init__(
            footer=footer, _uid=uuid.uuid4().hex, _bundle=bundle, _bundle_id=bundle_id, **kwargs
        )
        self._interval = interval
        self._progress = progress
        self._checkpoint_limit = checkpoint_limit
        self._on_sent = on_sent
        # Guards the buffers: _pending, _appends, _thought_pending, _thoughts, _thought_span.
        self._lock = threading.Lock()
        self._send_lock = threading.RLock()  # one sender at a time, in offset order
        self._pending: list[str] = []
        self._appends = 0
        self._parts: list[str] = []  # the text sent so far
        self._sent = 0  # its length in code points
        self._seq = 0
        self._epoch = 0  # bumped by each reset: the text of one epoch only grows
        self._thought_pending: list[str] = []
        self._thoughts = 0  # pieces of thinking so far
        self._thought_span: tuple[float, float] | None = None  # first and last piece
        self._thought_parts: list[str] = []  # the thinking sent so far
        self._thought_sent = 0  # its length in code points
        self._thought_synced = 0  # the length the `thinking` trait holds
        self._thought_stats = (0, 0.0)  # tokens and seconds of what was sent
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
        with self._lock:
            if self._finished:
                raise RuntimeError("append() after finish()")
            self._pending.append(text)
            self._appends += 1
            if self._writer is None:
                self._start_writer()

    def think(self, text: str) -> None:
        """Buffer a piece of the model's thinking; the writer sends it within one interval."""
        now = time.monotonic()
        with self._lock:
            if self._finished:
                raise RuntimeError("think() after finish()")
            self._thought_pending.append(text)
            self._thoughts += 1
            first = now if self._thought_span is None else self._thought_span[0]
            self._thought_span = (first, now)
            if self._writer is None:
                self._start_writer()

    def start_clock(self) -> None:
        """Start the writer now, before the first append, so the footer ticks."""
        with self._lock:
            if self._writer is None and not self._finished:
                self._start_writer()

    def _start_writer(self) -> None:
        self._writer = threading.Thread(
            target=self._write_loop, name="ipy-stream-live", daemon=True
        )
        self._writer.start()

    @property
    def text(self) -> str:
        """All the text so far (sent and still buffered)."""
        with self._send_lock, self._lock:
            return "".join(self._parts) + _clean("".join(self._pending))

    def _write_loop(self) -> None:
        # Started by the first append: send it at once (the first token is the one a
        # person waits for), then at most once per interval.
        while True:
            if not self.flush():
                self._tick()
            if self._stop.wait(self._interval):
                return

    def _tick(self) -> None:
        """Refresh the progress footer once a second while no text arrives."""
        if self._progress is None or time.monotonic() - self._footer_at < 1.0:
            return
        with self._send_lock:
            if self._finished:
                return
            with self._lock:
                appends = self._appends
            self._footer_at = time.monotonic()
            self.footer = self._progress(appends)

    # -- sending ------------------------------------------------------------------

    def flush(self) -> bool:
        """Send what was buffered since the last flush; False if there was nothing."""
        with self._send_lock:
            with self._lock:
                new = "".join(self._pending)
                self._pending.clear()
                appends = self._appends
                thought = self._take_thought()
            due = self._synced_at is None or time.monotonic() - self._synced_at >= STATE_INTERVAL
            if not new and not thought:
                if due and self._thought_synced != self._thought_sent:
                    self._sync_traits(None)  # the last thinking, once it stopped coming
                return False
            footer = self._progress(appends) if self._progress is not None else None
            self._footer_at = time.monotonic()
            first = bool(new) and self._sent == 0 and self._epoch == 0
            if thought:
                self._send_thought(thought, footer=None if new else footer)
            if new:
                self._send_append(_clean(new), footer=footer)
            if due or first:
                self._sync_traits(footer)
            return True

    def _take_thought(self) -> str:
        """The thinking buffered since the last send (call under ``_lock``)."""
        thought = _clean("".join(self._thought_pending))
        self._thought_pending.clear()
        if thought:
            first, last = self._thought_span or (0.0, 0.0)
            self._thought_stats = (self._thoughts, round(last - first, 1))
        return thought

    def _send_thought(self, new: str, *, footer: str | None = None) -> None:
        """Send ``new`` as the thinking after what was sent."""
        tokens, seconds = self._thought_stats
        message: dict[str, Any] = {
            "type": "thinking",
            "offset": self._thought_sent,
            "text": new,
            "tokens": tokens,
            "seconds": seconds,
        }
        if footer is not None:
            message["footer"] = footer
        self._thought_parts.append(new)
        self._thought_sent += len(new)
        self.send(message)

    def _send_append(self, new: str, *, reset: bool = False, footer: str | None = None) -> None:
        """Send ``new`` as the text after what was sent (or, with ``reset``, all of it)."""
        if reset:
            self._parts, self._sent = [], 0
            self._epoch += 1
        message: dict[str, Any] = {
            "type": "append",
            "seq": self._seq + 1,
            "epoch": self._epoch,
            "offset": self._sent,
            "text": new,
        }
        if reset:
            message["reset"] = True
        if footer is not None:
            message["footer"] = footer
        self._seq += 1
        self._parts.append(new)
        self._sent += len(new)
        self.send(message)
        if self._on_sent is not None and not reset:
            self._on_sent(new)

    def _sync_traits(
        self, footer: str | None, status: str | None = None, *, reset: bool = False
    ) -> None:
        self._synced_at = time.monotonic()
        with self.hold_sync():
            limit = self._checkpoint_limit
            if (limit is None or self._sent <= limit) and (
                reset or status is not None or self._sent >= 2 * len(self.checkpoint)
            ):
                self.checkpoint = self._compact()
            elif reset:
                self.checkpoint = ""  # the old one is no prefix of the new text
            # In the same update as the checkpoint and length, which describe its text.
            self.epoch = self._epoch
            self.length = self._sent
            self.seq = self._seq
            if self._thought_synced != self._thought_sent:
                thinking = "".join(self._thought_parts)
                self._thought_parts = [thinking]
                self.thinking = thinking
                self._thought_synced = self._thought_sent
                self.thinking_tokens, self.thinking_seconds = self._thought_stats
            if footer is not None:
                self.footer = footer
            if status is not None:
                self.status = status

    def _compact(self) -> str:
        text = "".join(self._parts)
        self._parts = [text] if text else []
        return text

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Answer ``{"type": "resync", "have": k, "epoch": e}`` with the text from ``k`` on.

        When ``e`` is an older epoch (the front end holds a replaced text) or ``k`` is
        past the end, the answer is the whole text, as a reset. Without ``epoch``,
        ``k`` counts in the current one.
        """
        if not isinstance(content, dict) or content.get("type") != "resync":
            return
        have = content.get("have")
        epoch = content.get("epoch", self._epoch)
        if not (_is_count(have) and _is_count(epoch)):
            return
        with self._send_lock:
            text = self._compact()
            whole = epoch != self._epoch or have > len(text)
            offset = 0 if whole else have
            self._seq += 1
            message: dict[str, Any] = {
                "type": "append",
                "seq": self._seq,
                "epoch": self._epoch,
                "offset": offset,
                "text": text[offset:],
                "resync": True,
            }
            if whole:
                message["reset"] = True
            self.send(message)

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
                buffered = _clean("".join(self._pending))
                self._pending.clear()
                thought = self._take_thought()
            if thought:
                self._send_thought(thought)
            if buffered:
                self._send_append(buffered)
            reset = False
            if text is not None:
                wanted = _clean(text)
                sent = self._compact()
                if wanted.startswith(sent):
                    if len(wanted) > len(sent):
                        self._send_append(wanted[len(sent) :])
                else:
                    reset = True
                    self._send_append(wanted, reset=True)
            self._sync_traits(footer, status, reset=reset)

    def close(self) -> None:
        """Stop the writer (without a final flush) and close the widget."""
        self._stop_writer()
        super().close()
