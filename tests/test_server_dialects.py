"""Each dialect of the project's test server, through the real magic over real HTTP: tool
calls streamed as Chat Completions deltas, and OpenAI's Responses API (what
``ChatOpenAI(use_responses_api=True)`` calls) with reasoning summaries, tool calls and its
own answer limit, ``max_output_tokens``.

(``reasoning_content`` / ``reasoning`` deltas, inline ``<think>`` and a server that only
reads ``max_tokens`` are in ``test_dialects.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from IPython.core.interactiveshell import InteractiveShell
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from tests.openai_server import StreamServer, tokenize
from tests.openai_server.replies import count_prompt_tokens
from tests.saved_output import saved
from tests.support import log_rows, run

TEXT = "Let me look up the weather in both cities."
CALLS = [
    ["get_weather", '{"city": "Paris", "unit": "celsius"}'],
    ["get_weather", '{"city": "Oslo", "unit": "celsius"}'],
]
SUMMARY = (
    "**Recalling owl habits**\n\n"
    "Owls are nocturnal birds of prey, so the short answer is that they hunt at night."
)
"""A reasoning summary in two parts, as OpenAI sends them (a title, then a paragraph)."""
ANSWER = "Owls hunt at night and sleep through most of the day."


@pytest.fixture
def responses_model(http: InteractiveShell, server: StreamServer) -> str:
    """A notebook variable ``r``: ChatOpenAI on the Responses API, asking for reasoning
    summaries, pointed at the test server; its name."""
    http.user_ns["r"] = ChatOpenAI(
        model="o4-mini",
        base_url=server.base_url,
        api_key=SecretStr("sk-test"),
        use_responses_api=True,
        reasoning={"effort": "low", "summary": "auto"},
        max_retries=0,
    )
    return "r"


def tools_shown(data: dict[str, Any]) -> list[str]:
    """The tool calls the saved output lists, as a reader sees them."""
    soup = BeautifulSoup(str(data["text/html"]), "html.parser")
    return [item.get_text() for item in soup.select(".ipy-stream-tools li")]


def logged_calls(row: dict[str, Any]) -> list[list[str]]:
    """The run log's tool calls, as ``[name, arguments]`` pairs."""
    return [[call["name"], call["arguments"]] for call in json.loads(row["tool_calls"])]


def test_streamed_tool_calls_stay_in_the_output_and_the_log_but_not_in_the_answer(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    server.configure(text=TEXT, tool_calls=CALLS)
    result, captured = run(http, "%%stream -m gpt-4o-mini -o out\nWeather in Paris and Oslo?")
    assert result.success, result.error_in_exec
    (record,) = server.completion_requests
    # The server streamed both calls, their arguments in several pieces each.
    assert [[c["name"], c["arguments"]] for c in record.tool_calls_sent] == CALLS
    assert all(len(tokenize(arguments)) > 3 for _, arguments in CALLS)

    assert http.user_ns["out"] == TEXT
    (kept,) = captured.final_outputs()
    assert tools_shown(kept["data"]) == [f"{name}({arguments})" for name, arguments in CALLS]
    answer = saved(kept["data"]).answer
    assert answer.renders(TEXT)
    assert "tool calls: get_weather, get_weather" in answer.footer
    assert kept["data"]["text/plain"] == TEXT
    (row,) = log_rows(log_path)
    assert row["answer"] == TEXT
    assert logged_calls(row) == CALLS
    assert [c["id"] for c in json.loads(row["tool_calls"])] == [
        c["id"] for c in record.tool_calls_sent
    ]


def test_responses_api_reasoning_summary_is_kept_apart_from_the_answer(
    http: InteractiveShell, server: StreamServer, log_path: Path, responses_model: str
) -> None:
    server.configure(text=ANSWER, reasoning=SUMMARY)
    result, captured = run(
        http, f"%%stream -m {responses_model} -o a --reasoning-out why\nWhen do owls hunt?"
    )
    assert result.success, result.error_in_exec
    (record,) = server.responses_requests
    assert server.completion_requests == []
    assert record.completed and record.body is not None
    assert record.body["reasoning"] == {"effort": "low", "summary": "auto"}

    # Both summary parts, as paragraphs: exactly what the server streamed.
    assert http.user_ns["why"] == SUMMARY
    assert http.user_ns["a"] == ANSWER
    (row,) = log_rows(log_path)
    assert row["reasoning"] == SUMMARY
    assert row["answer"] == ANSWER

    (kept,) = captured.final_outputs()
    soup = BeautifulSoup(kept["data"]["text/html"], "html.parser")
    thinking = soup.select_one("details.ipy-stream-thinking")
    assert thinking is not None and thinking.get("open") is None  # folded
    paragraphs = [p.get_text() for p in thinking.select("p")]
    assert paragraphs == ["Recalling owl habits", SUMMARY.split("\n\n")[1]]
    assert "Recalling" not in kept["data"]["text/plain"]
    answer = saved(kept["data"]).answer
    assert answer.renders(ANSWER)
    # The usage the server reported (thinking counts as completion), not a count of ours.
    prompt = count_prompt_tokens(record.body)
    completion = len(tokenize(SUMMARY)) + len(tokenize(ANSWER))
    assert f"{prompt} prompt + {completion} completion tokens" in answer.footer
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)


def test_responses_api_tool_call_is_in_the_saved_output_and_the_log(
    http: InteractiveShell, server: StreamServer, log_path: Path, responses_model: str
) -> None:
    call = ["get_weather", '{"city": "Paris", "unit": "celsius"}']
    server.configure(
        text="", reasoning="The user wants the weather; call the tool.", tool_calls=[call]
    )
    result, captured = run(http, f"%%stream -m {responses_model} -o a\nWeather in Paris?")
    assert result.success, result.error_in_exec
    (record,) = server.responses_requests
    assert record.tool_calls_sent == [
        {"id": record.tool_calls_sent[0]["id"], "name": call[0], "arguments": call[1]}
    ]

    assert http.user_ns["a"] == ""  # the model called a tool and said nothing
    (kept,) = captured.final_outputs()
    assert tools_shown(kept["data"]) == [f"{call[0]}({call[1]})"]
    assert "tool call: get_weather" in saved(kept["data"]).answer.footer
    (row,) = log_rows(log_path)
    assert logged_calls(row) == [call]
    assert json.loads(row["tool_calls"])[0]["id"] == record.tool_calls_sent[0]["id"]
    assert row["reasoning"] == "The user wants the weather; call the tool."


def test_responses_api_answer_limit_is_max_output_tokens(
    http: InteractiveShell, server: StreamServer, log_path: Path, responses_model: str
) -> None:
    server.configure(text=ANSWER)
    result, captured = run(http, f"%%stream -m {responses_model} -o a --max-tokens 5\nOwls?")
    assert result.success, result.error_in_exec
    (record,) = server.responses_requests
    assert record.body is not None and record.body["max_output_tokens"] == 5
    assert "max_completion_tokens" not in record.body

    assert http.user_ns["a"] == "".join(tokenize(ANSWER)[:5])
    (kept,) = captured.final_outputs()
    answer = saved(kept["data"]).answer
    assert answer.renders(http.user_ns["a"])
    assert "done, cut short at the token limit" in answer.footer
    assert log_rows(log_path)[0]["completion_tokens"] == 5
