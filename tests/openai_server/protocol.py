"""The OpenAI wire format: paths, error bodies, completion chunks, JSON in and out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .replies import PlannedCall

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
"""Path of the chat completions endpoint (what :class:`RequestRecord.path` holds)."""

RESPONSES_PATH = "/v1/responses"
"""Path of the Responses API endpoint."""

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)
"""Request headers that are never recorded."""

MALFORMED_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [<<not json>>\n\n'
"""The ``data:`` line that is not JSON (knob ``malformed_after``)."""

_ERROR_DETAILS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Simulated bad request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM). Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass
class Reply:
    """Everything needed to send one successful completion."""

    tokens: list[str]
    finish_reason: str
    meta: dict[str, Any]
    usage: dict[str, Any]
    include_usage: bool
    reasoning: list[str] = field(default_factory=list)
    """Thinking tokens, sent before the answer (knob ``reasoning``)."""
    calls: list[PlannedCall] = field(default_factory=list)
    """Tool calls, sent after the answer (knob ``tool_calls``)."""

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        """A ``chat.completion.chunk`` event with one choice carrying *delta*."""
        out: dict[str, Any] = {
            **self.meta,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            out["usage"] = None
        return out


def tool_call_start(index: int, call: PlannedCall) -> dict[str, Any]:
    """The delta that opens tool call *index*: its id and name, no arguments yet."""
    opened = {"name": call.name, "arguments": ""}
    return {"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": opened}]}


def tool_call_piece(index: int, piece: str) -> dict[str, Any]:
    """A delta with one piece of tool call *index*'s arguments (and nothing else)."""
    return {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def message_tool_calls(calls: list[PlannedCall]) -> list[dict[str, Any]]:
    """``message.tool_calls`` of a non-streamed reply."""
    return [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in calls
    ]


def dumps(payload: object) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def parse_object(raw: bytes) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def error_body(
    message: str | None,
    status: int,
    param: str | None = None,
    *,
    model: str = "gpt-4o-mini",
    key: str = "sk-...",
) -> dict[str, Any]:
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    err_type, code, template = _ERROR_DETAILS.get(
        status, (default_type, None, f"Simulated HTTP {status} error.")
    )
    text = message if message is not None else template.format(model=model, key=key)
    return {"error": {"message": text, "type": err_type, "param": param, "code": code}}


def unsupported_parameter_body(param: str) -> dict[str, Any]:
    """OpenAI's 400 body for a request field the model does not support."""
    return {
        "error": {
            "message": f"Unsupported parameter: '{param}' is not supported with this model.",
            "type": "invalid_request_error",
            "param": param,
            "code": "unsupported_parameter",
        }
    }


def image_refused_body(param: str) -> dict[str, Any]:
    """OpenAI's 400 body for an image sent to a model that does not read images."""
    return {
        "error": {
            "message": "Invalid content type. image_url is only supported by certain models.",
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    }
