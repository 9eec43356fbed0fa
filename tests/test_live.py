"""The live widget's kernel side: what it sends, how much, and in what order.

No kernel: ipywidgets gives widgets a dummy comm, and each test records what the
widget transmits by replacing its ``_send`` (the one exit of custom messages and
state updates alike), measuring each message as Jupyter would put it on the wire.
"""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ipywidgets.widgets.widget import _instances, _remove_buffers

from ipy_stream.bundle import FrontEnd, packed_bundle
from ipy_stream.live import CHECKPOINT_LIMIT, STATE_INTERVAL, LiveMarkdown, static_path
from ipy_stream.outcome import Outcome
from ipy_stream.view import WidgetView
from tests.support import wait_until

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


@dataclass
class Recorder:
    """Everything one widget sent: custom messages, state updates, and wire bytes."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    footers: list[str] = field(default_factory=list)  # as a front end would show them
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, msg: dict[str, Any], buffers: Any = None) -> None:
        wire = json.dumps(msg, ensure_ascii=False, allow_nan=False).encode("utf-8")
        with self.lock:
            self.bytes += len(wire)
            if msg["method"] == "custom":
                self.messages.append(msg["content"])
                if "footer" in msg["content"]:
                    self.footers.append(msg["content"]["footer"])
            else:
                self.updates.append(msg["state"])
                if "footer" in msg["state"]:
                    self.footers.append(msg["state"]["footer"])

    @property
    def appends(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "append" and not m.get("resync")]

    def text(self) -> str:
        """The text a front end that saw every message in order would hold."""
        text = ""
        for message in self.messages:
            offset = message["offset"]
            assert offset <= len(text), f"gap: offset {offset} after {len(text)} chars"
            if message.get("reset"):
                text = text[:offset]
            text += message["text"][len(text) - offset :]
        return text


def recorded(**kwargs: Any) -> tuple[LiveMarkdown, Recorder]:
    widget = LiveMarkdown(**kwargs)
    recorder = Recorder()
    widget._send = recorder  # type: ignore[method-assign]
    return widget, recorder


def resync(widget: LiveMarkdown, have: Any) -> None:
    """What the front end's {"type": "resync", "have": k} does when it reaches the kernel."""
    content = {"type": "resync", "have": have}
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def test_appends_are_coalesced_and_reproduce_the_text() -> None:
    widget, sent = recorded(interval=0.05)
    tokens = [f"{TRICKY[i % len(TRICKY)]}{i} " for i in range(3000)]
    started = time.perf_counter()
    for i, token in enumerate(tokens):
        widget.append(token)
        if i % 300 == 0:
            time.sleep(0.03)
    widget.finish("done", footer="end")
    elapsed = time.perf_counter() - started
    answer = "".join(tokens)
    assert "".join(m["text"] for m in sent.appends) == answer
    assert sent.text() == answer
    # One message per interval at most, plus the one of finish().
    assert 2 <= len(sent.appends) <= elapsed / 0.05 + 2


def test_offsets_and_seq_are_consistent() -> None:
    widget, sent = recorded(interval=0.01)
    for piece in TRICKY * 20:
        widget.append(piece)
        time.sleep(0.002)
    widget.finish("done")
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
    widget.append("soon")
    deadline = time.monotonic() + 5
    while not sent.appends and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [m["text"] for m in sent.appends] == ["soon"]
    assert widget.length == 4
    time.sleep(0.1)  # five intervals in which nothing is appended: the writer stays silent
    assert len(sent.appends) == 1  # nothing changed: no message
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
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )
    assert len(sent.messages) == before


def test_resync_while_streaming_keeps_offsets_in_order() -> None:
    widget, sent = recorded(interval=0.005)
    answer = "".join(f"word{i} " for i in range(2000))
    stop = threading.Event()

    def front_end() -> None:
        while not stop.is_set():
            resync(widget, 0)
            time.sleep(0.003)

    thread = threading.Thread(target=front_end)
    thread.start()
    for i in range(2000):
        widget.append(f"word{i} ")
        if i % 100 == 0:
            time.sleep(0.005)
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
    widget, sent = recorded(interval=0.01)
    tokens = [f"tok{i:05d}, " for i in range(40_000)]  # 400,000 characters
    for i, token in enumerate(tokens):
        widget.append(token)
        if i % 1000 == 0:
            time.sleep(0.01)  # let the writer flush some 40 times
    widget.finish("done", footer="done")
    answer_bytes = len("".join(tokens).encode())
    assert len(sent.appends) >= 10
    # Each character once, plus the bounded checkpoint and a little per flush:
    # re-sending the whole text per flush would be ~20x the answer here.
    assert sent.bytes < answer_bytes + 2 * CHECKPOINT_LIMIT + 400 * len(sent.appends)
    assert sent.bytes < 1.25 * answer_bytes


def test_checkpoint_follows_the_start_of_the_text_up_to_its_limit() -> None:
    widget, sent = recorded(interval=0.001)
    for i in range(4000):
        widget.append(f"{i:09d}\n")  # 40,000 characters
        if i % 50 == 0:
            time.sleep(0.002)
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


def test_an_unbounded_checkpoint_ends_with_the_whole_text() -> None:
    widget, sent = recorded(interval=0.001, checkpoint_limit=None)
    for i in range(4000):
        widget.append(f"{i:09d}\n")
        if i % 50 == 0:
            time.sleep(0.002)
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
    sent = Recorder()
    view.widget._send = sent  # type: ignore[method-assign]
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


def test_each_flush_is_one_message_and_the_state_follows_about_once_a_second() -> None:
    widget, sent = recorded(interval=0.02, progress=lambda n: f"{n} tokens")
    started = time.monotonic()
    # One token per flush: each append waits until the writer has sent it, so what
    # each message carries does not depend on how the threads are scheduled.
    for i in range(120):
        widget.append(f"t{i} ")
        deadline = time.monotonic() + 10
        while len(sent.appends) < i + 1 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert len(sent.appends) == i + 1, f"token {i} was never flushed"
    widget.finish("done", footer="all done")
    elapsed = time.monotonic() - started
    # the progress shown is never behind the text: each message brings its own
    assert [m.get("footer") for m in sent.appends] == [f"{i + 1} tokens" for i in range(120)]
    # state: the first flush, at most one per second after it, and the end
    assert 2 <= len(sent.updates) <= elapsed / STATE_INTERVAL + 2
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
