"""What today's OpenAI-compatible servers really do, and the small fixes ChatOpenAI needs.

* Thinking: vLLM, llama.cpp and DeepSeek stream it in the delta field
  ``reasoning_content``, Ollama and OpenRouter in ``reasoning``. ChatOpenAI drops both;
  :class:`CompatChatOpenAI` keeps it in the chunk's
  ``message.additional_kwargs["reasoning_content"]`` (a string, as LangChain's DeepSeek,
  Groq and xAI models do). The answer text is unchanged.
* The answer limit: ChatOpenAI sends only ``max_completion_tokens``, which OpenAI's
  reasoning models require (they refuse ``max_tokens``) but llama.cpp, older vLLM,
  LM Studio and Ollama ignore, streaming the whole answer. :class:`CompatChatOpenAI`
  also sends ``max_tokens`` to any server that is not OpenAI's.
* Refused parameters: :func:`refused_parameter` reads which request field a model
  refused from an HTTP 400, :func:`describe_refused` says in one line what to change.
* Refused images: :func:`describe_refused_images` recognises the errors of models and
  servers that do not read images, and says so in one line.

Importing this module imports ``langchain_openai``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import openai
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from ipy_stream.errors import clause

__all__ = [
    "REASONING_FIELDS",
    "CompatChatOpenAI",
    "describe_refused",
    "describe_refused_images",
    "is_openai_url",
    "reasoning_of",
    "refused_parameter",
]

REASONING_FIELDS = ("reasoning_content", "reasoning")
"""Message and delta fields that carry a model's thinking, in the order they are read:
``reasoning_content`` (vLLM, llama.cpp, DeepSeek), ``reasoning`` (Ollama, OpenRouter).
Servers that send both send the same text, so only the first non-empty one is kept."""


def is_openai_url(base_url: str | None) -> bool:
    """Whether *base_url* is OpenAI's own API: none at all (the client's default) or a
    host under ``openai.com`` (``api.openai.com``, regional ``us.api.openai.com``)."""
    if base_url is None or not base_url.strip():
        return True
    url = base_url.strip()
    host = urlsplit(url if "://" in url else "//" + url).hostname or ""
    return host == "openai.com" or host.endswith(".openai.com")


def reasoning_of(fields: Mapping[str, Any]) -> str | None:
    """The thinking in a message or delta, read from :data:`REASONING_FIELDS`."""
    for name in REASONING_FIELDS:
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value
    return None


class CompatChatOpenAI(ChatOpenAI):
    """ChatOpenAI that keeps streamed thinking and sends a limit every server honours.

    * Thinking in a delta's ``reasoning_content`` or ``reasoning`` field goes to the
      chunk's ``message.additional_kwargs["reasoning_content"]`` (merged chunks
      concatenate it); non-streamed replies get it the same way.
    * The answer limit (``max_completion_tokens=`` / ``max_tokens=``, in the constructor
      or bound per call) is sent as ``max_completion_tokens`` only to OpenAI, and as both
      ``max_completion_tokens`` and ``max_tokens`` to any other server.

    Everything else, including the Responses API, is ChatOpenAI's.
    """

    is_openai: bool | None = None
    """Whether the server is OpenAI's own API; ``None`` decides from the base URL the
    client really uses (see :func:`is_openai_url`)."""

    def talks_to_openai(self) -> bool:
        """Whether requests go to OpenAI's own API (``is_openai``, else the base URL)."""
        if self.is_openai is not None:
            return self.is_openai
        client = self.root_client if self.root_client is not None else self.root_async_client
        url = getattr(client, "base_url", None)
        return is_openai_url(str(url) if url is not None else self.openai_api_base)

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        # ChatOpenAI has already turned max_tokens into max_completion_tokens. Chat
        # Completions payloads carry "messages"; the Responses API has its own field.
        limit = payload.get("max_completion_tokens")
        if "messages" in payload and limit is not None and not self.talks_to_openai():
            payload["max_tokens"] = limit
        return payload

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict[str, Any],
        default_chunk_class: type,
        base_generation_info: dict[str, Any] | None,
    ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        if generation is None or not isinstance(generation.message, AIMessageChunk):
            return generation
        choices = chunk.get("choices") or (chunk.get("chunk") or {}).get("choices") or []
        delta = choices[0].get("delta") if choices and isinstance(choices[0], Mapping) else None
        if isinstance(delta, Mapping) and (thought := reasoning_of(delta)):
            generation.message.additional_kwargs["reasoning_content"] = thought
        return generation

    def _create_chat_result(
        self,
        response: dict[str, Any] | openai.BaseModel,
        generation_info: dict[str, Any] | None = None,
    ) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        if isinstance(response, dict):
            choices = response.get("choices") or []
        else:
            choices = getattr(response, "choices", None) or []
        for generation, choice in zip(result.generations, choices, strict=False):
            if isinstance(choice, Mapping):
                message = choice.get("message")
            else:
                message = getattr(choice, "message", None)
            if message is None:
                continue
            fields = (
                message
                if isinstance(message, Mapping)
                else {name: getattr(message, name, None) for name in REASONING_FIELDS}
            )
            thought = reasoning_of(fields)
            if thought and isinstance(generation.message, AIMessage):
                generation.message.additional_kwargs["reasoning_content"] = thought
        return result


# -- parameters a model refuses ------------------------------------------------------

_UNSUPPORTED_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
_PARAM = r"[A-Za-z_][\w.\[\]-]{0,63}"
_NAME_RE = re.compile(rf"{_PARAM}\Z")
# "Unsupported parameter: 'max_tokens' is not supported with this model. ..." and
# "Unsupported value: 'temperature' does not support 0.2 with this model. ...", or the
# same without the prefix. Anchored at the start, so "'response_format' of type
# 'json_schema' is not supported" names no parameter.
_MESSAGE_RE = re.compile(
    rf"^\s*(?:Unsupported (?:parameter|value):\s*)?'({_PARAM})'"
    r"\s+(?:is not supported|does not support)",
    re.IGNORECASE,
)
_SDK_PREFIX_RE = re.compile(r"^Error code: \d+ - ")

_OPTIONS: dict[str, tuple[str, str]] = {
    "temperature": ("-t", "StreamMagics.temperature"),
    "max_tokens": ("--max-tokens", "StreamMagics.max_tokens"),
    "max_completion_tokens": ("--max-tokens", "StreamMagics.max_tokens"),
    "max_output_tokens": ("--max-tokens", "StreamMagics.max_tokens"),
}


def refused_parameter(exc: BaseException) -> str | None:
    """The request parameter a model refused, for an ``openai.BadRequestError`` that says
    one is unsupported; ``None`` for any other error.

    Reads OpenAI's error body (``code`` ``"unsupported_parameter"`` or
    ``"unsupported_value"`` with ``param``), else a message such as ``"Unsupported
    parameter: 'max_tokens' is not supported with this model."`` or ``"'temperature'
    does not support 0.2 with this model."``
    """
    if not isinstance(exc, openai.BadRequestError):
        return None
    body = exc.body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]  # the whole response body rather than its "error" part
    error: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    param = error.get("param")
    if error.get("code") in _UNSUPPORTED_CODES and isinstance(param, str) and _NAME_RE.match(param):
        return param
    messages = [error.get("message"), _SDK_PREFIX_RE.sub("", exc.message)]
    if isinstance(body, str):
        messages.append(body)
    for message in messages:
        if isinstance(message, str) and (match := _MESSAGE_RE.match(message)):
            return match.group(1)
    return None


def describe_refused(param: str, model: str) -> str:
    """One line naming the parameter *model* refused and what to do about it.

    ``describe_refused("temperature", "gpt-5")`` gives ``"gpt-5 does not accept
    temperature: leave out -t (and set StreamMagics.temperature = None)."``
    """
    who = model.strip() or "The model"
    option = _OPTIONS.get(param)
    if option is not None:
        flag, trait = option
        return f"{who} does not accept {param}: leave out {flag} (and set {trait} = None)."
    return f"{who} does not accept the parameter '{param}': leave it out of the model's settings."


# -- images a model refuses ----------------------------------------------------------

# OpenAI: "Invalid content type. image_url is only supported by certain models.";
# llama.cpp: "image input is not supported - hint: ... mmproj"; LM Studio, Ollama:
# "... does not support images"; vLLM: "... is not a multimodal model".
_IMAGES_REFUSED_RE = re.compile(
    r"image[\w\s]{0,40}?(?:not supported|only supported|unsupported|not allowed)"
    r"|(?:does not|doesn't|do not|cannot|can't) (?:support|accept|take|process|read)"
    r"[\w\s]{0,20}?image"
    r"|not a multimodal model|vision is not (?:supported|enabled)",
    re.IGNORECASE,
)


def _server_message(exc: BaseException) -> str:
    """The error's own words: OpenAI's ``error.message`` when there is one."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return str(body["message"])
    text = str(getattr(exc, "message", "") or exc)
    return _SDK_PREFIX_RE.sub("", text)


def describe_refused_images(exc: BaseException, model: str, names: tuple[str, ...]) -> str | None:
    """One line when *exc* says that *model* does not read images, else None.

    ``names`` are the variables sent as images, e.g. ``("fig",)``.
    """
    if getattr(exc, "status_code", None) in (401, 403):
        return None  # some servers quote part of the key in these: never echoed
    said = _server_message(exc).strip()
    if not _IMAGES_REFUSED_RE.search(said):
        return None
    first = said.splitlines()[0].strip() if said else ""
    if len(first) > 160:
        first = first[:159].rstrip(" .;:,") + "…"
    shown = ", ".join(f"{{{name}}}" for name in names)
    return (
        f"{model.strip() or 'The model'} does not read images ({clause(first)}): "
        f"send {shown} to a model that does (e.g. gpt-4o-mini, or a vision model on your "
        "server), or leave it out of the prompt."
    )
