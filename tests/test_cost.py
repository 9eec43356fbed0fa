"""What a run cost: priced from the bundled price table only for a server and model it
knows, never guessed, never fetched; and how the figure reads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from genai_prices.data import providers
from genai_prices.data_snapshot import DataSnapshot, set_custom_snapshot
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

from ipy_stream.cost import Endpoint, endpoint_of, estimate_cost, format_cost
from ipy_stream.models import ModelSettings, resolve_model

OPENAI = "https://api.openai.com/v1"
LOCAL = "http://localhost:8000/v1"
USAGE = {"prompt_tokens": 1200, "completion_tokens": 300}


def table_price(model: str, usage: dict[str, int], provider: str = "openai") -> float:
    """The cost by the table's own per-token prices (standard, uncached)."""
    snapshot = DataSnapshot(providers=providers, from_auto_update=False)
    _, info = snapshot.find_provider_model(model, None, provider, None)
    prices = info.get_prices(datetime.now(UTC))
    per_input, per_output = prices.input_mtok, prices.output_mtok
    assert isinstance(per_input, Decimal)
    assert isinstance(per_output, Decimal)
    total = usage["prompt_tokens"] * per_input + usage["completion_tokens"] * per_output
    return float(total / 1_000_000)


# -- priced ---------------------------------------------------------------------------


def test_known_openai_model_is_priced_by_the_table() -> None:
    cost = estimate_cost("gpt-4o-mini", USAGE, base_url=None, provider="openai")
    assert cost is not None
    assert cost > 0
    assert cost == pytest.approx(table_price("gpt-4o-mini", USAGE), rel=1e-9)


@pytest.mark.parametrize(
    "base_url",
    [OPENAI, "https://api.openai.com/v1/", "api.openai.com/v1", " HTTPS://API.OpenAI.com/v1 "],
)
def test_openai_url_names_the_provider(base_url: str) -> None:
    by_url = estimate_cost("gpt-4o-mini", USAGE, base_url=base_url)
    assert by_url == estimate_cost("gpt-4o-mini", USAGE, base_url=None, provider="openai")
    assert estimate_cost("gpt-4o-mini", USAGE, base_url=base_url, provider="openai") == by_url


def test_gpt_4o_mini_costs_what_it_should() -> None:
    """An order-of-magnitude check on the table itself: a million prompt tokens of
    gpt-4o-mini cost cents, not dollars, and answers cost more than prompts."""
    million_in = estimate_cost(
        "gpt-4o-mini", {"prompt_tokens": 1_000_000, "completion_tokens": 0}, base_url=OPENAI
    )
    million_out = estimate_cost(
        "gpt-4o-mini", {"prompt_tokens": 0, "completion_tokens": 1_000_000}, base_url=OPENAI
    )
    assert million_in is not None
    assert million_out is not None
    assert 0.01 < million_in < 1.0
    assert million_in < million_out < 10.0


def test_dated_and_differently_cased_names_are_the_same_model() -> None:
    plain = estimate_cost("gpt-4o-mini", USAGE, base_url=OPENAI)
    assert estimate_cost("gpt-4o-mini-2024-07-18", USAGE, base_url=OPENAI) == plain
    assert estimate_cost("GPT-4o-mini", USAGE, base_url=OPENAI) == plain


def test_cached_prompt_tokens_are_priced_as_such_when_reported() -> None:
    full = estimate_cost("gpt-4o-mini", USAGE, base_url=OPENAI)
    cached = estimate_cost("gpt-4o-mini", {**USAGE, "cached_tokens": 1000}, base_url=OPENAI)
    assert full is not None
    assert cached is not None
    assert 0 < cached < full


def test_no_tokens_cost_nothing() -> None:
    zero = {"prompt_tokens": 0, "completion_tokens": 0}
    assert estimate_cost("gpt-4o-mini", zero, base_url=OPENAI) == 0.0


def test_another_known_server_is_priced_with_its_own_prices() -> None:
    cost = estimate_cost("claude-3-5-haiku-latest", USAGE, base_url="https://api.anthropic.com")
    assert cost is not None
    assert cost == pytest.approx(
        table_price("claude-3-5-haiku-latest", USAGE, provider="anthropic"), rel=1e-9
    )


# -- never a guess --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-9-ultra-unreleased", "llama3", "qwen2.5:7b", "my-model"])
def test_unknown_model_is_not_priced(model: str) -> None:
    assert estimate_cost(model, USAGE, base_url=OPENAI) is None
    assert estimate_cost(model, USAGE, base_url=None, provider="openai") is None


@pytest.mark.parametrize(
    "base_url",
    [
        LOCAL,
        "http://127.0.0.1:11434/v1",
        "http://[::1]:8080/v1",
        "https://llm.example.test/v1",
        "localhost:8000",
    ],
)
def test_openai_model_name_on_another_server_is_not_priced(base_url: str) -> None:
    assert estimate_cost("gpt-4o-mini", USAGE, base_url=base_url) is None
    assert estimate_cost("gpt-4o-mini", USAGE, base_url=base_url, provider="openai") is None


@pytest.mark.parametrize("usage", [None, {}, {"prompt_tokens": 10}, {"completion_tokens": 10}])
def test_missing_usage_is_not_priced(usage: dict[str, int] | None) -> None:
    assert estimate_cost("gpt-4o-mini", usage, base_url=OPENAI) is None


def test_unknown_server_and_provider_is_not_priced() -> None:
    assert estimate_cost("gpt-4o-mini", USAGE, base_url=None) is None
    assert estimate_cost("gpt-4o-mini", USAGE, base_url="  ") is None
    assert estimate_cost("gpt-4o-mini", USAGE, base_url=None, provider="no-such-provider") is None


def test_a_provider_that_contradicts_the_url_is_not_priced() -> None:
    assert estimate_cost("gpt-4o-mini", USAGE, base_url=OPENAI, provider="anthropic") is None


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5, "completion_tokens": 1},
        {"prompt_tokens": "many", "completion_tokens": 1},
    ],
)
def test_nonsense_usage_gives_none_not_an_error(usage: dict[str, Any]) -> None:
    assert estimate_cost("gpt-4o-mini", usage, base_url=OPENAI) is None


def test_blank_model_is_not_priced() -> None:
    assert estimate_cost("  ", USAGE, base_url=OPENAI) is None


# -- offline ----------------------------------------------------------------------------


def test_prices_fetched_by_anything_else_are_not_used() -> None:
    """Only the table installed with the package counts: an updated one set by someone
    else in the process (here: one that knows nothing) changes no figure."""
    before = estimate_cost("gpt-4o-mini", USAGE, base_url=OPENAI)
    set_custom_snapshot(DataSnapshot(providers=[], from_auto_update=True))
    try:
        assert estimate_cost("gpt-4o-mini", USAGE, base_url=OPENAI) == before
    finally:
        set_custom_snapshot(None)


def test_pricing_opens_no_connection_and_starts_no_thread() -> None:
    """In a fresh interpreter where any network use fails loudly."""
    script = textwrap.dedent(
        """
        import sys, threading

        def no_network(event, args):
            if event.startswith(("socket.", "http.", "urllib.")):
                raise RuntimeError(f"network use: {event}")

        sys.addaudithook(no_network)
        from ipy_stream.cost import estimate_cost

        usage = {"prompt_tokens": 1200, "completion_tokens": 300}
        cost = estimate_cost("gpt-4o-mini", usage, base_url="https://api.openai.com/v1")
        assert cost is not None and cost > 0, cost
        assert estimate_cost("gpt-4o-mini", usage, base_url="http://localhost:8000/v1") is None
        assert threading.active_count() == 1, threading.enumerate()
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- from a notebook's model to a price -----------------------------------------------


def test_chat_openai_against_openai() -> None:
    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test")  # type: ignore[arg-type]
    endpoint = endpoint_of(model)
    assert endpoint is not None
    assert endpoint.model == "gpt-4o-mini"
    cost = estimate_cost(endpoint.model, USAGE, base_url=endpoint.base_url)
    assert cost == pytest.approx(table_price("gpt-4o-mini", USAGE), rel=1e-9)
    assert endpoint_of(model.bind(temperature=0.2)) == endpoint
    assert endpoint_of(model.with_retry()) == endpoint


def test_chat_openai_against_a_local_server() -> None:
    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", base_url=LOCAL)  # type: ignore[arg-type]
    endpoint = endpoint_of(model)
    assert endpoint is not None
    assert endpoint.base_url.startswith(LOCAL)
    assert estimate_cost(endpoint.model, USAGE, base_url=endpoint.base_url) is None


def test_chat_openai_follows_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", LOCAL)
    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test")  # type: ignore[arg-type]
    endpoint = endpoint_of(model)
    assert endpoint is not None
    assert estimate_cost(endpoint.model, USAGE, base_url=endpoint.base_url) is None


@pytest.mark.parametrize(("base_url", "priced"), [(None, True), (OPENAI, True), (LOCAL, False)])
def test_models_named_with_dash_m(base_url: str | None, priced: bool) -> None:
    resolved = resolve_model(
        ModelSettings(name="gpt-4o-mini", api_key="sk-test", base_url=base_url), {}
    )
    try:
        endpoint = endpoint_of(resolved.runnable)
        assert endpoint is not None
        cost = estimate_cost(endpoint.model, USAGE, base_url=endpoint.base_url)
        assert (cost is not None) is priced
    finally:
        if resolved.close is not None:
            resolved.close()


def test_a_model_with_a_url_attribute() -> None:
    class AnthropicLike:
        model = "claude-3-5-haiku-latest"
        anthropic_api_url = "https://api.anthropic.com"

    endpoint = endpoint_of(AnthropicLike())
    assert endpoint == Endpoint("claude-3-5-haiku-latest", "https://api.anthropic.com")


def test_models_without_a_name_or_server_have_no_endpoint() -> None:
    demo = resolve_model(ModelSettings(name="demo"), {})
    assert endpoint_of(demo.runnable) is None
    assert endpoint_of(RunnableLambda(lambda text: text)) is None

    class NoServer:
        model_name = "gpt-4o-mini"

    assert endpoint_of(NoServer()) is None


# -- how it reads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (0.0012, "≈ $0.0012"),
        (0.00123, "≈ $0.0012"),
        (0.00036, "≈ $0.00036"),
        (0.0001, "≈ $0.0001"),
        (0.05, "≈ $0.05"),
        (0.1, "≈ $0.10"),
        (0.42, "≈ $0.42"),
        (0.5, "≈ $0.50"),
        (0.999, "≈ $1.00"),
        (3.1, "≈ $3.10"),
        (12.345, "≈ $12.35"),
        (1234.5, "≈ $1,234.50"),
        (0.00009, "< $0.0001"),
        (1e-9, "< $0.0001"),
        (0.0, "$0"),
    ],
)
def test_format_cost(usd: float, text: str) -> None:
    assert format_cost(usd) == text


@given(st.floats(min_value=0.0001, max_value=1e6))
def test_format_cost_is_close_and_plain(usd: float) -> None:
    text = format_cost(usd)
    assert text.startswith("≈ $")
    number = text.removeprefix("≈ $").replace(",", "")
    assert "e" not in number
    assert abs(float(number) - usd) <= 0.05 * usd + 0.005
