"""DataFrames, figures and images in ``%%stream`` cells: what the model receives, the limits
and the budget, what the run log, ``%stream history`` and the saved output show, and a
server that refuses images (the real ChatOpenAI over HTTP to the project's test server).
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from matplotlib.figure import Figure
from PIL import Image

from ipy_stream.demo import DemoChatModel
from ipy_stream.errors import StreamError
from tests.openai_server import StreamServer
from tests.saved_output import saved
from tests.support import RecordingChatModel, log_rows, run

ROOT = Path(__file__).parent.parent


def figure(width: float = 6.4, height: float = 4.8) -> Figure:
    plot = Figure(figsize=(width, height), dpi=100)
    plot.add_subplot().plot([1, 4, 2])
    return plot


def sales(rows: int = 10_000) -> pd.DataFrame:
    return pd.DataFrame({"region": ["north", "south"] * (rows // 2), "amount": range(rows)})


@pytest.fixture
def data_ns(ip: InteractiveShell, fake: RecordingChatModel) -> InteractiveShell:
    """A shell holding a fake model, a 10,000-row DataFrame ``df`` and a figure ``fig``."""
    ip.user_ns.update(model=fake, df=sales(), fig=figure())
    return ip


def test_the_model_gets_the_table_as_text_and_the_figure_as_an_image_in_place(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    result, _ = run(data_ns, "%%stream -m model\nSummarize {df}.\nThen explain {fig} briefly.")
    assert result.success
    ((message,),) = fake.calls
    before, image, after = message.content
    assert isinstance(before, dict) and isinstance(image, dict) and isinstance(after, dict)
    assert before["text"].startswith("Summarize [table: df, 50 of 10,000 rows]\n")
    assert "showing 50 of 10,000 rows" in before["text"]
    assert "| 9999 | south | 9999 |" in before["text"]
    assert before["text"].endswith("Then explain [image: fig, 640×480]")
    assert image["type"] == "image" and image["mime_type"] == "image/png"
    png = base64.b64decode(image["base64"])
    assert Image.open(io.BytesIO(png)).size == (640, 480)
    assert after == {"type": "text", "text": " briefly."}


def test_max_rows_and_max_columns_are_settings(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    data_ns.run_line_magic("config", "StreamMagics.max_rows = 4")
    data_ns.run_line_magic("config", "StreamMagics.max_columns = 1")
    run(data_ns, "%%stream -m model\n{df}")
    text = fake.calls[0][0].text
    assert text.startswith("[table: df, 4 of 10,000 rows; 1 of 2 columns]\n")
    assert "| 1 | south | … |" in text
    _, shown = run(data_ns, "%stream")
    assert "max_rows          4" in shown.stdout
    assert "max_prompt_chars  250000" in shown.stdout


def test_a_limit_below_one_is_refused(
    ip: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    run(ip, "%config StreamMagics.max_rows = 0")
    assert "StreamMagics.max_rows must be 1 or more" in caplog.text
    _, captured = run(ip, "%stream")
    assert "max_rows          50" in captured.stdout


def test_a_prompt_over_the_budget_is_one_line_naming_the_largest_variable_and_sends_nothing(
    data_ns: InteractiveShell, fake: RecordingChatModel, log_path: Path
) -> None:
    data_ns.user_ns["notes"] = "n" * 300_000
    result, captured = run(data_ns, "%%stream -m model -o out\nRead {notes} and {df}")
    error = result.error_in_exec
    assert isinstance(error, UsageError)
    assert str(error).startswith("The prompt is 30")
    assert "over StreamMagics.max_prompt_chars (250,000)" in str(error)
    assert "the largest variable is {notes} (300,000 characters)" in str(error)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert fake.calls == []
    assert "out" not in data_ns.user_ns
    assert not log_path.exists()
    # Raising the limit, as the message says, sends it.
    data_ns.run_line_magic("config", "StreamMagics.max_prompt_chars = 400_000")
    assert run(data_ns, "%%stream -m model\nRead {notes} and {df}")[0].success
    assert len(fake.calls) == 1


def test_an_image_counts_by_its_size_in_base64(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    data_ns.run_line_magic("config", "StreamMagics.max_prompt_chars = 5000")
    result, _ = run(data_ns, "%%stream -m model\nExplain {fig}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "the largest variable is {fig}" in str(result.error_in_exec)
    assert "send a smaller image" in str(result.error_in_exec)
    assert fake.calls == []


def test_an_image_outside_a_user_message_is_refused_before_sending(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    result, _ = run(data_ns, "%%stream -m model -s 'Compare with {fig}'\nHi")
    assert isinstance(result.error_in_exec, UsageError)
    assert "images can only be sent in a user message, not in the system prompt" in str(
        result.error_in_exec
    )
    result, _ = run(data_ns, "%%stream -m model\nuser:\nHi\nassistant:\n{fig}\nuser:\nAnd?")
    assert "not in an assistant: message" in str(result.error_in_exec)
    assert fake.calls == []


def test_the_log_keeps_labels_hashes_and_sizes_but_never_the_image(
    data_ns: InteractiveShell, log_path: Path
) -> None:
    run(data_ns, "%%stream -m model\nSummarize {df} and {fig}")
    (row,) = log_rows(log_path)
    table, image = json.loads(row["attachments"])
    assert table["label"] == "[table: df, 50 of 10,000 rows]"
    assert (table["rows"], table["sent_rows"], table["columns"]) == (10_000, 50, 2)
    assert image["label"] == "[image: fig, 640×480]"
    assert (image["mime_type"], image["width"], image["height"]) == ("image/png", 640, 480)
    assert len(image["sha256"]) == 64
    assert image["bytes"] > 1000
    (message,) = json.loads(row["messages"])
    assert "and [image: fig, 640×480]" in message["content"]
    stored = log_path.read_bytes()
    assert b"iVBORw0KGgo" not in stored  # the start of any PNG in base64
    # The labels are in the prompt %stream log previews and searches.
    _, shown = run(data_ns, "%stream log '[image: fig'")
    assert "Summarize [table: d" in shown.stdout
    _, shown = run(data_ns, "%stream log '[image: other'")
    assert "No runs matching" in shown.stdout


def test_the_saved_output_names_what_was_sent_and_the_text_copy_is_the_answer(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    data_ns.run_line_magic("config", "StreamMagics.view = 'widget'")
    fake.reply = "Sales rise."
    _, captured = run(data_ns, "%%stream -m model\nSummarize {df} and {fig}")
    (kept,) = captured.final_outputs()
    output = saved(kept["data"])
    assert (
        "Sent with the prompt: [table: df, 50 of 10,000 rows], [image: fig, 640×480]"
        in output.visible
    )
    assert output.answer.renders("Sales rise.")
    assert output.plain == "Sales rise."


def test_a_terminal_names_what_was_sent_above_the_footer(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    fake.reply = "Sales rise."
    _, captured = run(data_ns, "%%stream -m model\nSummarize {df} and {fig}")
    assert captured.stdout.startswith(
        "Sales rise.\n"
        "— Sent with the prompt: [table: df, 50 of 10,000 rows], [image: fig, 640×480]\n"
        "— model · done"
    )


def test_a_plain_run_shows_no_attachment_line(
    ip: InteractiveShell, fake: RecordingChatModel
) -> None:
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    ip.user_ns.update(model=fake, note="short")
    _, captured = run(ip, "%%stream -m model\nRead {note}")
    (kept,) = captured.final_outputs()
    assert "Sent with the prompt" not in saved(kept["data"]).visible


def test_history_names_the_attachments_and_later_turns_resend_the_image(
    data_ns: InteractiveShell, fake: RecordingChatModel
) -> None:
    run(data_ns, "%%stream -m model -c\nWhat is in {fig}?")
    run(data_ns, "%%stream -m model -c\nAnd the colours?")
    run(data_ns, "%%stream -m model -c\nAnd in {df}?")
    _, shown = run(data_ns, "%stream history")
    assert "What is in [image: fig, 640×480]?" in shown.stdout
    assert "iVBORw0KGgo" not in shown.stdout
    # A table is named by its label, not printed whole; the model still gets all of it.
    assert "And in [table: df, 50 of 10,000 rows]?" in shown.stdout
    assert "|" not in shown.stdout
    second = fake.calls[1]
    assert [m.type for m in second] == ["human", "ai", "human"]
    assert any(isinstance(p, dict) and p.get("type") == "image" for p in second[0].content)
    run(data_ns, "%%stream -m model -c\nThanks.")
    assert "| 9999 |" in fake.calls[3][4].text


def test_the_demo_model_says_what_it_was_sent(data_ns: InteractiveShell) -> None:
    data_ns.user_ns["instant_demo"] = DemoChatModel(delay=0)
    result, _ = run(data_ns, "%%stream -m instant_demo -o out\nSummarize {df} and {fig}")
    assert result.success
    assert (
        "I was sent a table `df` (50 of 10,000 rows) and an image `fig` (640×480)."
        in data_ns.user_ns["out"]
    )
    run(data_ns, "%%stream -m instant_demo -o plain\nHello")
    assert "I was sent" not in data_ns.user_ns["plain"]


def test_importing_and_a_plain_cell_import_no_data_library() -> None:
    script = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config\n"
        "import ipy_stream\n"
        "config = Config()\n"
        "config.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell(config=config)\n"
        "ip.run_line_magic('load_ext', 'ipy_stream')\n"
        "ip.run_line_magic('config', 'StreamMagics.log_enabled = False')\n"
        "import ipy_stream.demo\n"
        "ip.user_ns['quick'] = ipy_stream.demo.DemoChatModel(delay=0)\n"
        "ip.user_ns['text'] = 'a plain string'\n"
        "result = ip.run_cell('%%stream -m quick -o out\\nSummarize {text}')\n"
        "assert result.success and 'a plain string' in ip.user_ns['out']\n"
        "heavy = ('pandas', 'polars', 'numpy', 'matplotlib', 'PIL')\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in heavy))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


# -- over HTTP ----------------------------------------------------------------------------------


def test_a_server_that_refuses_images_gives_one_line_saying_so(
    http: InteractiveShell, server: StreamServer, secret_key: str, log_path: Path
) -> None:
    server.configure(refuse_images=True)
    http.user_ns["fig"] = figure(2, 1)
    result, captured = run(http, "%%stream -m gpt-4o-mini -o out\nExplain {fig}")
    error = result.error_in_exec
    assert isinstance(error, StreamError)
    assert str(error).startswith("gpt-4o-mini does not read images (")
    assert "image_url is only supported by certain models" in str(error)
    assert "send {fig} to a model that does" in str(error)
    lines = [line for line in (captured.stdout + captured.stderr).splitlines() if line.strip()]
    assert lines == [str(error)]
    assert len(server.completion_requests) == 1, "a refusal is not worth retrying"
    (row,) = log_rows(log_path)
    assert row["status"] == "failed" and "does not read images" in row["error"]
    # Without the image, the same server answers.
    assert run(http, "%%stream -m gpt-4o-mini\nExplain plots")[0].success


def test_the_request_carries_the_table_and_the_png_and_the_key_appears_nowhere(
    http: InteractiveShell, server: StreamServer, secret_key: str, log_path: Path
) -> None:
    server.configure(tokens=5, rate=0)
    http.user_ns.update(df=sales(100), fig=figure(3, 2))
    result, captured = run(http, "%%stream -m gpt-4o-mini\nCompare {df} with {fig}.")
    assert result.success
    (request,) = server.completion_requests
    assert request.body is not None
    (message,) = request.body["messages"]
    text, image, tail = message["content"]
    assert "[table: df, 50 of 100 rows]" in text["text"]
    assert "| 99 | south | 99 |" in text["text"]
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (300, 200)
    assert tail == {"type": "text", "text": "."}
    (kept,) = captured.final_outputs()
    everything = (
        captured.stdout
        + captured.stderr
        + json.dumps(kept["data"])
        + log_path.read_bytes().decode("utf-8", "replace")
    )
    assert secret_key not in everything
    assert secret_key[-8:] not in everything
