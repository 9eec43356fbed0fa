"""The live widget's kernel side: what it sends, how much, and in what order.

No kernel: ipywidgets gives widgets a dummy comm, and each test records what the
widget transmits by replacing its ``_send`` (the one exit of custom messages and
state updates alike) with a ``Recorder`` from tests/support.py, measuring each message
as Jupyter would put it on the wire. What a test counts comes from what it did: it
flushes itself, or waits until the writer has sent what it appended; never for a time.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ipywidgets.widgets.widget import _instances, _remove_buffers

from ipy_stream.bundle import FrontEnd, packed_bundle
from ipy_stream.live import CHECKPOINT_LIMIT, STATE_INTERVAL, LiveMarkdown, static_path
from ipy_stream.outcome import Outcome
from ipy_stream.view import WidgetView
from tests.support import Recorder, from_front_end, record_sends, recorded, wait_until

ROOT = Path(__file__).resolve().parent.parent
JS = ROOT / "js"

TRICKY = [
    "Hé",
    "llo 😀",
    " 👩‍💻 ",  # a ZWJ sequence: three code points, five UTF-16 units
    "e\u0301",  # a combining accent
    " 中文",
    "\r\n",
    "\U0001d11e clef",  # outside the BMP: a surrogate pair in JS
    "`code` ",
    "<b>x</b>",
    "",
    "end.",
]


HELD = 3600
"""A writer interval longer than any test may run (pytest's timeout is 300 s): the writer
flushes once, when it starts, and never again; the test flushes when it wants a message."""


def first_flush(widget: LiveMarkdown, sent: Recorder, token: str) -> None:
    """Append ``token`` and wait until the writer, which it starts, has sent it."""
    widget.append(token)
    wait_until(lambda: len(sent.appends) == 1)


def sent_up_to(sent: Recorder, length: int) -> Callable[[], bool]:
    """Whether the appends sent so far carry ``length`` characters."""
    return lambda: sum(len(m["text"]) for m in sent.appends) == length


def grown_past(counter: list[int], seen: int) -> Callable[[], bool]:
    """Whether ``counter[0]`` has grown past ``seen``."""
    return lambda: counter[0] > seen


def sent_by_flushes(done: list[bool], count: int) -> Callable[[], bool]:
    """Whether ``count`` of the flushes in ``done`` (see :func:`flushes_of`) sent something."""
    return lambda: done.count(True) == count


def flushes_of(widget: LiveMarkdown) -> list[bool]:
    """What each of ``widget``'s flushes from now on returned, once it returned (its
    messages and state update sent): False when there was nothing to send."""
    done: list[bool] = []
    flush = widget.flush

    def counted() -> bool:
        done.append(flush())
        return done[-1]

    widget.flush = counted  # type: ignore[method-assign]
    return done


def resync(widget: LiveMarkdown, have: Any) -> None:
    """What the front end's {"type": "resync", "have": k} does when it reaches the kernel."""
    from_front_end(widget, {"type": "resync", "have": have})


def test_appends_are_coalesced_and_reproduce_the_text() -> None:
    widget, sent = recorded(interval=HELD)
    tokens = [f"{TRICKY[i % len(TRICKY)]}{i} " for i in range(3000)]
    first_flush(widget, sent, tokens[0])
    flushes = 1
    for i, token in enumerate(tokens[1:], start=1):
        widget.append(token)
        if i % 300 == 0:
            assert widget.flush()
            flushes += 1
    widget.finish("done", footer="end")
    answer = "".join(tokens)
    assert "".join(m["text"] for m in sent.appends) == answer
    assert sent.text() == answer
    # One message per flush, whatever was appended since the last one (the writer did not
    # flush again within its interval), plus the one of finish() with the rest.
    assert flushes == 10
    assert len(sent.appends) == flushes + 1


def test_offsets_and_seq_are_consistent() -> None:
    widget, sent = recorded(interval=0.01)
    appended = 0
    for i, piece in enumerate(TRICKY * 20):
        widget.append(piece)
        appended += len(piece)
        if i % 10 == 9:  # the writer sends what came, in a message of its own
            wait_until(sent_up_to(sent, appended))
    widget.finish("done")
    assert len(sent.appends) >= 22
    position = 0
    for number, message in enumerate(sent.appends, start=1):
        assert message["seq"] == number
        assert message["offset"] == position  # code points, like str indices
        position += len(message["text"])
    assert position == len("".join(TRICKY * 20))
    # The last update that carried them (a final one may carry only status and footer).
    assert [u["length"] for u in sent.updates if "length" in u][-1] == position
    assert [u["seq"] for u in sent.updates if "seq" in u][-1] == len(sent.appends)
    assert widget.text == "".join(TRICKY * 20)


def test_finish_always_flushes_the_end_and_sets_status_and_footer() -> None:
    widget, sent = recorded(interval=60)  # the writer never gets to flush
    widget.append("Hello ")
    widget.append("world 😀")
    widget.finish("done", footer="model · done · 2 tokens")
    assert sent.text() == "Hello world 😀"
    assert widget.status == "done"
    assert widget.footer == "model · done · 2 tokens"
    assert widget.length == len("Hello world 😀")
    last = sent.updates[-1]
    assert last["status"] == "done"
    assert last["footer"] == "model · done · 2 tokens"


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_finish_with_other_statuses(status: str) -> None:
    widget, sent = recorded(interval=60)
    widget.append("partial")
    widget.finish(status, footer=f"m · {status}")
    assert sent.text() == "partial"
    assert (widget.status, widget.footer) == (status, f"m · {status}")


def test_finish_without_any_text() -> None:
    widget, sent = recorded()
    widget.finish("failed", footer="m · failed: boom")
    assert sent.appends == []
    assert widget.status == "failed"
    assert widget.length == 0


def test_finish_with_text_appends_what_is_missing_or_replaces() -> None:
    widget, sent = recorded(interval=60)
    widget.append("Hello")
    widget.finish("done", text="Hello world")
    assert sent.text() == "Hello world"
    assert [m["text"] for m in sent.appends] == ["Hello", " world"]

    other, sent2 = recorded(interval=60)
    other.append("draft")
    other.finish("done", text="final")
    assert sent2.appends[-1]["reset"] is True
    assert sent2.text() == "final"
    assert other.checkpoint == "final"  # never a stale prefix after a reset


def test_append_after_finish_is_an_error() -> None:
    widget, _ = recorded()
    widget.finish("done")
    with pytest.raises(RuntimeError):
        widget.append("late")


def test_the_writer_flushes_without_finish() -> None:
    widget, sent = recorded(interval=0.02)
    flushed = flushes_of(widget)
    widget.append("soon")
    wait_until(lambda: bool(flushed))  # the writer's first flush, state included, is done
    assert [m["text"] for m in sent.appends] == ["soon"]
    assert widget.length == 4
    # Five more wake-ups of the writer in which nothing was appended: it stays silent.
    wait_until(lambda: len(flushed) >= 6)
    assert flushed[:6] == [True, False, False, False, False, False]
    assert len(sent.appends) == 1  # nothing changed: no message
    assert len(sent.messages) == 1
    widget.close()


@pytest.mark.parametrize("have", [0, 1, 5, 9, 16])
def test_resync_returns_exactly_the_missing_tail(have: int) -> None:
    widget, sent = recorded(interval=60)
    answer = "Hé😀llo 👩‍💻 wörld"
    for char in answer:
        widget.append(char)
    widget.finish("done")
    resync(widget, have)
    reply = sent.messages[-1]
    assert reply["type"] == "append"
    assert reply["resync"] is True
    assert reply["offset"] == have
    assert reply["text"] == answer[have:]


def test_resync_beyond_the_text_returns_all_of_it() -> None:
    widget, sent = recorded(interval=60)
    widget.append("short")
    widget.finish("done")
    resync(widget, 99)
    assert (sent.messages[-1]["offset"], sent.messages[-1]["text"]) == (0, "short")


@pytest.mark.parametrize(
    "content",
    [
        {"type": "resync"},
        {"type": "resync", "have": -1},
        {"type": "resync", "have": "3"},
        {"type": "other"},
        "junk",
    ],
)
def test_malformed_front_end_messages_are_ignored(content: Any) -> None:
    widget, sent = recorded(interval=60)
    widget.append("text")
    widget.finish("done")
    before = len(sent.messages)
    from_front_end(widget, content)
    assert len(sent.messages) == before


def test_resync_while_streaming_keeps_offsets_in_order() -> None:
    widget, sent = recorded(interval=0.005)
    answer = "".join(f"word{i} " for i in range(2000))
    stop = threading.Event()
    resyncs = [0]

    def front_end() -> None:
        while not stop.is_set():
            resync(widget, 0)
            resyncs[0] += 1
            stop.wait(0.001)  # a moment for the writer between two requests

    thread = threading.Thread(target=front_end)
    thread.start()
    appended = 0
    for i in range(2000):
        widget.append(f"word{i} ")
        appended += len(f"word{i} ")
        if i % 100 == 99:
            # The writer has sent this batch, and the front end asked again since the last.
            wait_until(sent_up_to(sent, appended))
            wait_until(grown_past(resyncs, resyncs[0]))
    widget.finish("done")
    stop.set()
    thread.join()
    assert sent.text() == answer  # no message ever left out of order
    assert "".join(m["text"] for m in sent.appends) == answer


def test_two_widgets_never_mix_texts() -> None:
    first, sent1 = recorded(interval=0.005)
    second, sent2 = recorded(interval=0.005)

    def feed(widget: LiveMarkdown, word: str) -> None:
        for i in range(3000):
            widget.append(f"{word}{i} ")
        widget.finish("done")

    threads = [
        threading.Thread(target=feed, args=(first, "alpha")),
        threading.Thread(target=feed, args=(second, "béta😀")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sent1.text() == "".join(f"alpha{i} " for i in range(3000))
    assert sent2.text() == "".join(f"béta😀{i} " for i in range(3000))
    assert first._uid != second._uid


def test_bytes_sent_grow_linearly_with_the_answer() -> None:
    widget, sent = recorded(interval=HELD)
    tokens = [f"tok{i:05d}, " for i in range(40_000)]  # 400,000 characters
    first_flush(widget, sent, tokens[0])
    for i, token in enumerate(tokens[1:], start=1):
        widget.append(token)
        if i % 1000 == 999:
            assert widget.flush()
    widget.finish("done", footer="done")
    answer_bytes = len("".join(tokens).encode())
    # The writer's first flush, one per thousand tokens after it, and nothing left at the end.
    assert len(sent.appends) == 1 + 40
    # Each character once, plus the bounded checkpoint and a little per flush:
    # re-sending the whole text per flush would be ~20x the answer here.
    assert sent.bytes < answer_bytes + 2 * CHECKPOINT_LIMIT + 400 * len(sent.appends)
    assert sent.bytes < 1.25 * answer_bytes


def test_checkpoint_follows_the_start_of_the_text_up_to_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The state (and the checkpoint in it) is synced at every flush, not once a second: each
    # flush is a chance for the checkpoint to move, however fast the test runs.
    monkeypatch.setattr("ipy_stream.live.STATE_INTERVAL", 0)
    widget, sent = recorded(interval=HELD)
    for i in range(4000):
        widget.append(f"{i:09d}\n")  # 40,000 characters
        if i % 50 == 49:
            widget.flush()
    widget.finish("done")
    checkpoints = [u["checkpoint"] for u in sent.updates if "checkpoint" in u]
    text = widget.text
    assert checkpoints
    for checkpoint in checkpoints:
        assert text.startswith(checkpoint)
        assert len(checkpoint) <= CHECKPOINT_LIMIT
    sizes = [len(c) for c in checkpoints]
    assert all(b >= 2 * a for a, b in itertools.pairwise(sizes))
    assert sum(sizes) <= 2 * CHECKPOINT_LIMIT


def test_an_unbounded_checkpoint_ends_with_the_whole_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ipy_stream.live.STATE_INTERVAL", 0)  # a sync at every flush
    widget, sent = recorded(interval=HELD, checkpoint_limit=None)
    for i in range(4000):
        widget.append(f"{i:09d}\n")
        if i % 50 == 49:
            widget.flush()
    widget.finish("done")
    assert widget.checkpoint == widget.text
    assert len(widget.text) > 2 * CHECKPOINT_LIMIT
    # Still linear: the text once in appends, under twice in the doublings, once at the end.
    wire = len(json.dumps(widget.text, ensure_ascii=False).encode())
    assert sent.bytes < 4 * wire + 400 * len(sent.appends)


def test_short_answers_end_with_a_full_checkpoint() -> None:
    widget, _ = recorded(interval=60)
    widget.append("short answer")
    widget.finish("done")
    assert widget.checkpoint == "short answer"


def test_lone_surrogates_cannot_break_the_channel() -> None:
    widget, sent = recorded(interval=60)
    widget.append("a\ud800b")
    widget.finish("done", text="a\ud800b")
    assert sent.text() == "a\ufffdb"  # the recorder json-encoded it to UTF-8 fine
    assert widget.length == 3


def test_widget_view_keeps_its_public_shape() -> None:
    view = WidgetView("demo", interval=0.01)
    sent = record_sends(view.widget)
    assert view.widget.footer == "demo · waiting for the first token…"
    for token in ["Hello", " ", "**world**"]:
        view.append(token)
    streaming = "demo · streaming… · 3 tokens"
    wait_until(lambda: bool(sent.footers) and sent.footers[-1].startswith(streaming))
    assert sent.footers[-1].startswith(streaming)
    outcome = Outcome(text="Hello **world**", status="done", tokens=3, seconds=0.5)
    view.finish(outcome)
    assert sent.text() == "Hello **world**"
    assert view.widget.status == "done"
    assert view.widget.footer == "demo · done · 3 tokens · 0.5 s"
    assert sent.footers[-1] == view.widget.footer
    bundle = view.widget._repr_mimebundle_()
    assert isinstance(bundle, dict)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.widget.model_id
    view.close()


def test_the_front_end_is_sent_compressed_once_per_kernel_not_with_every_view() -> None:
    first, second = LiveMarkdown(), LiveMarkdown()
    code = static_path("live.js").read_bytes()
    assert first._esm == static_path("loader.js").read_text(encoding="utf-8")
    assert first._css == static_path("live.css").read_text(encoding="utf-8")
    assert b"ipy-stream-body" in code
    assert static_path("live.js").parent == ROOT / "ipy_stream" / "static"
    # A view's state is small and has no buffer: only the id of the module it needs.
    for view in (first, second):
        state, paths, _ = _remove_buffers(view.get_state())
        assert paths == []
        assert len(json.dumps(state)) < 9_000
    assert first._bundle_id == second._bundle_id == packed_bundle()[1]

    # One FrontEnd widget carries it, as one binary buffer under half its size.
    def carriers() -> list[FrontEnd]:
        return [w for w in list(_instances.values()) if isinstance(w, FrontEnd)]

    assert len(carriers()) == 1
    (front_end,) = carriers()
    assert front_end._bundle_id == first._bundle_id
    assert gzip.decompress(front_end._bundle) == code
    state, paths, buffers = _remove_buffers(front_end.get_state())
    assert paths == [["_bundle"]]
    assert sum(len(b) for b in buffers) < len(code) / 2
    # Closed (Widget.close_all() closes every widget): the next view brings a new one.
    front_end.close()
    third = LiveMarkdown()
    assert len(carriers()) == 1 and carriers()[0] is not front_end
    for view in (first, second, third):
        view.close()


class Clock:
    """The widget's ``time`` module: ``monotonic()`` is what the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_each_flush_is_one_message_and_the_state_follows_about_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The widget reads the time from a clock the test moves: a quarter of a second per
    # token, so the 120 tokens stream for 30 s of its time, however fast the test runs.
    clock = Clock()
    monkeypatch.setattr("ipy_stream.live.time", clock)
    widget, sent = recorded(interval=0.02, progress=lambda n: f"{n} tokens")
    flushed = flushes_of(widget)
    # One token per flush: each append waits until the writer has sent it (and synced the
    # state if it did), so what each message carries does not depend on how the threads
    # are scheduled.
    for i in range(120):
        clock.now += 0.25
        widget.append(f"t{i} ")
        wait_until(sent_by_flushes(flushed, i + 1))
        assert len(sent.appends) == i + 1
    widget.finish("done", footer="all done")
    streamed = 120 * 0.25
    # the progress shown is never behind the text: each message brings its own
    assert [m.get("footer") for m in sent.appends] == [f"{i + 1} tokens" for i in range(120)]
    # state: the first flush, then once per second of streaming, and the end
    assert streamed / STATE_INTERVAL <= len(sent.updates) <= streamed / STATE_INTERVAL + 2
    assert sent.footers[-1] == "all done"
    assert sent.updates[-1]["length"] == len(widget.text)


# -- the committed bundle and the JS sources ----------------------------------------


def _stamp() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ipy_stream_js_stamp", JS / "stamp.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_bundle_is_built_from_the_current_sources() -> None:
    stale = _stamp().stale_bundles()
    assert stale == [], (
        f"ipy_stream/static/{', '.join(stale)} not built from the current js/ sources: "
        "run `npm ci && npm run build` in js/ (or `pip install -e .`) and commit the result"
    )


def test_lockfile_names_no_other_registry() -> None:
    lock = json.loads((JS / "package-lock.json").read_text(encoding="utf-8"))
    for name, package in lock["packages"].items():
        resolved = package.get("resolved")
        assert resolved is None or resolved.startswith("https://registry.npmjs.org/"), name


def _node_ready() -> bool:
    return shutil.which("node") is not None and (JS / "node_modules" / "esbuild").is_dir()


@pytest.mark.skipif(not _node_ready(), reason="needs node and js/node_modules (npm ci in js/)")
def test_bundle_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    env = {
        "IPY_STREAM_JS_OUTDIR": str(tmp_path),
        "PATH": str(Path(shutil.which("node") or "").parent),
    }
    subprocess.run(["node", "build.mjs"], cwd=JS, env=env, check=True, capture_output=True)
    for name in ("live.js", "loader.js", "live.css", "THIRD_PARTY_LICENSES.txt"):
        assert (tmp_path / name).read_bytes() == static_path(name).read_bytes(), name


@pytest.mark.skipif(not _node_ready(), reason="needs node and js/node_modules (npm ci in js/)")
def test_js_unit_tests() -> None:
    result = subprocess.run(
        ["node", "--test", "test/"], cwd=JS, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
