"""The Responses API: ``POST /v1/responses``, what ``ChatOpenAI(use_responses_api=True)``
calls (and what OpenAI's reasoning models stream their reasoning summaries through).

A streamed response is a series of Server-Sent Events (``event: TYPE`` and ``data: JSON``,
each with a ``sequence_number``), in the shapes of ``openai.types.responses``:

* ``response.created``, ``response.in_progress``;
* with knob ``reasoning``, a ``reasoning`` output item whose summary is streamed in parts
  (one per paragraph of the knob's text, split at blank lines, as OpenAI sends its
  summaries): ``response.reasoning_summary_part.added``, one
  ``response.reasoning_summary_text.delta`` per token, ``...text.done``, ``...part.done``,
  then ``response.output_item.done``;
* a ``message`` output item (left out when the reply is only tool calls):
  ``response.content_part.added``, one ``response.output_text.delta`` per token,
  ``response.output_text.done``, ``response.content_part.done``, ``...output_item.done``;
* with knob ``tool_calls``, a ``function_call`` output item per call: its arguments in
  pieces as ``response.function_call_arguments.delta``, then ``...arguments.done`` and
  ``...output_item.done``;
* ``response.completed`` with the whole response and its ``usage`` (``null`` when knob
  ``usage`` is False), or ``response.incomplete`` (``incomplete_details.reason:
  "max_output_tokens"``) when ``max_output_tokens``, the Responses API's limit, cut it.

Every delta is paced by knob ``rate``; the other knobs act as on chat completions (errors,
refused parameters and images, ``text``, ``echo``, the malformed / stall / drop hooks
before answer token N). A non-streamed request gets the final response object as JSON.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

from .protocol import dumps
from .replies import count_prompt_tokens, plan, valid_limit
from .transport import Connection

if TYPE_CHECKING:
    from .knobs import Knobs
    from .records import RequestRecord
    from .replies import Plan, PlannedCall


def summary_parts(tokens: list[str]) -> list[list[str]]:
    """Reasoning tokens grouped into summary parts: a token that starts with a blank line
    starts a new part, without that leading whitespace (the parts are the paragraphs)."""
    parts: list[list[str]] = [[]]
    for token in tokens:
        stripped = token.lstrip()
        if parts[-1] and "\n\n" in token[: len(token) - len(stripped)]:
            parts.append([stripped] if stripped else [])
        else:
            parts[-1].append(token)
    return [part for part in parts if part]


def usage_of(body: dict[str, Any], output: Plan) -> dict[str, Any]:
    """The ``usage`` of a response to *body*."""
    prompt = count_prompt_tokens(body)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": len(output.reasoning)},
        "total_tokens": prompt + output.completion_tokens,
    }


class ResponseState:
    """One response's ids, its output items as they complete, and its event numbering."""

    def __init__(self, number: int, body: dict[str, Any], output: Plan) -> None:
        self.id = f"resp_test{number}"
        self.reasoning_id = f"rs_test{number}"
        self.message_id = f"msg_test{number}"
        self.body = body
        self.output = output
        self.items: list[dict[str, Any]] = []
        """Output items done so far."""
        self.created_at = time.time()
        self._sequence = itertools.count()

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next event of the stream."""
        return {"type": kind, "sequence_number": next(self._sequence), **fields}

    @property
    def output_index(self) -> int:
        """``output_index`` of the item being streamed."""
        return len(self.items)

    def snapshot(self, status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        """The response object, as ``response.*`` events and non-streamed replies carry."""
        body = self.body
        cut = status == "incomplete"
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": str(body.get("model") or "gpt-4o-mini"),
            "output": list(self.items),
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None, **(reasoning or {})},
            "service_tier": "default",
            "store": body.get("store", True) is not False,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def final_items(self, knobs: Knobs) -> list[dict[str, Any]]:
        """Every output item, done (for a non-streamed reply)."""
        out = self.output
        if knobs.reasoning is not None:
            parts = ["".join(part) for part in summary_parts(out.reasoning)]
            self.items.append(self.reasoning_item(parts))
        if out.tokens or not out.calls:
            self.items.append(self.message_item("".join(out.tokens), _status(out)))
        for number, call in enumerate(out.calls):
            self.items.append(self.call_item(number, call, done=True))
        return self.items

    def reasoning_item(self, parts: list[str]) -> dict[str, Any]:
        summary = [{"type": "summary_text", "text": text} for text in parts]
        return {"id": self.reasoning_id, "type": "reasoning", "summary": summary}

    def message_item(self, text: str | None, status: str) -> dict[str, Any]:
        content = [] if text is None else [output_text(text)]
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def call_item(self, number: int, call: PlannedCall, *, done: bool) -> dict[str, Any]:
        return {
            "id": f"fc_{self.id.removeprefix('resp_')}_{number}",
            "type": "function_call",
            "status": "completed" if done else "in_progress",
            "arguments": call.arguments if done else "",
            "call_id": call.id,
            "name": call.name,
        }


def output_text(text: str) -> dict[str, Any]:
    """An ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponsesEndpoint(Connection):
    """``POST /v1/responses``; the handler's ``_admitted`` does the checks common to both
    endpoints (bad body, refused parameters or images, injected HTTP errors)."""

    def _admitted(
        self, record: RequestRecord, body: dict[str, Any] | None, messages_field: str
    ) -> Knobs | None:
        """Defined by the handler."""
        raise NotImplementedError

    def _responses(self, record: RequestRecord, body: dict[str, Any] | None) -> None:
        knobs = self._admitted(record, body, "input")
        if knobs is None or body is None:
            return
        number = next(self._ids)
        limit = valid_limit(body.get("max_output_tokens"))
        response = ResponseState(number, body, plan(knobs, body, limit, f"test{number}"))
        self.owner._update(record, planned_tokens=len(response.output.tokens))
        if record.stream:
            self._stream_response(record, knobs, response)
            return
        out = response.output
        if knobs.rate > 0 and out.completion_tokens:
            self._wait_until(time.monotonic() + out.completion_tokens / knobs.rate)
        response.final_items(knobs)
        self.owner._update(
            record,
            tokens_sent=len(out.tokens),
            text_parts=["".join(out.tokens)],
            token_times=[time.monotonic()] * len(out.tokens),
            reasoning_sent=len(out.reasoning),
            tool_calls_sent=[
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in out.calls
            ],
        )
        payload = response.snapshot(_status(out), usage_of(body, out))
        self._mark_completed(record, lambda: self._send_json(200, payload, record))

    def _send(self, event: dict[str, Any]) -> None:
        self._write_chunk(_sse(event))

    def _stream_response(
        self, record: RequestRecord, knobs: Knobs, response: ResponseState
    ) -> None:
        self._start_events(record, f"req_{response.id}")
        self._start_pace(knobs.rate)
        for kind in ("response.created", "response.in_progress"):
            self._send(response.event(kind, response=response.snapshot("in_progress", None)))
        if knobs.reasoning is not None:
            self._stream_reasoning(record, response)
        if not self._stream_message(record, knobs, response):
            return
        for number, call in enumerate(response.output.calls):
            self._stream_call(record, response, number, call)

        out = response.output
        status = _status(out)
        usage = usage_of(response.body, out) if knobs.usage else None
        final = response.event(f"response.{status}", response=response.snapshot(status, usage))
        # One write for the last event and the terminating chunk (see chat completions).
        self._mark_completed(record, lambda: self._write_chunk(_sse(final), last=True))

    def _stream_call(
        self, record: RequestRecord, response: ResponseState, number: int, call: PlannedCall
    ) -> None:
        index = response.output_index
        item = response.call_item(number, call, done=False)
        self._send(response.event("response.output_item.added", output_index=index, item=item))
        self.owner._tool_call_opened(record, call.id, call.name)
        where = {"item_id": item["id"], "output_index": index}
        for piece in call.pieces:
            self._paced()
            self._send(
                response.event("response.function_call_arguments.delta", **where, delta=piece)
            )
            self.owner._tool_call_piece(record, piece)
        arguments = {"name": call.name, "arguments": call.arguments}
        self._send(response.event("response.function_call_arguments.done", **where, **arguments))
        done = response.call_item(number, call, done=True)
        self._send(response.event("response.output_item.done", output_index=index, item=done))
        response.items.append(done)

    def _stream_reasoning(self, record: RequestRecord, response: ResponseState) -> None:
        index = response.output_index
        item_id = response.reasoning_id
        added = response.reasoning_item([])
        self._send(response.event("response.output_item.added", output_index=index, item=added))
        texts: list[str] = []
        for part_number, part in enumerate(summary_parts(response.output.reasoning)):
            where = {"item_id": item_id, "output_index": index, "summary_index": part_number}
            empty = {"type": "summary_text", "text": ""}
            self._send(response.event("response.reasoning_summary_part.added", **where, part=empty))
            for token in part:
                self._paced()
                self._send(
                    response.event("response.reasoning_summary_text.delta", **where, delta=token)
                )
                self.owner._update(record, reasoning_sent=record.reasoning_sent + 1)
            text = "".join(part)
            texts.append(text)
            self._send(response.event("response.reasoning_summary_text.done", **where, text=text))
            whole = {"type": "summary_text", "text": text}
            self._send(response.event("response.reasoning_summary_part.done", **where, part=whole))
        done = response.reasoning_item(texts)
        self._send(response.event("response.output_item.done", output_index=index, item=done))
        response.items.append(done)

    def _stream_message(self, record: RequestRecord, knobs: Knobs, response: ResponseState) -> bool:
        """The message item, with the hooks before each answer token; False if dropped."""
        tokens = response.output.tokens
        if not tokens and response.output.calls:
            return self._faults(record, knobs, 0)
        index = response.output_index
        item_id = response.message_id
        added = response.message_item(None, "in_progress")
        self._send(response.event("response.output_item.added", output_index=index, item=added))
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        part = output_text("")
        self._send(response.event("response.content_part.added", **where, part=part))
        for position in range(len(tokens) + 1):
            if not self._faults(record, knobs, position):
                return False
            if position == len(tokens):
                break
            self._paced()
            token = tokens[position]
            self._send(
                response.event("response.output_text.delta", **where, delta=token, logprobs=[])
            )
            self.owner._token_sent(record, token)
        text = "".join(tokens)
        self._send(response.event("response.output_text.done", **where, text=text, logprobs=[]))
        self._send(response.event("response.content_part.done", **where, part=output_text(text)))
        done = response.message_item(text, _status(response.output))
        self._send(response.event("response.output_item.done", output_index=index, item=done))
        response.items.append(done)
        return True


def _status(output: Plan) -> str:
    return "incomplete" if output.finish_reason == "length" else "completed"


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode()
