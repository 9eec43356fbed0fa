"""Routing and the endpoints: models, chat completions (streamed or not), control; the
Responses API is in :mod:`.responses_api`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .protocol import (
    CHAT_COMPLETIONS_PATH,
    RESPONSES_PATH,
    SECRET_HEADERS,
    Reply,
    dumps,
    error_body,
    image_refused_body,
    message_tool_calls,
    parse_object,
    tool_call_piece,
    tool_call_start,
    unsupported_parameter_body,
)
from .records import RequestRecord
from .replies import answer_limit, chat_messages, count_prompt_tokens, first_image_part, plan
from .responses_api import ResponsesEndpoint
from .transport import ClientGoneError, StoppingError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .knobs import Knobs


class Handler(ResponsesEndpoint):
    """Per-connection request handler: routes requests to the endpoints."""

    # -- routing ------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        """Serve models and control reads."""
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/_control/knobs":
            self._send_json(200, {"knobs": self.owner.knobs.to_json()})
            return
        if path == "/_control/requests":
            with self.owner._cond:  # a consistent snapshot of the live records
                records = [r.to_json() for r in self.owner.requests]
            self._send_json(200, {"requests": records})
            return
        record = self._new_record(None)
        self._guarded(record, lambda: self._get(path, record))

    def _get(self, path: str, record: RequestRecord) -> None:
        if path == "/v1/models":
            now = int(time.time())
            data = [
                {"id": m, "object": "model", "created": now, "owned_by": "openai"}
                for m in self.owner.models
            ]
            self._mark_completed(
                record, lambda: self._send_json(200, {"object": "list", "data": data}, record)
            )
        elif path.startswith("/v1/models/"):
            model = path.removeprefix("/v1/models/")
            if model in self.owner.models:
                payload = {"id": model, "object": "model", "created": 0, "owned_by": "openai"}
                self._mark_completed(record, lambda: self._send_json(200, payload, record))
            else:
                self._send_error(404, record, model=model)
        else:
            self._send_invalid_url(record)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        """Serve chat completions, responses and control writes."""
        path = self.path.split("?", 1)[0].rstrip("/")
        raw = self._read_body()
        if path.startswith("/_control/"):
            self._control(path, raw)
            return
        body = parse_object(raw)
        record = self._new_record(body)
        if path == CHAT_COMPLETIONS_PATH:
            self._guarded(record, lambda: self._chat_completions(record, body))
        elif path == RESPONSES_PATH:
            self._guarded(record, lambda: self._responses(record, body))
        else:
            self._guarded(record, lambda: self._send_invalid_url(record))

    def _guarded(self, record: RequestRecord, action: Callable[[], None]) -> None:
        """Run *action* for *record*, turning disconnects/shutdown into record fields."""
        try:
            action()
        except ClientGoneError:
            self.owner._update(
                record,
                client_closed=not record.completed,
                error=record.error or "client closed the connection",
            )
            self.close_connection = True
        except StoppingError:
            self.owner._update(record, error="server shut down")
            self.close_connection = True
        except Exception as exc:
            self.owner._update(record, error=f"server bug: {exc!r}")
            self.close_connection = True
            raise
        finally:
            self.owner._finish_record(record)

    # -- control ------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        if path == "/_control/reset":
            self.owner.reset()
            self._send_json(200, {"knobs": self.owner.knobs.to_json()})
            return
        if path == "/_control/configure":
            body = parse_object(raw)
            if body is None:
                self._send_json(400, error_body("Body must be a JSON object.", 400))
                return
            try:
                knobs = self.owner.configure(**body)
            except (TypeError, ValueError) as exc:
                self._send_json(400, error_body(str(exc), 400))
                return
            self._send_json(200, {"knobs": knobs.to_json()})
            return
        self._send_json(404, error_body(f"Invalid URL (POST {path})", 404))

    # -- chat completions -----------------------------------------------------------

    def _admitted(
        self, record: RequestRecord, body: dict[str, Any] | None, messages_field: str
    ) -> Knobs | None:
        """The knobs to answer *body* with, or None when it was answered with an error:
        a bad body, a refused parameter or image, or an injected HTTP error."""
        if body is None:
            message = "We could not parse the JSON body of your request."
            self._send_json(400, error_body(message, 400), record)
            return None
        if not chat_messages(body):
            message = f"'{messages_field}' must be a non-empty array of objects."
            self._send_json(400, error_body(message, 400, messages_field), record)
            return None
        self.owner._update(record, stream=body.get("stream") is True)
        refused = [name for name in self.owner.knobs.refuse_params if name in body]
        if refused:
            self.owner._update(record, error=f"HTTP 400 (unsupported parameter {refused[0]})")
            self._send_json(400, unsupported_parameter_body(refused[0]), record)
            return None
        image = first_image_part(body) if self.owner.knobs.refuse_images else None
        if image is not None:
            self.owner._update(record, error="HTTP 400 (image input not supported)")
            self._send_json(400, image_refused_body(image), record)
            return None
        knobs, fail = self.owner._admit()
        if fail and knobs.status is not None:
            extra: dict[str, str] = {}
            if knobs.status == 429 and knobs.retry_after is not None:
                extra["retry-after"] = f"{knobs.retry_after:g}"
                extra["retry-after-ms"] = str(round(knobs.retry_after * 1000))
            model = str(body.get("model") or "gpt-4o-mini")
            self._send_error(knobs.status, record, model=model, extra_headers=extra)
            return None
        return knobs

    def _chat_completions(self, record: RequestRecord, body: dict[str, Any] | None) -> None:
        knobs = self._admitted(record, body, "messages")
        if knobs is None or body is None:
            return
        number = next(self._ids)
        output = plan(knobs, body, answer_limit(knobs, body), f"test{number}")
        prompt_tokens = count_prompt_tokens(body)
        stream_options = body.get("stream_options")
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": output.completion_tokens,
            "total_tokens": prompt_tokens + output.completion_tokens,
        }
        if knobs.reasoning is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": len(output.reasoning)}
        reply = Reply(
            tokens=output.tokens,
            finish_reason=output.finish_reason,
            meta={
                "id": f"chatcmpl-test{number}",
                "created": int(time.time()),
                "model": str(body.get("model") or "gpt-4o-mini"),
                "system_fingerprint": "fp_test",
            },
            usage=usage,
            include_usage=knobs.usage
            and isinstance(stream_options, dict)
            and bool(stream_options.get("include_usage")),
            reasoning=output.reasoning,
            calls=output.calls,
        )
        self.owner._update(record, planned_tokens=len(output.tokens))
        if record.stream:
            self._stream(record, knobs, reply)
        else:
            self._complete(record, knobs, reply)

    def _complete(self, record: RequestRecord, knobs: Knobs, reply: Reply) -> None:
        sent = len(reply.reasoning) + len(reply.tokens) + sum(len(c.pieces) for c in reply.calls)
        if knobs.rate > 0 and sent:
            self._wait_until(time.monotonic() + sent / knobs.rate)
        text = "".join(reply.tokens)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": [],
        }
        if knobs.reasoning is not None:
            message[knobs.reasoning_field] = "".join(reply.reasoning)
        if reply.calls:
            message["tool_calls"] = message_tool_calls(reply.calls)
        payload = {
            **reply.meta,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": reply.usage,
            "service_tier": "default",
        }
        self.owner._update(
            record,
            tokens_sent=len(reply.tokens),
            text_parts=[text],
            token_times=[time.monotonic()] * len(reply.tokens),
            reasoning_sent=len(reply.reasoning),
            tool_calls_sent=[
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.calls
            ],
        )
        self._mark_completed(record, lambda: self._send_json(200, payload, record))

    def _stream(self, record: RequestRecord, knobs: Knobs, reply: Reply) -> None:
        self._start_events(record, f"req_{reply.meta['id']}")
        tokens = reply.tokens
        self._write_event(reply.chunk({"role": "assistant", "content": "", "refusal": None}))
        self._start_pace(knobs.rate)
        for thought in reply.reasoning:
            self._paced()
            self._write_event(reply.chunk({"content": None, knobs.reasoning_field: thought}))
            self.owner._update(record, reasoning_sent=record.reasoning_sent + 1)
        for index in range(len(tokens) + 1):
            if not self._faults(record, knobs, index):
                return
            if index == len(tokens):
                break
            self._paced()
            self._write_event(reply.chunk({"content": tokens[index]}))
            self.owner._token_sent(record, tokens[index])
        for number, call in enumerate(reply.calls):
            self._write_event(reply.chunk(tool_call_start(number, call)))
            self.owner._tool_call_opened(record, call.id, call.name)
            for piece in call.pieces:
                self._paced()
                self._write_event(reply.chunk(tool_call_piece(number, piece)))
                self.owner._tool_call_piece(record, piece)

        tail = [reply.chunk({}, reply.finish_reason)]
        if reply.include_usage:
            tail.append({**reply.meta, "object": "chat.completion.chunk", "choices": []})
            tail[-1]["usage"] = reply.usage
        data = b"".join(f"data: {dumps(event)}\n\n".encode() for event in tail)
        # One write for the tail, [DONE] and the terminating chunk: a client that closes
        # right after [DONE] cannot make a later write fail and look like an interruption.
        # The record is marked first so it is already final when the client sees [DONE].
        self._mark_completed(
            record, lambda: self._write_chunk(data + b"data: [DONE]\n\n", last=True)
        )

    # -- records --------------------------------------------------------------------

    def _new_record(self, body: dict[str, Any] | None) -> RequestRecord:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            if name.lower() not in SECRET_HEADERS:
                headers[name.lower()] = value
        auth = self.headers.get("Authorization")
        record = RequestRecord(
            method=self.command,
            path=self.path.split("?", 1)[0],
            headers=headers,
            auth_present=auth is not None,
            auth_last4=auth[-4:] if auth is not None else None,
            body=body,
        )
        self.owner._add_record(record)
        return record
