"""Real-browser test of tool calls in the live view: each shows as it grows.

A notebook model streams a sentence, then a tool call in pieces (its name, then its
arguments bit by bit), each piece held until the test lets it go. In JupyterLab the
live view lists the call under the answer as ``name(arguments so far)`` at every step,
as text (arguments holding markup never become HTML), and the saved output that
replaces it at the end keeps the whole call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .lab import SEL_STREAM, Lab
from .support import final_answer, window_pwned

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.browser

ARGS = ['{"html": ', '"<img src=x onerror=\\"window.__pwned=1\\">", ', '"city": "Paris"}']

MODEL = """\
import time
from pathlib import Path
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk

GATES = Path({gates!r})
ARGS = {args!r}

def piece(**fields):
    return AIMessageChunk(content="", tool_call_chunks=[tool_call_chunk(index=0, **fields)])

class Gated(BaseChatModel):
    @property
    def _llm_type(self):
        return "gated"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        raise NotImplementedError

    def _stream(self, messages, stop=None, run_manager=None, **kwargs):
        pieces = [AIMessageChunk(content="Let me look that up."),
                  piece(id="call_1", name="get_weather", args="")]
        pieces += [piece(args=a) for a in ARGS]
        for i, message in enumerate(pieces):
            while not (GATES / str(i)).exists():  # the test lets each piece go
                time.sleep(0.02)
            chunk = ChatGenerationChunk(message=message)
            if run_manager is not None:
                run_manager.on_llm_new_token(message.content, chunk=chunk)
            yield chunk

gated = Gated()
"""

SHOWN = """(root) => {
  const tools = root.querySelector('.ipy-stream-tools');
  if (!tools || tools.hidden) return null;
  return Array.from(tools.querySelectorAll('li code'), (el) => el.textContent);
}"""


def test_a_streamed_tool_call_shows_as_it_grows_and_stays_in_the_saved_output(
    lab: Lab, tmp_path: Path
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    cells = [
        "%load_ext ipy_stream",
        MODEL.format(gates=str(gates), args=ARGS),
        "%%stream --bg -m gated -o answer\nWeather?",
        "print(repr(answer))",
    ]
    nb = lab.open(lab.write_notebook("tools", cells))
    nb.run_cell(0)
    nb.run_cell(1)
    nb.run_cell(2, timeout=10)
    root = nb.output(2, SEL_STREAM).first
    root.wait_for(timeout=30_000)
    handle = root.element_handle()

    (gates / "0").touch()
    nb.output(2, ".ipy-stream-body").filter(has_text="Let me look that up.").wait_for()
    assert root.evaluate(SHOWN) is None  # no call yet: nothing shown
    expected = ""
    for step in range(len(ARGS)):  # the name, then each piece of the arguments but the last
        (gates / str(step + 1)).touch()
        if step:
            expected += ARGS[step - 1]
        nb.page.wait_for_function(
            f"([root, want]) => JSON.stringify(({SHOWN})(root)) === JSON.stringify(want)",
            arg=[handle, [f"get_weather({expected})"]],
            timeout=20_000,
        )
        if step == 2:
            nb.screenshot("tools-growing")

    (gates / str(len(ARGS) + 1)).touch()  # the last piece: the run ends
    _, footer = final_answer(nb, 2, timeout=30)
    assert "· done ·" in footer and "tool call: get_weather" in footer, footer
    saved = nb.output(2, ".ipy-stream-saved .ipy-stream-tools code").first
    assert saved.text_content() == f"get_weather({''.join(ARGS)})"
    assert window_pwned(nb) is None
    nb.run_cell(3)
    assert nb.output_text(3).strip() == "'Let me look that up.'"
