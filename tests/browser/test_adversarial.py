"""Hostile answers, streamed through ``%%stream``, in the renderers people use.

Every answer here is attacker-controlled text (``tests/attacks.py``): raw HTML, parser
differentials, math, fence info strings, obfuscated links, and generated mixes of all
of them. Each address in them points at a canary served on 127.0.0.1, and each script
attempt opens a dialog or sets ``window.__pwned``. For every renderer the suite checks
what an attacker would need, not a list of strings:

* no dialog, ``window.__pwned`` never set, and no request ever reaches the canary;
* inside an answer, no element or attribute outside ``ipy_stream/policy.json`` (MathJax's
  own output aside, which must still carry no handler and no unsafe address).

Renderers: JupyterLab while streaming (the live view, one character per token) and
after the swap to the saved output; the same notebook saved, its kernel shut down and
re-opened (JupyterLab trusts a notebook it saved, so nothing is sanitized for it);
``jupyter nbconvert --to html`` opened in Chromium; and the live view's front end alone,
fed every prefix of every answer one character at a time, and a Hypothesis fuzzer that
renders generated answers both ways (saved and live) in Chromium.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from ipy_stream.render import POLICY, render_markdown
from ipy_stream.saved import SavedAnswer, final_bundle
from tests.attacks import KNOWN, hostile_markdown, random_hostile, with_canary

from .lab import PROJECT_ROOT, Lab, NotebookPage

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

    from tests.openai_server import StreamServer

pytestmark = pytest.mark.browser

STATIC = PROJECT_ROOT / "ipy_stream" / "static"
GENERATED = 16
"""Generated answers streamed through JupyterLab, besides the known ones."""


# --- the canary ----------------------------------------------------------------------------


class Canary:
    """An HTTP server on 127.0.0.1: serves the files of ``folder`` and records every
    request under ``/canary/``, which no answer may ever cause."""

    def __init__(self, folder: Path) -> None:
        hits: list[str] = []
        self.hits = hits
        self.folder = folder

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self) -> None:
                if self.path.startswith("/canary"):
                    hits.append(self.path)
                    self.send_response(204)
                    self.end_headers()
                    return
                super().do_GET()

            def do_POST(self) -> None:
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def canary(self) -> str:
        return f"{self.url}/canary"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Canary]:
    for name in ("live.js", "live.css"):
        shutil.copy(STATIC / name, tmp_path / name)
    (tmp_path / "harness.html").write_text(HARNESS_PAGE, encoding="utf-8")
    server = Canary(tmp_path)
    try:
        yield server
    finally:
        server.close()


def watch_requests(page: Page, canary: Canary) -> list[str]:
    """Every request the page makes to the canary, or to any address off this machine."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        url = request.url
        if "/canary" in url or "canary.invalid" in url:
            seen.append(url)

    page.on("request", on_request)
    return seen


# --- the policy, checked in the DOM --------------------------------------------------------

CHECK_POLICY = r"""
({selector, policy}) => {
  const problems = [];
  const tags = new Set(policy.tags);
  const schemes = new Set(policy.url_schemes.map((s) => s + ':'));
  const urlAttributes = ['href', 'src', 'srcset', 'xlink:href', 'action', 'formaction',
    'data', 'srcdoc', 'background', 'poster', 'ping', 'cite'];
  const say = (el, why) => problems.push(why + ': ' + el.outerHTML.slice(0, 160));
  for (const root of document.querySelectorAll(selector)) {
    for (const el of root.querySelectorAll('*')) {
      const tag = el.tagName.toLowerCase();
      const inMath = el.closest('mjx-container') !== null;
      const inAnswer = el.closest('.ipy-stream-body') !== null;
      for (const attribute of Array.from(el.attributes)) {
        const name = attribute.name.toLowerCase();
        const value = attribute.value;
        if (name.startsWith('on')) { say(el, 'handler ' + name); }
        if (urlAttributes.includes(name)) {
          let url = null;
          try { url = new URL(value, document.baseURI); } catch (e) { say(el, 'bad url'); }
          if (name !== 'href') { say(el, 'loads ' + name); }
          else if (url && !schemes.has(url.protocol)) { say(el, 'href ' + url.protocol); }
        }
        if (!inAnswer || inMath) { continue; }
        const allowed = (policy.attributes[tag] || []).concat(['class', 'rel', 'target']);
        if (!allowed.includes(name)) { say(el, 'attribute ' + name); }
        if (name === 'style' && !/^text-align:\s*(left|right|center);?$/.test(value.trim())) {
          say(el, 'style');
        }
      }
      if (inAnswer && !inMath && !tags.has(tag) && !tag.startsWith('mjx-')) {
        say(el, 'element ' + tag);
      }
      if (['script', 'iframe', 'frame', 'object', 'embed', 'img', 'image', 'video', 'audio',
           'source', 'link', 'meta', 'base', 'form', 'style', 'foreignobject'].includes(tag)
          && !(inMath && tag === 'style')) {
        say(el, 'element ' + tag);
      }
    }
  }
  return problems;
}
"""


WATCH_POLICY = """([source, selector, policy]) => {
  const check = eval(source);
  const found = new Set();
  const run = () => { for (const problem of check({selector, policy})) found.add(problem); };
  const observer = new MutationObserver(run);
  observer.observe(document.body,
    {subtree: true, childList: true, attributes: true, characterData: true});
  run();
  window.__policyWatchStop = () => { observer.disconnect(); run(); return Array.from(found); };
}"""


def watch_policy(page: Page, selector: str) -> None:
    """From now on, check the policy at every DOM change (see :func:`policy_seen`)."""
    page.evaluate(WATCH_POLICY, [CHECK_POLICY, selector, POLICY])


def policy_seen(page: Page) -> list[str]:
    """Everything outside the policy seen since :func:`watch_policy`, in any frame."""
    return [str(item) for item in page.evaluate("() => window.__policyWatchStop()")]


def violations(page: Page, selector: str) -> list[str]:
    """What in the elements matching ``selector`` lies outside the policy, right now."""
    found = page.evaluate(CHECK_POLICY, {"selector": selector, "policy": POLICY})
    return [str(item) for item in found]


def pwned(page: Page) -> Any:
    return page.evaluate("() => window.__pwned")


# --- JupyterLab: live, saved, re-opened; then nbconvert -------------------------------------

CHAR_MODEL = '''\
import json, time
from pathlib import Path
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

class OneCharAtATime(GenericFakeChatModel):
    """Streams its answer one character per token, a little paced."""

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        text = next(self.messages).content
        for index, char in enumerate(text):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=char))
            if run_manager is not None:
                run_manager.on_llm_new_token(char, chunk=chunk)
            yield chunk
            if index % 16 == 0:
                time.sleep(0.003)

ANSWERS = json.loads(Path("answers.json").read_text(encoding="utf-8"))
for number, answer in enumerate(ANSWERS):
    globals()[f"hostile_{number}"] = OneCharAtATime(messages=iter([AIMessage(content=answer)]))
'''
OUTPUTS = ".jp-Notebook .jp-OutputArea-output"


def corpus(canary: str) -> list[str]:
    rng = random.Random(20261202)
    answers = [text for _, text in KNOWN] + [random_hostile(rng) for _ in range(GENERATED)]
    return [with_canary(text, canary) for text in answers]


def assert_nothing_ran(
    nb: NotebookPage, dialogs: list[str], requests: list[str], canary: Canary
) -> None:
    assert dialogs == []
    assert pwned(nb.page) is None
    assert requests == []
    assert canary.hits == []


def test_hostile_answers_never_run_in_jupyterlab_live_saved_reopened_or_exported(
    lab: Lab, server: StreamServer, canary: Canary, dialogs: list[str]
) -> None:
    answers = corpus(canary.canary)
    folder = lab.server.root_dir / lab.path("")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "answers.json").write_text(json.dumps(answers), encoding="utf-8")
    # The known raw-HTML and math answers also come over real HTTP, through ChatOpenAI.
    server.configure(text=answers[0] + "\n\n" + dict(KNOWN)["math"], rate=0)
    cells = ["%load_ext ipy_stream\n" + CHAR_MODEL]
    cells += [f"%%stream -m hostile_{i} -o answer_{i}\nGo" for i in range(len(answers))]
    cells += ["%%stream -m gpt-4o-mini -o over_http\nGo"]
    path = lab.write_notebook("hostile", cells)
    requests = watch_requests(lab.page, canary)

    nb = lab.open(path)
    watch_policy(nb.page, OUTPUTS)  # every frame, live too
    nb.run_all(timeout=300)
    for index in range(1, len(cells)):
        nb.wait_final_output(index, timeout=60)
    # MathJax typesets the answers' math (so it did look at them), in its own time
    nb.page.locator(f"{OUTPUTS} mjx-container").first.wait_for(timeout=30_000)
    assert policy_seen(nb.page) == []
    assert violations(nb.page, OUTPUTS) == []
    assert_nothing_ran(nb, dialogs, requests, canary)
    # the canary is live: the check above could have seen a request
    nb.page.evaluate("(url) => fetch(url + '/probe', {mode: 'no-cors'})", canary.canary)
    canary_probe = list(canary.hits)
    canary.hits.clear()
    requests.clear()
    assert canary_probe == ["/canary/probe"]

    # saved, kernel shut down, re-opened: JupyterLab trusts the notebook it saved
    nb.save()
    nb.shutdown_kernel()
    nb.reopen()
    for index in range(1, len(cells)):
        nb.wait_final_output(index, timeout=60)
    # trusted: JupyterLab inserts these outputs' HTML as it is, without its own sanitizer
    trusted = nb.page.evaluate(
        """(path) => {
          const cells = window.__ipyTest.panelFor(path).content.model.cells;
          return Array.from({length: cells.length}, (_, i) => cells.get(i).trusted);
        }""",
        nb.path,
    )
    assert trusted == [True] * len(cells), trusted
    assert nb.page.locator(f"{OUTPUTS} .ipy-stream-saved").count() == len(cells) - 1
    nb.page.locator(f"{OUTPUTS} mjx-container").first.wait_for(timeout=30_000)
    assert violations(nb.page, OUTPUTS) == []
    assert_nothing_ran(nb, dialogs, requests, canary)
    nb.screenshot("adversarial-reopened")

    # exported with nbconvert (its own MathJax is on a CDN this machine cannot reach)
    exported = canary.folder / "hostile.html"
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output",
         str(exported), str(lab.server.root_dir / path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    page = nb.page.context.new_page()
    page_requests = watch_requests(page, canary)
    page.route("**/*", lambda route: route.abort() if "127.0.0.1" not in route.request.url
               else route.continue_())  # fmt: skip
    page.goto(f"{canary.url}/hostile.html", wait_until="load")
    outputs = ".jp-OutputArea-output"
    assert page.locator(f"{outputs} .ipy-stream-saved").count() == len(cells) - 1
    assert violations(page, outputs) == []
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == [] and page_requests == [] and canary.hits == []
    # code blocks look like code there too
    font = page.locator(f"{outputs} .ipy-stream-body pre code").first.evaluate(
        "(el) => getComputedStyle(el).fontFamily"
    )
    assert "mono" in font.lower() or "consolas" in font.lower(), font
    page.close()


# --- the live view alone: every prefix, one character at a time ----------------------------

HARNESS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="stylesheet" href="live.css"></head>
<body><div id="saved" class="jp-RenderedHTMLCommon"></div><div id="live"></div>
<script type="module">
import view from "./live.js";

const frames = (n) => new Promise((resolve) => {
  const next = (left) => (left ? requestAnimationFrame(() => next(left - 1)) : resolve());
  next(n);
});

// What anywidget hands a front end: traits, their change events, custom messages.
function fakeModel(uid) {
  const state = {status: "streaming", footer: "", length: 0, seq: 0, checkpoint: "", _uid: uid};
  const handlers = new Map();
  const fire = (event, ...args) => {
    for (const fn of handlers.get(event) ?? []) fn(...args);
  };
  return {
    get: (key) => state[key],
    on(event, fn) {
      if (!handlers.has(event)) handlers.set(event, new Set());
      handlers.get(event).add(fn);
    },
    off: (event, fn) => handlers.get(event)?.delete(fn),
    send: () => {},
    set(key, value) { state[key] = value; fire("change:" + key); },
    message: (msg) => fire("msg:custom", msg),
  };
}

let made = 0;
window.harness = {
  // One live view per answer; feed them `size` characters per frame; after each frame
  // run `check` (the policy check) and keep what it finds.
  async stream(texts, size) {
    const live = document.getElementById("live");
    live.replaceChildren();
    const views = texts.map(() => {
      const model = fakeModel("m" + made++);
      view.initialize({model});
      const el = document.createElement("div");
      live.append(el);
      view.render({model, el});
      return {model, seq: 0};
    });
    const chars = texts.map((text) => Array.from(text));
    const longest = Math.max(0, ...chars.map((c) => c.length));
    const found = new Set();
    for (let at = 0; at < longest; at += size) {
      chars.forEach((c, i) => {
        if (at >= c.length) return;
        const v = views[i];
        v.seq += 1;
        const piece = c.slice(at, at + size).join("");
        v.model.message({type: "append", seq: v.seq, offset: at, text: piece});
        v.model.set("length", Math.min(c.length, at + size));
      });
      await frames(2);
      for (const problem of window.check("#live")) found.add(problem);
    }
    views.forEach((v) => v.model.set("status", "done"));
    await frames(2);
    for (const problem of window.check("#live")) found.add(problem);
    return Array.from(found);
  },
  // The text each live view shows, as a reader would read it.
  liveTexts() {
    return Array.from(document.querySelectorAll("#live .ipy-stream-body"), (el) => el.textContent);
  },
  showSaved(html) {
    document.getElementById("saved").innerHTML = html;
    return window.check("#saved");
  },
};
window.harnessReady = true;
</script></body></html>
"""


@pytest.fixture
def harness(browser: Browser, canary: Canary) -> Iterator[tuple[Page, list[str], list[str]]]:
    """The live view's built front end alone in a page: (page, dialogs, requests)."""
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    requests = watch_requests(page, canary)
    page.goto(f"{canary.url}/harness.html")
    page.wait_for_function("() => window.harnessReady === true")
    page.evaluate(
        "([source, policy]) => { const check = eval(source); "
        "window.check = (selector) => check({selector, policy}); }",
        [CHECK_POLICY, POLICY],
    )
    try:
        yield page, dialogs, requests
    finally:
        context.close()


def test_live_view_stays_within_the_policy_at_every_character(
    harness: tuple[Page, list[str], list[str]], canary: Canary
) -> None:
    page, dialogs, requests = harness
    answers = corpus(canary.canary)
    found = page.evaluate("([texts]) => window.harness.stream(texts, 1)", [answers])
    assert found == []
    assert dialogs == [] and requests == [] and canary.hits == []
    assert page.evaluate("() => window.__pwned") is None
    # every answer was shown whole, as text
    shown = page.evaluate("() => window.harness.liveTexts()")
    assert len(shown) == len(answers)
    assert "<img src=" in shown[0]
    # the check sees what it exists to catch
    planted = page.evaluate(
        """() => {
          const body = document.querySelector('#live .ipy-stream-body');
          body.insertAdjacentHTML('beforeend',
            '<b title="x">b</b><a href="javascript:void 0">a</a><p style="color:red">p</p>');
          return window.check('#live');
        }"""
    )
    assert [problem.split(":")[0] for problem in planted] == [
        "attribute title", "element b", "href javascript", "attribute style", "style",
    ], planted  # fmt: skip


def saved_html(text: str) -> str:
    answer = SavedAnswer(
        text=text, html=render_markdown(text), footer="m · done", status="done", label="m"
    )
    return final_bundle([answer])["text/html"]


def squashed(text: str) -> str:
    return " ".join(text.split())


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(answer=hostile_markdown())
def test_generated_answers_render_safely_and_alike_live_and_saved(
    harness: tuple[Page, list[str], list[str]], canary: Canary, answer: str
) -> None:
    page, dialogs, requests = harness
    text = with_canary(answer, canary.canary)
    assert page.evaluate("(html) => window.harness.showSaved(html)", saved_html(text)) == []
    assert page.evaluate("([texts]) => window.harness.stream(texts, 4096)", [[text]]) == []
    assert dialogs == [] and requests == [] and canary.hits == []
    # the same dialect live and saved: a reader sees the same text
    (live,) = page.evaluate("() => window.harness.liveTexts()")
    saved = page.evaluate("() => document.querySelector('#saved .ipy-stream-body').textContent")
    assert squashed(live) == squashed(saved), (text, live, saved)
