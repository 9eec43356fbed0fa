"""The estimated cost reaches the footer, the run log and ``%stream log`` (priced only for
a server and model the price table knows; never a guess)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_openai import ChatOpenAI

from ipy_stream.handler import TokenHandler
from ipy_stream.models import ResolvedModel
from ipy_stream.outcome import Outcome, footer_text
from ipy_stream.reports import format_log
from ipy_stream.request import ModelCall
from ipy_stream.run import _Job
from ipy_stream.runlog import RunLog

USAGE = {"prompt_tokens": 1200, "completion_tokens": 300}


def job(runnable: Any, outcome: Outcome, base_url: str | None = None) -> _Job:
    model = ResolvedModel(runnable, "gpt-4o-mini", base_url, reports_usage=True)
    call = ModelCall("gpt-4o-mini", model, runnable, {}, lambda exc, n: str(exc))
    j = _Job(call=call, view=None, stream=None)  # type: ignore[arg-type]
    j.outcome = outcome
    return j


def test_result_prices_openai_and_not_local() -> None:
    done = Outcome("hi", "done", tokens=300, usage=dict(USAGE))
    openai = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test")
    cost = job(openai, done).result().cost
    assert cost is not None and cost > 0
    local = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", base_url="http://localhost:9/v1")
    assert job(local, done, "http://localhost:9/v1").result().cost is None
    missing = job(openai, Outcome("hi", "done", tokens=3)).result()
    assert missing.cost is None and missing.usage_missing


def test_footer() -> None:
    out = Outcome("hi", "done", usage=dict(USAGE), cost=0.00036, seconds=1.0)
    text = footer_text("gpt-4o-mini", out)
    assert "300 completion tokens · ≈ $0.00036 · 1.0 s" in text, text
    assert "$" not in footer_text("m", Outcome("hi", "done", usage=dict(USAGE)))


def test_log(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    # a log written before the column existed
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL,"
        " batch TEXT NOT NULL, model TEXT NOT NULL, label TEXT NOT NULL, base_url TEXT,"
        " params TEXT NOT NULL, messages TEXT NOT NULL, answer TEXT NOT NULL,"
        " status TEXT NOT NULL, error TEXT, seconds REAL, first_token_seconds REAL,"
        " tokens INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER)"
    )
    con.commit()
    con.close()
    log = RunLog(path)
    for cost in (None, 0.00036, 1.5):
        log.record(
            batch="b",
            started_at=datetime.now(UTC),
            model="gpt-4o-mini",
            label="gpt-4o-mini",
            base_url=None,
            params={},
            messages=[{"role": "user", "content": "Say hi"}],
            outcome=Outcome("Hi!", "done", tokens=3, seconds=1.0, usage=dict(USAGE), cost=cost),
        )
    runs = log.recent()
    assert [r.cost for r in runs] == [1.5, 0.00036, None]
    text = format_log(runs, str(path), None)
    print(text)
    assert "cost" in text.splitlines()[1]
    assert "$0.00036" in text and "$1.50" in text
    narrow = format_log(runs, str(path), None, width=50)
    print(narrow)
    assert "cost" not in narrow.splitlines()[1]
    none = format_log(runs[2:], str(path), None)
    assert "cost" not in none


def test_cached_prompt_tokens_are_read_and_priced_as_cached() -> None:
    # As langchain-openai reports a prompt of which 1,000 tokens came from the cache.
    message = AIMessage(
        content="hi",
        usage_metadata={
            "input_tokens": 1200,
            "output_tokens": 300,
            "total_tokens": 1500,
            "input_token_details": {"cache_read": 1000},
        },
    )
    seen: list[dict[str, int]] = []
    handler = TokenHandler(on_token=lambda _: None, on_usage=seen.append)
    handler.on_llm_end(LLMResult(generations=[[ChatGeneration(message=message)]]))
    assert seen == [{**USAGE, "cached_tokens": 1000}]
    openai = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test")
    full = job(openai, Outcome("hi", "done", usage=dict(USAGE))).result().cost
    cached = job(openai, Outcome("hi", "done", usage=seen[0])).result().cost
    assert full is not None and cached is not None
    assert 0 < cached < full  # cached input costs less than fresh input


def test_cached_tokens_from_a_server_that_reports_them_in_token_usage() -> None:
    seen: list[dict[str, int]] = []
    handler = TokenHandler(on_token=lambda _: None, on_usage=seen.append)
    usage = {**USAGE, "prompt_tokens_details": {"cached_tokens": 0}}
    handler.on_llm_end(LLMResult(generations=[[]], llm_output={"token_usage": usage}))
    assert seen == [USAGE]  # none cached: nothing to price differently
