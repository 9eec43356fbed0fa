"""What a run cost, in US dollars, from the token usage the server reported.

Prices come from the price table bundled with the ``genai-prices`` package, read as
installed: nothing is fetched, ever (the package's optional auto-update, which
downloads newer prices, is never started, and the figures here ignore prices that
anything else in the process may have fetched). A run is priced only when the table
knows both the server and the model; otherwise there is no figure, never a guess:

* a local or unknown server (``base_url`` not one the table recognises) is not priced,
  even when it serves a model named like one of OpenAI's;
* a model the table does not list is not priced;
* a run without reported usage is not priced.

``genai-prices`` is imported on first use: it takes a few tenths of a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from ipy_stream.models import unwrapped

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot

__all__ = ["Endpoint", "endpoint_of", "estimate_cost", "format_cost"]

SMALLEST = 0.0001
"""Dollar amounts below this are shown as ``< $0.0001``."""

_URL_ATTRIBUTES = ("openai_api_base", "anthropic_api_url", "base_url")
"""Where LangChain chat models other than the OpenAI SDK's keep their server's URL."""


@dataclass(frozen=True)
class Endpoint:
    """The model a runnable asks for, and the server it asks."""

    model: str
    base_url: str


@cache
def _snapshot() -> DataSnapshot:
    """The price table as installed with the package (never one fetched at run time)."""
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


def _normalized_url(base_url: str) -> str:
    """``base_url`` with a scheme, without credentials, host in lower case."""
    url = base_url.strip()
    parts = urlsplit(url if "://" in url else "https://" + url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(scheme=parts.scheme.lower(), netloc=netloc))


def estimate_cost(
    model: str,
    usage: Mapping[str, int] | None,
    *,
    base_url: str | None,
    provider: str | None = None,
) -> float | None:
    """US dollars for one run's reported ``usage``, or None when it cannot be known.

    ``usage`` has ``prompt_tokens`` and ``completion_tokens`` (as in
    :attr:`ipy_stream.outcome.Outcome.usage`); a ``cached_tokens`` entry, the part of
    the prompt read from the server's cache, is priced as such when present.
    ``base_url`` is the server the model was asked (None: the client's default server,
    which ``provider`` then names). ``provider`` is the price table's name for the
    provider serving the model ("openai" for ChatOpenAI against OpenAI), when known.
    With a ``base_url`` the URL names the server, and a ``provider`` that says
    otherwise leaves the run unpriced; with neither, the run is unpriced.

    Never raises: anything unexpected from the price table gives None.
    """
    if not usage or not model.strip():
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if prompt is None or completion is None:
        return None
    try:
        from genai_prices import Usage

        snapshot = _snapshot()
        server = _server(snapshot, base_url, provider)
        if server is None:
            return None
        counts = {"input_tokens": prompt, "output_tokens": completion}
        cached = usage.get("cached_tokens")
        if cached:
            counts["cache_read_tokens"] = cached
        price = snapshot.calc(
            usage=Usage(**counts),
            model_ref=model.strip(),
            provider_id=server,
            provider_api_url=None,
            genai_request_timestamp=None,
        )
        total: Decimal = price.total_price
    except Exception:  # noqa: BLE001 - a cost is extra: it must never break a run's end
        # Mostly LookupError: a server or model the table does not know.
        return None
    return float(total)


def _server(snapshot: DataSnapshot, base_url: str | None, provider: str | None) -> str | None:
    """The table's id of the provider serving the run, None when it cannot be told for
    sure; raises LookupError for a provider or server the table does not know."""
    by_name = None
    if provider is not None:
        by_name = snapshot.find_provider(
            model_ref=None, provider_id=provider, provider_api_url=None
        )
    if base_url is None or not base_url.strip():
        return by_name.id if by_name is not None else None
    url = _normalized_url(base_url)
    by_url = snapshot.find_provider(model_ref=None, provider_id=None, provider_api_url=url)
    if by_name is not None and by_name.id != by_url.id:
        return None  # told one provider, asked another's server: no guess
    return by_url.id


def format_cost(usd: float) -> str:
    """``≈ $0.0012``, ``≈ $0.42``, ``≈ $3.10``: two significant figures below a dollar,
    cents from there; ``< $0.0001`` for less, ``$0`` for nothing at all."""
    if usd == 0:
        return "$0"
    if usd < SMALLEST:
        return f"< ${SMALLEST:.4f}"
    if usd >= 1:
        return f"≈ ${usd:,.2f}"
    digits = f"{usd:.2g}"  # fixed notation down to 0.0001
    whole, _, decimals = digits.partition(".")
    return f"≈ ${whole}.{decimals.ljust(2, '0')}"


def endpoint_of(runnable: object) -> Endpoint | None:
    """The model name and server URL of a LangChain chat model (bound or not), as its
    client will use them; None when either cannot be read (then the run is unpriced).

    Reads the OpenAI SDK client's URL (ChatOpenAI and the models built on it, which
    also honours ``OPENAI_BASE_URL``), else a URL attribute such as ChatAnthropic's.
    """
    model = unwrapped(runnable)
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    if not isinstance(name, str) or not name.strip():
        return None
    client = getattr(model, "root_client", None)
    url = getattr(client, "base_url", None) if client is not None else None
    if url is None:
        for attribute in _URL_ATTRIBUTES:
            url = getattr(model, attribute, None)
            if url:
                break
    if url is None or not str(url).strip():
        return None
    return Endpoint(name.strip(), str(url))
