"""A live view that missed messages catches up with the kernel's text, whatever it missed.

The kernel sends only new text; a front end that misses a message must find out from
what comes next. Appends are placed by ``offset``, so a missed or duplicated append
shows as a gap or as nothing. A missed ``reset`` (the text replaced by another, maybe
shorter, one) would not: so every message, the synced state and each resync request
carry the ``epoch`` of the text they are about, which each reset increments.

No kernel: ipywidgets gives widgets a dummy comm, and each test records what the widget
transmits by replacing its ``_send`` (custom messages and state updates alike) with a
``Recorder`` from tests/support.py. The
last tests feed those recordings, with some messages dropped, to the front end's own
protocol code (``js/src/sync.js``) in node, and answer its resync requests with the
widget's handler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipy_stream.live import LiveMarkdown
from tests.support import Recorder, from_front_end, recorded

JS = Path(__file__).resolve().parent.parent / "js"

LONG = "Hello, this is a long first draft 😀 of the answer, sent in pieces."


HELD = 60
"""The writer's interval: it flushes once, when it starts; the tests flush the rest."""


def streamed(widget: LiveMarkdown, text: str, pieces: int = 4) -> None:
    """``text`` appended and flushed in ``pieces`` messages."""
    size = -(-len(text) // pieces)
    for start in range(0, len(text), size):
        widget.append(text[start : start + size])
        widget.flush()


# -- what the kernel sends ----------------------------------------------------------------


def test_every_message_and_the_state_name_the_epoch() -> None:
    widget, sent = recorded(interval=HELD)
    assert widget.get_state()["epoch"] == 0
    streamed(widget, LONG)
    widget.finish("done", text=LONG + " And the end.")
    assert len(sent.messages) >= 2
    assert all(message["epoch"] == 0 for message in sent.messages)
    assert widget.epoch == 0
    assert not any(message.get("reset") for message in sent.messages)


@pytest.mark.parametrize(
    "final",
    ["Bye", "X" * len(LONG), "Z" * len(LONG) + " and more", ""],
    ids=["shorter", "same-length", "longer", "empty"],
)
def test_a_reset_starts_a_new_epoch_and_the_state_says_so_at_once(final: str) -> None:
    widget, sent = recorded(interval=HELD)
    streamed(widget, LONG)
    widget.finish("done", text=final)
    reset = sent.messages[-1]
    assert (reset["epoch"], reset["offset"], reset["text"], reset["reset"]) == (1, 0, final, True)
    # One update, after the reset, brings the new epoch with the length and checkpoint
    # of the new text: a front end that missed the reset sees it there.
    kind, last = sent.events[-1]
    assert kind == "state"
    assert (last["epoch"], last["length"], last["status"]) == (1, len(final), "done")
    assert widget.checkpoint == final
    assert widget.epoch == 1


def test_past_the_checkpoint_limit_a_reset_empties_the_checkpoint() -> None:
    widget, sent = recorded(interval=HELD, checkpoint_limit=20)
    streamed(widget, LONG)
    assert LONG.startswith(widget.checkpoint) and widget.checkpoint
    widget.finish("done", text="A new text, longer than twenty.")
    last = sent.updates[-1]
    assert (last["epoch"], last["checkpoint"]) == (1, "")


def test_appends_after_a_reset_carry_its_epoch() -> None:
    widget, sent = recorded(interval=HELD)
    streamed(widget, LONG)
    widget.finish("done", text="Bye")
    from_front_end(widget, {"type": "resync", "have": 1, "epoch": 1})
    assert sent.messages[-1]["epoch"] == 1


# -- what it answers ----------------------------------------------------------------------


def finished_with_a_reset() -> tuple[LiveMarkdown, Recorder]:
    widget, sent = recorded(interval=HELD)
    streamed(widget, LONG)
    widget.finish("done", text="Bye 👋 now")
    return widget, sent


def test_a_resync_in_the_current_epoch_gets_the_tail() -> None:
    widget, sent = finished_with_a_reset()
    from_front_end(widget, {"type": "resync", "have": 4, "epoch": 1})
    reply = sent.messages[-1]
    assert (reply["offset"], reply["text"], reply["epoch"], reply["resync"]) == (
        4,
        "👋 now",
        1,
        True,
    )
    assert "reset" not in reply


@pytest.mark.parametrize("have", [0, 3, 9, len(LONG)])
def test_a_resync_from_an_older_epoch_gets_the_whole_text_as_a_reset(have: int) -> None:
    widget, sent = finished_with_a_reset()
    from_front_end(widget, {"type": "resync", "have": have, "epoch": 0})
    reply = sent.messages[-1]
    assert (reply["offset"], reply["text"], reply["epoch"]) == (0, "Bye 👋 now", 1)
    assert reply["reset"] is True


def test_a_resync_past_the_end_gets_the_whole_text_as_a_reset() -> None:
    widget, sent = finished_with_a_reset()
    from_front_end(widget, {"type": "resync", "have": 99, "epoch": 1})
    reply = sent.messages[-1]
    assert (reply["offset"], reply["text"], reply.get("reset")) == (0, "Bye 👋 now", True)


def test_a_resync_that_names_no_epoch_counts_in_the_current_one() -> None:
    widget, sent = finished_with_a_reset()
    from_front_end(widget, {"type": "resync", "have": 4})
    assert (sent.messages[-1]["offset"], sent.messages[-1]["text"]) == (4, "👋 now")


@pytest.mark.parametrize("epoch", ["1", -1, None, True, 1.0])
def test_a_resync_with_a_malformed_epoch_is_ignored(epoch: Any) -> None:
    widget, sent = finished_with_a_reset()
    before = len(sent.events)
    from_front_end(widget, {"type": "resync", "have": 0, "epoch": epoch})
    assert len(sent.events) == before


# -- the front end's protocol code, fed what the kernel sent ---------------------------

# One page's model of the widget, driven line by line: each input line is an event
# (the initial state, a custom message, or a state update); each output line is the
# text the front end then holds and the messages it sent to the kernel.
DRIVER = """
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
const { Sync } = await import(pathToFileURL(process.env.IPY_STREAM_SYNC_JS).href);

const handlers = new Map();
const outbox = [];
let state = {};
const fire = (event, ...args) => {
  for (const handler of [...(handlers.get(event) ?? [])]) handler(...args);
};
const model = {
  get: (key) => state[key],
  on(event, handler) {
    if (!handlers.has(event)) handlers.set(event, new Set());
    handlers.get(event).add(handler);
  },
  off: (event, handler) => handlers.get(event)?.delete(handler),
  send: (content) => outbox.push(content),
};
let sync = null;
for await (const line of createInterface({ input: process.stdin })) {
  const [kind, content] = JSON.parse(line);
  if (kind === "init") {
    state = content;
    sync = new Sync(model);
    sync.attach(model);
  } else if (kind === "message") {
    fire("msg:custom", content);
  } else {
    // Like Backbone's set: every attribute first, then one event per changed one.
    const changed = Object.keys(content).filter((key) => state[key] !== content[key]);
    Object.assign(state, content);
    for (const key of changed) fire(`change:${key}`);
  }
  const reply = { text: sync.store.text, behind: sync.behind(), requests: outbox.splice(0) };
  process.stdout.write(JSON.stringify(reply) + "\\n");
}
"""


class FrontEnd:
    """js/src/sync.js in a node process, following one widget."""

    def __init__(self, widget: LiveMarkdown) -> None:
        node = shutil.which("node")
        assert node is not None
        self.process = subprocess.Popen(
            [node, "--input-type=module", "--eval", DRIVER],
            env={"IPY_STREAM_SYNC_JS": str(JS / "src" / "sync.js")},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        keys = ("status", "footer", "length", "seq", "epoch", "checkpoint", "_uid")
        state = {key: value for key, value in widget.get_state().items() if key in keys}
        self.shown = self.event("init", state)

    def event(self, kind: str, content: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps([kind, content]) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            assert self.process.stderr is not None
            raise AssertionError(f"the front end stopped: {self.process.stderr.read()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        self.process.wait()


@pytest.fixture
def front_end() -> Iterator[Callable[[LiveMarkdown], FrontEnd]]:
    started: list[FrontEnd] = []

    def start(widget: LiveMarkdown) -> FrontEnd:
        started.append(FrontEnd(widget))
        return started[-1]

    yield start
    for front in started:
        front.close()


def replay(
    front: FrontEnd,
    widget: LiveMarkdown,
    sent: Recorder,
    lost: Callable[[int, str, dict[str, Any]], bool],
) -> dict[str, Any]:
    """Deliver what the widget sent, in order, but the messages ``lost`` says; the front
    end's requests reach the widget, whose answers are delivered in turn."""
    shown = front.shown
    index = 0
    before = len(sent.events)
    while index < len(sent.events):
        # A front end that never converges keeps asking: each answer brings a request.
        assert index < before + 50, "the front end keeps asking the kernel for the text"
        kind, content = sent.events[index]
        if not (kind == "message" and lost(index, kind, content)):
            shown = front.event(kind, content)
            for message in shown["requests"]:
                from_front_end(widget, message)  # its answer joins sent.events
        index += 1
    return shown


def is_reset(_index: int, _kind: str, content: dict[str, Any]) -> bool:
    return bool(content.get("reset"))


node_only = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


@node_only
@pytest.mark.parametrize(
    "final",
    ["Bye", "X" * len(LONG), "Z" * len(LONG) + " and more", ""],
    ids=["shorter", "same-length", "longer", "empty"],
)
@pytest.mark.parametrize("limit", [16_384, 8], ids=["checkpoint", "past-checkpoint"])
def test_a_front_end_that_missed_the_reset_ends_with_the_final_text(
    front_end: Callable[[LiveMarkdown], FrontEnd], final: str, limit: int
) -> None:
    widget, sent = recorded(interval=HELD, checkpoint_limit=limit)
    front = front_end(widget)
    streamed(widget, LONG)
    widget.finish("done", text=final)
    shown = replay(front, widget, sent, lost=is_reset)
    assert shown["text"] == widget.text == final
    assert shown["behind"] is False


@node_only
def test_a_front_end_that_missed_appends_and_the_reset_ends_with_the_final_text(
    front_end: Callable[[LiveMarkdown], FrontEnd],
) -> None:
    widget, sent = recorded(interval=HELD, checkpoint_limit=4)
    front = front_end(widget)
    streamed(widget, LONG, pieces=8)
    widget.finish("done", text="Bye")
    appends = [i for i, (kind, _) in enumerate(sent.events) if kind == "message"]
    dropped = {appends[1], appends[2], appends[-1]}  # two appends and the reset
    shown = replay(front, widget, sent, lost=lambda index, *_: index in dropped)
    assert shown["text"] == widget.text == "Bye"


@node_only
def test_a_front_end_that_missed_nothing_sends_no_request(
    front_end: Callable[[LiveMarkdown], FrontEnd],
) -> None:
    widget, sent = recorded(interval=HELD, checkpoint_limit=4)
    front = front_end(widget)
    streamed(widget, LONG)
    widget.finish("done", text="Bye")
    shown = replay(front, widget, sent, lost=lambda *_: False)
    assert shown["text"] == "Bye"
    assert not any(content.get("resync") for content in sent.messages)
