"""What today's models stream, through the real magic and ``ChatOpenAI`` over real HTTP to
the project's test server: thinking kept apart from the answer, tool calls, the limits and
the usage of servers people run locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.output_parsers import StrOutputParser
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from ipy_stream.errors import StreamError
from ipy_stream.models import ModelSettings, resolve_model
from ipy_stream.outcome import Outcome
from ipy_stream.saved import SavedAnswer, final_bundle
from tests.openai_server import StreamServer, generate_reply
from tests.saved_output import saved
from tests.support import log_rows, run

THOUGHT = "The user asks about owls. Owls are birds; keep it short."


def owl_count(place: str) -> int:
    """How many owls live in a place."""
    return len(place)


def test_thinking_streams_apart_and_never_lands_in_the_answer(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    server.configure(tokens=12, reasoning=THOUGHT)
    result, captured = run(http, "%%stream -m gpt-4o-mini -o answer --reasoning-out why\nOwls?")
    assert result.success, result.error_in_exec
    assert http.user_ns["answer"] == "".join(generate_reply(12))
    assert http.user_ns["why"] == THOUGHT
    (row,) = log_rows(log_path)
    assert row["answer"] == http.user_ns["answer"]
    assert row["reasoning"] == THOUGHT
    (kept,) = captured.final_outputs()
    html = kept["data"]["text/html"]
    thinking = BeautifulSoup(html, "html.parser").select_one("details.ipy-stream-thinking")
    assert thinking is not None and thinking.get("open") is None  # folded
    assert thinking.summary is not None and thinking.summary.get_text().startswith("Thinking")
    assert "Owls are birds" in thinking.get_text()
    assert THOUGHT not in kept["data"]["text/plain"]
    assert "thought" in saved(kept["data"]).answers[0].footer


def test_thinking_sent_as_reasoning_is_read_too(
    http: InteractiveShell, server: StreamServer
) -> None:
    server.configure(tokens=5, reasoning=THOUGHT, reasoning_field="reasoning")
    assert run(http, "%%stream -m gpt-4o-mini -o a --reasoning-out why\nOwls?")[0].success
    assert http.user_ns["why"] == THOUGHT
    assert http.user_ns["a"] == "".join(generate_reply(5))


def test_inline_think_tags_are_taken_out_of_the_answer(
    http: InteractiveShell, server: StreamServer
) -> None:
    server.configure(text="<think>Hmm, owls.</think>\n\nOwls hunt at night.")
    assert run(http, "%%stream -m gpt-4o-mini -o a --reasoning-out why\nOwls?")[0].success
    assert http.user_ns["a"] == "Owls hunt at night."
    assert http.user_ns["why"] == "Hmm, owls."


def test_inline_think_tags_are_taken_out_of_a_parsers_answer_too(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    server.configure(text="<think>Hmm, owls.</think>\n\nOwls hunt at night.")
    http.user_ns["parsed"] = (
        ChatOpenAI(
            model="qwen3", base_url=server.base_url, api_key=SecretStr("sk-local"), max_retries=0
        )
        | StrOutputParser()
    )
    result, captured = run(http, "%%stream -m parsed -o a --reasoning-out why\nOwls?")
    assert result.success, result.error_in_exec
    assert http.user_ns["a"] == "Owls hunt at night."
    assert http.user_ns["why"] == "Hmm, owls."
    (kept,) = captured.final_outputs()
    assert kept["data"]["text/plain"] == "Owls hunt at night."
    assert log_rows(log_path)[0]["answer"] == "Owls hunt at night."


def test_hidden_thinking_is_still_logged(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    http.run_line_magic("config", "StreamMagics.show_reasoning = False")
    server.configure(tokens=5, reasoning=THOUGHT)
    result, captured = run(http, "%%stream -m gpt-4o-mini\nOwls?")
    assert result.success
    (kept,) = captured.final_outputs()
    assert "ipy-stream-thinking" not in kept["data"]["text/html"]
    assert log_rows(log_path)[0]["reasoning"] == THOUGHT


def test_max_tokens_limits_the_answer_on_a_server_that_only_knows_max_tokens(
    http: InteractiveShell, server: StreamServer
) -> None:
    server.configure(tokens=200, limit_param="max_tokens")
    assert run(http, "%%stream -m local-model --max-tokens 12 -o a\nWrite.")[0].success
    assert http.user_ns["a"] == "".join(generate_reply(12))
    body = server.completion_requests[-1].body
    assert body is not None and body["max_tokens"] == 12


def test_missing_usage_is_said_to_be_counted(http: InteractiveShell, server: StreamServer) -> None:
    server.configure(tokens=7, usage=False)
    result, captured = run(http, "%%stream -m local-model\nHi")
    assert result.success
    (kept,) = captured.final_outputs()
    assert "7 tokens (counted, not reported)" in saved(kept["data"]).answers[0].footer


def test_a_notebook_chatopenai_without_usage_says_it_was_counted(
    http: InteractiveShell, server: StreamServer
) -> None:
    server.configure(tokens=6, usage=False)
    http.user_ns["local"] = ChatOpenAI(
        model="qwen3", base_url=server.base_url, api_key=SecretStr("sk-local"), max_retries=0
    ).bind_tools([owl_count])
    result, captured = run(http, "%%stream -m local\nHi")
    assert result.success, result.error_in_exec
    (kept,) = captured.final_outputs()
    assert "6 tokens (counted, not reported)" in saved(kept["data"]).answers[0].footer


def test_a_refused_parameter_is_named_in_one_line(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    server.configure(refuse_params=["temperature"])
    result, _ = run(http, "%%stream -m reasoner -t 0.2\nHi")
    assert isinstance(result.error_in_exec, StreamError)
    message = result.error_in_exec.message
    assert "temperature" in message and "-t" in message
    assert "\n" not in message
    assert json.loads(log_rows(log_path)[0]["params"])["temperature"] == 0.2


@pytest.mark.parametrize(
    ("tokens", "label"), [(1, "Thinking · 1 token"), (7, "Thinking · 7 tokens")]
)
def test_the_saved_thinking_summary_counts_its_tokens_in_words(tokens: int, label: str) -> None:
    outcome = Outcome(text="Yes.", status="done", reasoning="Hmm.", reasoning_tokens=tokens)
    html = final_bundle([SavedAnswer.of("m", outcome, "<p>Yes.</p>")])["text/html"]
    summary = BeautifulSoup(html, "html.parser").select_one("details.ipy-stream-thinking summary")
    assert summary is not None and summary.get_text() == label


def test_a_notebook_chatopenai_on_another_server_gets_the_limit_it_reads(
    http: InteractiveShell, server: StreamServer
) -> None:
    # llama.cpp, older vLLM, LM Studio and Ollama read max_tokens, not max_completion_tokens.
    server.configure(tokens=50, limit_param="max_tokens")
    http.user_ns["local"] = ChatOpenAI(
        model="qwen3", base_url=server.base_url, api_key=SecretStr("sk-local"), max_retries=0
    )
    assert run(http, "%%stream -m local --max-tokens 7 -o short\nOwls?")[0].success
    body = server.completion_requests[-1].body
    assert (body.get("max_tokens"), body.get("max_completion_tokens")) == (7, 7)
    assert http.user_ns["short"] == "".join(generate_reply(7))
    # Without --max-tokens nothing is added; OpenAI's own API never gets max_tokens.
    assert run(http, "%%stream -m local -o whole\nOwls?")[0].success
    assert "max_tokens" not in server.completion_requests[-1].body
    # Bound to tools (the README's example), the model inside the binding is what counts.
    http.user_ns["tools"] = http.user_ns["local"].bind_tools([owl_count])
    assert run(http, "%%stream -m tools --max-tokens 5 -o bound\nOwls?")[0].success
    body = server.completion_requests[-1].body
    assert (body.get("max_tokens"), body["tools"][0]["function"]["name"]) == (5, "owl_count")
    assert http.user_ns["bound"] == "".join(generate_reply(5))
    http.user_ns["hosted"] = ChatOpenAI(model="o3-mini", api_key=SecretStr("sk-x"))
    resolved = resolve_model(ModelSettings(name="hosted", max_tokens=7), http.user_ns)
    assert "extra_body" not in getattr(resolved.runnable, "kwargs", {})


def test_a_notebook_chatopenai_on_the_responses_api_keeps_its_own_limit_only(
    http: InteractiveShell, server: StreamServer
) -> None:
    # The Responses API's limit, max_output_tokens, is read by every server that has it.
    http.user_ns["r"] = ChatOpenAI(
        model="o4-mini",
        base_url=server.base_url,
        api_key=SecretStr("sk-local"),
        use_responses_api=True,
        max_retries=0,
    )
    assert run(http, "%%stream -m r --max-tokens 4 -o a\nOwls?")[0].success
    body = server.responses_requests[-1].body
    assert body.get("max_output_tokens") == 4 and "max_tokens" not in body
    assert http.user_ns["a"] == "".join(generate_reply(4))
