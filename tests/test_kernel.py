"""A real Jupyter kernel runs %%stream against the real ChatOpenAI client over HTTP.

The model server is the project's own OpenAI-compatible test server on 127.0.0.1. Where a
test needs the stream to be still running at some point (to see the answer grow, to
interrupt it, to run two at once), the server holds it there (``stall_after``) until the
test lets it go: what is asserted never depends on how fast the machine is.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from bs4 import BeautifulSoup
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager, start_new_kernel
from nbclient import NotebookClient

from tests.openai_server import StreamServer, generate_reply
from tests.saved_output import Saved, saved

pytestmark = pytest.mark.kernel

KEY = "sk-kernel-test-" + "9f8e7d6c5b4a3210" * 2
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
HOLD = 120
"""Seconds the server holds a stream at ``stall_after``: longer than any wait here, so it
is the test's ``end_stall()`` that lets it go."""
REFRESH_INTERVAL = 0.1
"""The kernel's ``StreamMagics.refresh_interval`` (its default)."""


DATA_HOME = Path(tempfile.mkdtemp(prefix="ipy-stream-kernel-data-"))


def kernel_env(server: StreamServer | None, *, key: str | None = KEY) -> dict[str, str]:
    """The whole environment of a kernel these tests start: this process's, without any
    provider variable, plus the test server's URL and the key when given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    # The kernel's run log goes to a throwaway directory, never the developer's own.
    env["XDG_DATA_HOME"] = str(DATA_HOME)
    if server is not None:
        env["OPENAI_BASE_URL"] = server.base_url
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return env


@pytest.fixture(scope="module")
def kernel(stream_server: StreamServer) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_new_kernel(kernel_name="python3", env=kernel_env(stream_server))
    try:
        reply, _ = execute(kc, "%load_ext ipy_stream\nanimal = 'bears'")
        assert reply["content"]["status"] == "ok"
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


Messages = list[tuple[float, dict[str, Any]]]


def collect(
    kc: BlockingKernelClient,
    msg_id: str,
    timeout: float = 60,
    until: Callable[[Messages], bool] | None = None,
) -> Messages:
    """Every iopub message of one execution, with its arrival time, until idle (or, with
    ``until``, until it says the messages so far are enough)."""
    messages: Messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append((time.monotonic(), msg))
        if until is not None and until(messages):
            return messages
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise TimeoutError("the cell did not finish")


def shell_reply(kc: BlockingKernelClient, msg_id: str) -> dict[str, Any]:
    reply: dict[str, Any] = kc.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=30)
    return reply


def execute(kc: BlockingKernelClient, code: str) -> tuple[dict[str, Any], Messages]:
    msg_id = kc.execute(code)
    messages = collect(kc, msg_id)
    return shell_reply(kc, msg_id), messages


def appends(messages: Messages) -> list[dict[str, Any]]:
    """The live view's append messages (the answer's new text), in order."""
    return [
        m["content"]["data"]["content"]
        for _, m in messages
        if m["msg_type"] == "comm_msg"
        and m["content"]["data"].get("method") == "custom"
        and m["content"]["data"]["content"].get("type") == "append"
    ]


def live_text(messages: Messages) -> str:
    """The answer the live view shows after these messages."""
    text = ""
    for message in appends(messages):
        text = text[: message["offset"]] + message["text"]
    return text


def shown_while_held(
    kc: BlockingKernelClient, msg_id: str, server: StreamServer, held: int
) -> Messages:
    """The messages of cell ``msg_id`` until its live view shows the first ``held`` tokens,
    which the server sent before it held the stream (``stall_after=held``)."""
    shown = "".join(generate_reply(held))
    messages = collect(kc, msg_id, until=lambda got: live_text(got) == shown)
    assert live_text(messages) == shown, "the live view did not show the answer so far"
    (record,) = server.completion_requests
    assert not record.completed, "the server let the stream go before the test did"
    return messages


def evaluate(kc: BlockingKernelClient, expression: str) -> Any:
    reply, messages = execute(kc, f"import json as _j; print(_j.dumps({expression}))")
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"]["text"] for _, m in messages if m["msg_type"] == "stream")
    return json.loads(text)


def final_output(messages: list[tuple[float, dict[str, Any]]]) -> Saved:
    updates = [m for _, m in messages if m["msg_type"] == "update_display_data"]
    assert updates, "the live view was never replaced by the final output"
    return saved(updates[-1]["content"]["data"])


def all_text(messages: list[tuple[float, dict[str, Any]]]) -> str:
    return json.dumps([m["content"] for _, m in messages])


def test_answer_grows_live_then_stays_as_markdown_and_in_out_variable(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=60, rate=40, stall_after=30, stall_seconds=HOLD)
    started = time.monotonic()
    msg_id = kc.execute("%%stream -m gpt-4o-mini -o joke\nTell me a joke about {animal}")
    try:
        # The live view shows the first half while the server holds the rest: the answer
        # grows while the cell is still running...
        messages = shown_while_held(kc, msg_id, server, 30)
    finally:
        server.end_stall()
    messages += collect(kc, msg_id)
    ended = time.monotonic()
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok"
    expected = "".join(generate_reply(60))
    displayed = [m["content"]["data"] for _, m in messages if m["msg_type"] == "display_data"]
    assert any(WIDGET_MIME in data for data in displayed), "no live view"
    assert live_text(messages) == expected
    # ...but not once per token: at most one message per refresh interval while the cell
    # ran, and the end's (a bound that a slower machine only makes looser).
    assert len(appends(messages)) <= (ended - started) / REFRESH_INTERVAL + 3
    # The kept output is the whole answer, rendered, and -o holds the text.
    assert final_output(messages).answer.renders(expected)
    assert evaluate(kc, "joke") == expected
    # The prompt was filled from the notebook's variables before it was sent.
    (request,) = server.requests
    assert request.body is not None
    assert request.body["messages"][-1]["content"] == "Tell me a joke about bears"
    assert request.stream


def test_a_model_built_without_streaming_still_streams_and_is_not_changed(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=40, rate=40)
    code = (
        "from langchain_openai import ChatOpenAI\n"
        "llm = ChatOpenAI(model='gpt-4o-mini')\n"
        "assert not llm.streaming and llm.callbacks is None"
    )
    assert execute(kc, code)[0]["content"]["status"] == "ok"
    server.configure(stall_after=20, stall_seconds=HOLD)
    msg_id = kc.execute("%%stream -m llm -o out\nHello")
    try:
        shown_while_held(kc, msg_id, server, 20)  # streamed, not shown at the end
    finally:
        server.end_stall()
    collect(kc, msg_id)
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    assert evaluate(kc, "[llm.streaming, llm.callbacks is None, out]") == [
        False,
        True,
        "".join(generate_reply(40)),
    ]


def test_interrupt_closes_the_response_and_keeps_the_partial_answer(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    km, kc = kernel
    server.configure(tokens=400, rate=25, stall_after=15, stall_seconds=HOLD)
    msg_id = kc.execute("%%stream -m gpt-4o-mini -o partial\nA long story about {animal}")
    try:
        # Interrupted once the kernel has shown the 15 tokens the server sent before it
        # held the stream.
        messages = shown_while_held(kc, msg_id, server, 15)
        km.interrupt_kernel()
        messages += collect(kc, msg_id)
    finally:
        server.end_stall()
    # The server sees the client go away: the HTTP response was closed.
    server.wait_for(lambda: server.requests[-1].client_closed, timeout=10)
    sent = server.requests[-1].text_sent
    errors = [m["content"] for _, m in messages if m["msg_type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["traceback"][0].startswith("Interrupted after")
    assert "kept in 'partial'" in errors[0]["traceback"][0]
    kept = final_output(messages).answer
    assert kept.status == "interrupted"
    assert "interrupted" in kept.footer
    partial = evaluate(kc, "partial")
    full = generate_reply(400)
    # Everything that arrived before the interrupt is kept; nothing after it.
    assert partial == "".join(full[:15])
    assert sent.startswith(partial)
    assert len(partial) < len("".join(full))
    assert kept.renders(partial)
    # The next stream works.
    server.configure(tokens=5, rate=0)
    reply, _ = execute(kc, "%%stream -m gpt-4o-mini -o again\nAgain")
    assert reply["content"]["status"] == "ok"
    assert evaluate(kc, "again") == "".join(generate_reply(5))


def test_refused_key_is_one_line_and_the_key_is_never_shown(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(status=401, fail_times=-1)
    reply, messages = execute(kc, "%%stream -m gpt-4o-mini -o out\nhi")
    assert reply["content"]["status"] == "error"
    errors = [m["content"] for _, m in messages if m["msg_type"] == "error"]
    assert errors[0]["traceback"] == [errors[0]["traceback"][0]]
    assert "refused the API key (HTTP 401)" in errors[0]["traceback"][0]
    assert KEY not in all_text(messages)
    assert KEY[-8:] not in all_text(messages)
    assert evaluate(kc, "out") == ""


def test_drop_mid_stream_keeps_partial_text(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=50, rate=0, drop_after=20)
    reply, messages = execute(kc, "%%stream -m gpt-4o-mini -o out\nhi")
    assert reply["content"]["status"] == "error"
    (error,) = [m["content"] for _, m in messages if m["msg_type"] == "error"]
    assert (
        "dropped after 20 tokens" in error["traceback"][0]
        or "could not be read" in error["traceback"][0]
    )
    partial = evaluate(kc, "out")
    assert partial == "".join(generate_reply(50)[:20])
    assert final_output(messages).answer.status == "failed"
    assert final_output(messages).answer.renders(partial)


def run_notebook(path: Path, cells: list[str], env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False)
    client.execute(env=env)  # the kernel's whole environment
    nbformat.write(nb, path)
    return nbformat.read(path, as_version=4)


def test_saved_notebook_keeps_the_answer_as_markdown_without_widget_state(
    tmp_path: Path, server: StreamServer
) -> None:
    server.configure(tokens=30, rate=200)
    path = tmp_path / "saved.ipynb"
    nb = run_notebook(
        path,
        [
            "%load_ext ipy_stream\nanimal = 'owls'",
            "%%stream -m gpt-4o-mini -o joke\nA joke about {animal}",
        ],
        kernel_env(server),
    )
    (output,) = nb.cells[1].outputs
    assert output["output_type"] == "display_data"
    assert WIDGET_MIME not in output["data"]
    kept = saved(output["data"])
    assert kept.answer.renders("".join(generate_reply(30)))
    assert kept.answer.footer.startswith("gpt-4o-mini · done · ")
    assert KEY not in path.read_text()


QUICKSTART = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"


def execute_quickstart(env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(QUICKSTART, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3").execute(env=env)
    return nb


def answer_outputs(nb: nbformat.NotebookNode) -> list[Saved]:
    return [
        saved(o["data"])
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "text/html" in o.get("data", {})
    ]


def test_quickstart_runs_with_no_key_on_the_labelled_demo_model() -> None:
    nb = execute_quickstart(kernel_env(None, key=None))
    answers = answer_outputs(nb)
    assert len(answers) == 5
    assert all("offline demo model" in answer.visible for answer in answers)
    # The quickstart's hostile prompt is quoted back: shown as text, not as an element.
    assert any("<img src=x onerror" in answer.visible for answer in answers)
    assert all("<img" not in answer.html for answer in answers)
    # Its DataFrame and plot reach the model, which names them, as the answer does below.
    (data,) = [a for a in answers if "[table: sales" in a.visible]
    assert "I was sent a table sales (50 of 120 rows) and an image fig (640×480)." in data.visible
    assert "Sent with the prompt: [table: sales, 50 of 120 rows], [image: fig, 640×480]" in (
        data.visible
    )


def test_quickstart_runs_against_an_openai_compatible_server(server: StreamServer) -> None:
    server.configure(tokens=30, rate=0)
    nb = execute_quickstart(kernel_env(server))
    answers = answer_outputs(nb)
    assert len(answers) == 5
    assert all("demo" not in answer.visible for answer in answers)
    assert len(server.requests) == 5
    with_image = [
        part
        for request in server.requests
        for message in (request.body or {}).get("messages", [])
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]
    assert len(with_image) == 1
    assert with_image[0]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")


def test_a_dataframe_and_a_figure_reach_the_server_as_a_table_and_a_png(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=5, rate=0)
    setup = (
        "import pandas as pd, matplotlib.pyplot as plt\n"
        "df = pd.DataFrame({'n': range(10_000), 'sq': [i * i for i in range(10_000)]})\n"
        "fig, ax = plt.subplots(figsize=(4, 3), dpi=100)\n"
        "ax.plot(df['n'], df['sq'])"
    )
    assert execute(kc, setup)[0]["content"]["status"] == "ok"
    reply, messages = execute(kc, "%%stream -m gpt-4o-mini\nWhat does {df} show?\n{fig}\nBe brief.")
    assert reply["content"]["status"] == "ok"
    (message,) = server.requests[-1].body["messages"]
    text, image, tail = message["content"]
    assert text["type"] == "text"
    assert text["text"].startswith("What does [table: df, 50 of 10,000 rows]\n")
    assert "showing 50 of 10,000 rows" in text["text"]
    assert "| 9999 | 9999 | 99980001 |" in text["text"]
    assert text["text"].endswith("show?\n[image: fig, 400×300]")
    prefix = "data:image/png;base64,"
    assert image["type"] == "image_url"
    assert image["image_url"]["url"].startswith(prefix)
    png = base64.b64decode(image["image_url"]["url"].removeprefix(prefix))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (400, 300)
    assert tail == {"type": "text", "text": "\nBe brief."}
    kept = final_output(messages)
    assert "Sent with the prompt: [table: df, 50 of 10,000 rows], [image: fig, 400×300]" in (
        kept.visible
    )
    assert KEY not in all_text(messages)


def test_background_run_returns_at_once_and_updates_its_own_cell_later(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=40, rate=40, stall_after=5, stall_seconds=HOLD)
    msg_id = kc.execute("%%stream -m gpt-4o-mini --bg -o essay\nWrite about {animal}")
    try:
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "ok"
        # The cell is done while the server still holds the stream after its 5th token.
        record = server.wait_for_tokens(1, timeout=10)
        assert not record.completed
    finally:
        server.end_stall()
    # The final Markdown arrives later, addressed to the cell that started the run.
    deadline = time.monotonic() + 30
    update = None
    while update is None and time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["msg_type"] == "update_display_data":
            update = msg
    assert update is not None
    assert update["parent_header"]["msg_id"] == msg_id
    expected = "".join(generate_reply(40))
    assert saved(update["content"]["data"]).answer.renders(expected)
    assert evaluate(kc, "essay") == expected


def test_side_by_side_streams_run_at_the_same_time(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=30, rate=30, stall_after=5, stall_seconds=HOLD)
    msg_id = kc.execute("%%stream -m gpt-4o-mini,gpt-4o -o both\nCompare")
    try:
        # Both streams are held after their 5th token at the same time: they run at once.
        server.wait_for(
            lambda: (
                len(server.requests) == 2
                and all(r.tokens_sent == 5 and not r.completed for r in server.requests)
            ),
            timeout=30,
        )
    finally:
        server.end_stall()
    messages = collect(kc, msg_id)
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok"
    first, second = server.requests
    assert first.finished is not None and second.finished is not None
    assert second.started < first.finished and first.started < second.finished
    assert {r.body["model"] for r in server.requests if r.body} == {"gpt-4o-mini", "gpt-4o"}
    expected = "".join(generate_reply(30))
    kept = final_output(messages)
    assert kept.columns
    assert [a.footer.split(" · ")[0] for a in kept.answers] == ["gpt-4o-mini", "gpt-4o"]
    assert all(a.renders(expected) for a in kept.answers)
    assert evaluate(kc, "both") == {"gpt-4o-mini": expected, "gpt-4o": expected}


def test_footer_shows_usage_and_the_run_is_in_the_log(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=12, rate=0)
    _, messages = execute(kc, "%%stream -m gpt-4o-mini\nCount the {animal}")
    assert "12 completion tokens" in final_output(messages).answer.footer
    reply, messages = execute(kc, "%stream log -n 1")
    assert reply["content"]["status"] == "ok"
    shown = "".join(m["content"]["text"] for _, m in messages if m["msg_type"] == "stream")
    assert "gpt-4o-mini" in shown
    assert "Count the bears" in shown
    assert str(DATA_HOME) in shown


def test_an_answer_cut_at_the_token_limit_says_so(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    server.configure(tokens=40, rate=0)
    reply, messages = execute(kc, "%%stream -m gpt-4o-mini --max-tokens 5 -o short\nTalk")
    assert reply["content"]["status"] == "ok"
    assert server.requests[-1].body["max_completion_tokens"] == 5
    assert evaluate(kc, "short") == "".join(generate_reply(40)[:5])
    assert "cut short at the token limit" in final_output(messages).answer.footer


def test_the_kernel_stays_busy_for_its_state_readers_while_a_subshell_is_made(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    """JupyterLab asks for a comm subshell (control channel) when the live view's widget
    opens, and deletes it when the last one closes. The kernel state that JupyterLab and
    jupyter_server read (every IOPub status except those answering an untracked message
    type) must stay busy until the cell's own idle, while each request still gets the idle
    that completes it on the front end."""
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    untracked = set(MappingKernelManager().untracked_message_types)
    _, kc = kernel
    # The server holds the stream until the subshell came and went: the cell runs meanwhile.
    server.configure(tokens=200, rate=50, stall_after=20, stall_seconds=HOLD)
    cell = kc.execute("%%stream -m gpt-4o-mini\nA long answer, please.")
    statuses: list[dict[str, Any]] = []

    def next_iopub() -> dict[str, Any]:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["msg_type"] == "status":
            statuses.append(msg)
        return msg

    def control(msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
        request = kc.session.msg(msg_type, content)
        kc.control_channel.send(request)
        reply = kc.control_channel.get_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == request["header"]["msg_id"]
        return request | {"reply": reply}

    try:
        while not (
            (msg := next_iopub())["msg_type"] == "display_data"
            and msg["parent_header"].get("msg_id") == cell
        ):
            pass
        made = control("create_subshell_request", {})
        subshell = made["reply"]["content"]["subshell_id"]
        deleted = control("delete_subshell_request", {"subshell_id": subshell})
        assert not any(r.completed for r in server.completion_requests)
    finally:
        server.end_stall()
    while not (
        (msg := next_iopub())["msg_type"] == "status"
        and msg["content"]["execution_state"] == "idle"
        and msg["parent_header"].get("msg_id") == cell
    ):
        pass

    def idle_for(request: dict[str, Any]) -> bool:
        return any(
            s["content"]["execution_state"] == "idle"
            and s["parent_header"]["msg_id"] == request["header"]["msg_id"]
            for s in statuses
        )

    assert idle_for(made) and idle_for(deleted), "a subshell request never completed"
    states = [
        s["content"]["execution_state"]
        for s in statuses
        if s["parent_header"].get("msg_type") not in untracked
    ]
    assert states[-1] == "idle"
    assert set(states[:-1]) == {"busy"}, states


THOUGHT = "Owls are birds of prey; keep it short."
OWLS = "Owls hunt at night."
RESPONSES_MODEL = (
    "from langchain_openai import ChatOpenAI\n"
    "r = ChatOpenAI(model='o4-mini', use_responses_api=True, max_retries=0,\n"
    "               reasoning={'effort': 'low', 'summary': 'auto'})"
)


def variables(kc: BlockingKernelClient, *names: str) -> list[Any]:
    """Values of the kernel's variables, as JSON."""
    reply, messages = execute(kc, f"import json; print(json.dumps([{', '.join(names)}]))")
    assert reply["content"]["status"] == "ok"
    (printed,) = [m["content"]["text"] for _, m in messages if m["msg_type"] == "stream"]
    return list(json.loads(printed))


@pytest.mark.parametrize(
    ("knobs", "model"),
    [
        pytest.param({"text": OWLS, "reasoning": THOUGHT}, "gpt-4o-mini", id="reasoning_content"),
        pytest.param(
            {"text": OWLS, "reasoning": THOUGHT, "reasoning_field": "reasoning"},
            "gpt-4o-mini",
            id="reasoning",
        ),
        pytest.param({"text": f"<think>{THOUGHT}</think>\n\n{OWLS}"}, "gpt-4o-mini", id="think"),
        pytest.param({"text": OWLS, "reasoning": THOUGHT}, "r", id="responses-summary"),
    ],
)
def test_each_dialects_thinking_stays_apart_from_the_answer_in_a_real_kernel(
    kernel: tuple[KernelManager, BlockingKernelClient],
    server: StreamServer,
    knobs: dict[str, Any],
    model: str,
) -> None:
    _, kc = kernel
    assert execute(kc, RESPONSES_MODEL)[0]["content"]["status"] == "ok"
    server.configure(rate=0, **knobs)
    reply, messages = execute(kc, f"%%stream -m {model} -o a --reasoning-out why\nOwls?")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert variables(kc, "a", "why") == [OWLS, THOUGHT]
    kept = final_output(messages)
    assert kept.plain == OWLS
    assert kept.answer.renders(OWLS)
    soup = BeautifulSoup(kept.html, "html.parser")
    thinking = soup.select_one("details.ipy-stream-thinking")
    assert thinking is not None and thinking.get("open") is None  # folded above the answer
    assert THOUGHT in thinking.get_text()


def test_tool_calls_a_max_tokens_only_server_and_missing_usage_in_a_real_kernel(
    kernel: tuple[KernelManager, BlockingKernelClient], server: StreamServer
) -> None:
    _, kc = kernel
    calls = [["get_weather", '{"city": "Oslo"}']]
    server.configure(rate=0, text="Looking it up.", tool_calls=calls)
    reply, messages = execute(kc, "%%stream -m gpt-4o-mini -o a\nWeather in Oslo?")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert variables(kc, "a") == ["Looking it up."]
    kept = final_output(messages)
    soup = BeautifulSoup(kept.html, "html.parser")
    assert [li.get_text() for li in soup.select(".ipy-stream-tools li")] == [
        'get_weather({"city": "Oslo"})'
    ]
    assert "get_weather" not in kept.plain

    server.reset()
    server.configure(rate=0, tokens=200, limit_param="max_tokens", usage=False)
    reply, messages = execute(kc, "%%stream -m local-model --max-tokens 12 -o a\nWrite.")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert variables(kc, "a") == ["".join(generate_reply(12))]
    assert server.completion_requests[-1].body["max_tokens"] == 12
    assert "12 tokens (counted, not reported)" in final_output(messages).answer.footer
