"""Turn ``-m NAME`` into a LangChain chat model (or any Runnable).

Resolution order: ``demo``; a notebook variable holding a chat model or Runnable;
otherwise a model name for ``langchain_openai.ChatOpenAI``.
"""

from __future__ import annotations

import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import Runnable

from ipy_stream.errors import PromptError

__all__ = ["ModelSettings", "ResolvedModel", "resolve_model"]

# Local OpenAI-compatible servers accept any key, but the client insists on one.
_PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class ModelSettings:
    """Everything needed to build a model, gathered from options, config and environment."""

    name: str
    base_url: str | None = None
    api_key: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int = 2
    from_default: bool = False
    """The name came from StreamMagics.model, not from -m (messages say so)."""


@dataclass(frozen=True)
class ResolvedModel:
    """The runnable to pipe the prompt into, and how to describe it to a person.

    ``abort``, when set, cuts the model's open HTTP responses at once (a stop would
    otherwise wait for the next token).
    """

    runnable: Runnable[Any, Any]
    label: str
    base_url: str | None = None
    abort: Callable[[], None] | None = None
    close: Callable[[], None] | None = None
    """Releases what the model holds open (its HTTP client), once its run has ended."""
    applied: Mapping[str, Any] = field(default_factory=dict)
    """The settings this model really uses (temperature, max_tokens, timeout,
    max_retries); a setting missing here is not applied."""
    is_demo: bool = False
    reports_usage: bool = False
    """The model speaks to a server that should report token usage; when it does not,
    the footer says the tokens were counted here."""


class _OpenResponses:
    """The HTTP responses a model has open, so that a stop can close their sockets.

    Closing the socket from another thread ends a read that is blocked waiting for a
    token that may never come; the stream then fails, and the run reports it stopped.
    """

    def __init__(self) -> None:
        self._responses: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def track(self, response: Any) -> None:
        with self._lock:
            self._responses.add(response)

    def cut(self) -> None:
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _bound_params(settings: ModelSettings) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        params["max_tokens"] = settings.max_tokens
    return params


def _limit_for_other_servers(runnable: Runnable[Any, Any], limit: int | None) -> dict[str, Any]:
    """For a notebook's own ChatOpenAI pointed at a server other than OpenAI's: the answer
    limit also as ``max_tokens``, which llama.cpp, older vLLM, LM Studio and Ollama read
    (ChatOpenAI sends only ``max_completion_tokens``; see :mod:`ipy_stream.compat`)."""
    if limit is None:
        return {}
    from langchain_openai import ChatOpenAI

    from ipy_stream.compat import CompatChatOpenAI, is_openai_url

    model = unwrapped(runnable)  # ChatOpenAI(...).bind_tools(...) is a binding around it
    if not isinstance(model, ChatOpenAI) or isinstance(model, CompatChatOpenAI):
        return {}
    if model.use_responses_api:  # its limit, max_output_tokens, is read by every server
        return {}
    url = getattr(model.root_client, "base_url", None)  # as sent: OPENAI_BASE_URL included
    if is_openai_url(str(url) if url is not None else model.openai_api_base):
        return {}
    return {"extra_body": {**(model.extra_body or {}), "max_tokens": limit}}


def resolve_model(settings: ModelSettings, namespace: Mapping[str, Any]) -> ResolvedModel:
    """Build the model named by ``settings.name``; raise PromptError if it cannot be used."""
    name = settings.name.strip()
    if not name:
        raise PromptError(
            "No model given: use -m NAME, or set %config StreamMagics.model = 'NAME'."
        )
    if name == "demo":
        from ipy_stream import demo

        limit = settings.max_tokens
        model = demo.DemoChatModel(delay=demo.DEFAULT_DELAY, max_tokens=limit)
        applied = {} if limit is None else {"max_tokens": limit}
        return ResolvedModel(model, "demo (offline, no key needed)", applied=applied, is_demo=True)
    if name in namespace:
        value = namespace[name]
        if isinstance(value, Runnable):
            params = _bound_params(settings)
            extra = _limit_for_other_servers(value, settings.max_tokens)
            runnable = value.bind(**params, **extra) if params else value
            return ResolvedModel(
                runnable,
                _describe(name, value),
                applied=params,
                reports_usage=_is_chat_openai(value),
            )
        if name.isidentifier():
            raise PromptError(
                f"-m {name}: the variable '{name}' holds a {type(value).__name__}, "
                "not a LangChain chat model or Runnable."
            )
    return _openai_model(name, settings)


def unwrapped(runnable: object) -> object:
    """The model inside ``.bind(...)``, ``.bind_tools(...)``, ``.with_config(...)`` or
    ``.with_retry(...)``."""
    for _ in range(8):
        inner = getattr(runnable, "bound", None)
        if inner is None:
            break
        runnable = inner
    return runnable


def _is_chat_openai(value: Runnable[Any, Any]) -> bool:
    """A notebook's own ChatOpenAI (bound or not): its server reports usage, or the
    footer says the tokens were counted here."""
    from langchain_openai import ChatOpenAI

    return isinstance(unwrapped(value), ChatOpenAI)


def _describe(name: str, value: Runnable[Any, Any]) -> str:
    model_name = getattr(value, "model_name", None) or getattr(value, "model", None)
    return f"{name} ({model_name})" if isinstance(model_name, str) else name


def _openai_model(name: str, settings: ModelSettings) -> ResolvedModel:
    if not settings.api_key and not settings.base_url:
        if settings.from_default:
            raise PromptError(
                f"{name} (the default model, StreamMagics.model) needs OPENAI_API_KEY: set it "
                "(os.environ['OPENAI_API_KEY'] = ...), or point OPENAI_BASE_URL at a local "
                "OpenAI-compatible server, or pick another model with -m NAME in the cell "
                "(-m demo works offline) or %config StreamMagics.model = 'demo'."
            )
        raise PromptError(
            f"-m {name} needs OPENAI_API_KEY: set it (os.environ['OPENAI_API_KEY'] = ...), "
            "or point OPENAI_BASE_URL at a local OpenAI-compatible server, "
            "or try the offline model with -m demo."
        )
    import openai

    from ipy_stream.compat import CompatChatOpenAI, is_openai_url

    responses = _OpenResponses()
    http_client = openai.DefaultHttpxClient(event_hooks={"response": [responses.track]})
    model = CompatChatOpenAI(
        model=name,
        base_url=settings.base_url,
        is_openai=is_openai_url(settings.base_url),
        api_key=settings.api_key or _PLACEHOLDER_KEY,  # type: ignore[arg-type]
        temperature=settings.temperature,
        max_completion_tokens=settings.max_tokens,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        stream_usage=True,
        http_client=http_client,
    )
    applied = {
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "timeout": settings.timeout,
        "max_retries": settings.max_retries,
    }
    return ResolvedModel(
        model,
        name,
        settings.base_url,
        abort=responses.cut,
        close=http_client.close,
        applied=applied,
        reports_usage=True,
    )
