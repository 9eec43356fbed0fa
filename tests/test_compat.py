"""What today's servers really stream, over real HTTP against the project's test server:
thinking in ``reasoning_content`` / ``reasoning``, which answer-limit field a server
honours, missing usage, refused parameters; and the test server's knobs that act them out.

Nothing here touches the internet: every client talks to 127.0.0.1, or only builds a
request payload.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.runnables import Runnable
from pydantic import SecretStr

from ipy_stream.compat import (
    CompatChatOpenAI,
    describe_refused,
    is_openai_url,
    reasoning_of,
    refused_parameter,
)
from tests.openai_server import (
    Knobs,
    StreamServer,
    generate_reply,
    remote_configure,
    remote_reset,
    tokenize,
)
from tests.support import API_KEY, MODEL, USER, make_chat, make_client, only_completion, open_stream

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

pytestmark = pytest.mark.usefixtures("offline_clients")

THINKING = "The user greets me, so I greet them back."
ANSWER = "Hello! How can I help?"


class ChunkRecorder(BaseCallbackHandler):
    """What a callback handler sees: every token and the chunk it came with."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.chunks: list[ChatGenerationChunk] = []

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        **kwargs: Any,
    ) -> None:
        assert isinstance(token, str)
        self.tokens.append(token)
        assert isinstance(chunk, ChatGenerationChunk)
        self.chunks.append(chunk)

    @property
    def answer(self) -> str:
        return "".join(self.tokens)

    @property
    def thoughts(self) -> list[str]:
        """The reasoning of each chunk that carried some, in order."""
        found = (c.message.additional_kwargs.get("reasoning_content") for c in self.chunks)
        return [text for text in found if text]


def compat(server: StreamServer, **kwargs: Any) -> CompatChatOpenAI:
    """CompatChatOpenAI pointed at *server*, no retries."""
    kwargs.setdefault("max_retries", 0)
    return CompatChatOpenAI(
        base_url=server.base_url, api_key=SecretStr(API_KEY), model=MODEL, **kwargs
    )


def stream(model: Runnable[Any, Any]) -> tuple[ChunkRecorder, list[BaseMessageChunk]]:
    """Stream "hi" through *model*; what the callback saw and the chunks it yielded."""
    recorder = ChunkRecorder()
    chunks = list(model.stream("hi", config={"callbacks": [recorder]}))
    return recorder, chunks


def merged(chunks: list[BaseMessageChunk]) -> AIMessageChunk:
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    return total


def sent_body(server: StreamServer) -> dict[str, Any]:
    body = only_completion(server).body
    assert body is not None
    return body


def limit_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("max_tokens", "max_completion_tokens") if k in body}


def bad_request(message: str, body: object) -> openai.BadRequestError:
    """A BadRequestError as the openai client raises it (``body`` is the "error" part)."""
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(400, request=request)
    return openai.BadRequestError(message, response=response, body=body)


# --------------------------------------------------------------------------- reasoning


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_streamed_reasoning_reaches_the_chunks_and_the_answer_is_unchanged(
    server: StreamServer, field: str
) -> None:
    server.configure(text=ANSWER, reasoning=THINKING, reasoning_field=field, rate=0)
    before, _ = stream(make_chat(server))
    server.reset()
    server.configure(text=ANSWER, reasoning=THINKING, reasoning_field=field, rate=0)

    after, chunks = stream(compat(server))

    # ChatOpenAI drops the thinking; CompatChatOpenAI keeps it, one piece per chunk.
    assert before.thoughts == []
    assert after.thoughts == tokenize(THINKING)
    # The answer is exactly what ChatOpenAI gave, token for token (thinking chunks bring
    # empty tokens, as they did before).
    assert after.tokens == before.tokens
    assert after.answer == ANSWER
    # All thinking arrives before the first answer token.
    carried = [bool(c.message.additional_kwargs.get("reasoning_content")) for c in after.chunks]
    first_answer = next(i for i, token in enumerate(after.tokens) if token)
    assert max(i for i, thought in enumerate(carried) if thought) < first_answer
    # Merged, the message holds the whole thinking and the plain answer.
    total = merged(chunks)
    assert total.content == ANSWER
    assert total.additional_kwargs["reasoning_content"] == THINKING
    assert only_completion(server).reasoning_sent == len(tokenize(THINKING))


def test_reasoning_in_a_non_streamed_reply_is_kept(server: StreamServer) -> None:
    server.configure(text=ANSWER, reasoning=THINKING, reasoning_field="reasoning", rate=0)
    message = compat(server).invoke("hi")
    assert isinstance(message, AIMessage)
    assert message.content == ANSWER
    assert message.additional_kwargs["reasoning_content"] == THINKING


def test_without_reasoning_nothing_is_added(server: StreamServer) -> None:
    server.configure(tokens=6, rate=0)
    recorder, chunks = stream(compat(server))
    assert recorder.answer == "".join(generate_reply(6))
    assert all("reasoning_content" not in c.message.additional_kwargs for c in recorder.chunks)
    assert "reasoning_content" not in merged(chunks).additional_kwargs


def test_reasoning_of_reads_the_first_non_empty_field() -> None:
    assert reasoning_of({"reasoning_content": "a", "reasoning": "a"}) == "a"
    assert reasoning_of({"reasoning_content": None, "reasoning": "b"}) == "b"
    assert reasoning_of({"reasoning_content": "", "content": "x"}) is None
    assert reasoning_of({"reasoning": {"effort": "low"}}) is None


# --------------------------------------------------------------------------- answer limit


def test_plain_chatopenai_limit_is_ignored_by_a_server_that_reads_max_tokens(
    server: StreamServer,
) -> None:
    """The bug: ChatOpenAI sends only max_completion_tokens, which llama.cpp ignores."""
    server.configure(tokens=40, rate=0, limit_param="max_tokens")
    recorder, _ = stream(make_chat(server, max_completion_tokens=12))
    assert limit_fields(sent_body(server)) == {"max_completion_tokens": 12}
    assert recorder.answer == "".join(generate_reply(40))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda s: compat(s, max_completion_tokens=12), id="max_completion_tokens="),
        pytest.param(lambda s: compat(s, max_tokens=12), id="max_tokens="),
        pytest.param(lambda s: compat(s).bind(max_tokens=12), id="bind(max_tokens)"),
        pytest.param(
            lambda s: compat(s).bind(max_completion_tokens=12), id="bind(max_completion_tokens)"
        ),
    ],
)
@pytest.mark.parametrize("limit_param", ["max_tokens", "max_completion_tokens", "any"])
def test_compat_limit_is_honoured_by_every_server(
    server: StreamServer, build: Any, limit_param: str
) -> None:
    server.configure(tokens=40, rate=0, limit_param=limit_param)
    recorder, chunks = stream(build(server))
    assert limit_fields(sent_body(server)) == {"max_tokens": 12, "max_completion_tokens": 12}
    assert recorder.answer == "".join(generate_reply(12))
    assert merged(chunks).response_metadata["finish_reason"] == "length"


def test_openai_gets_only_max_completion_tokens(server: StreamServer) -> None:
    model = compat(server, is_openai=True, max_completion_tokens=12)
    stream(model.bind(max_tokens=5))
    assert limit_fields(sent_body(server)) == {"max_completion_tokens": 5}
    server.reset()
    stream(model)
    assert limit_fields(sent_body(server)) == {"max_completion_tokens": 12}


@pytest.mark.parametrize(
    ("base_url", "is_openai"),
    [
        (None, True),
        ("", True),
        ("https://api.openai.com/v1", True),
        ("https://API.OpenAI.com/v1/", True),
        ("https://us.api.openai.com/v1", True),
        ("api.openai.com/v1", True),
        ("http://127.0.0.1:8080/v1", False),  # llama.cpp
        ("http://localhost:11434/v1", False),  # Ollama
        ("http://localhost:1234/v1", False),  # LM Studio
        ("https://openrouter.ai/api/v1", False),
        ("https://api.openai.com.example.net/v1", False),
        ("https://notopenai.com/v1", False),
    ],
)
def test_is_openai_url(base_url: str | None, is_openai: bool) -> None:
    assert is_openai_url(base_url) is is_openai


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        (None, {"max_completion_tokens": 7}),
        ("https://api.openai.com/v1", {"max_completion_tokens": 7}),
        ("http://localhost:11434/v1", {"max_completion_tokens": 7, "max_tokens": 7}),
    ],
)
def test_payload_limit_fields_follow_the_base_url(
    base_url: str | None, expected: dict[str, int]
) -> None:
    model = CompatChatOpenAI(
        model="gpt-5", base_url=base_url, api_key=SecretStr(API_KEY), max_completion_tokens=7
    )
    assert limit_fields(model._get_request_payload("hi")) == expected
    assert limit_fields(model._get_request_payload("hi", max_tokens=7)) == expected


def test_base_url_from_the_environment_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no base_url argument the client may still talk to a local server."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    model = CompatChatOpenAI(model="qwen3", api_key=SecretStr(API_KEY), max_completion_tokens=7)
    assert not model.talks_to_openai()
    assert limit_fields(model._get_request_payload("hi")) == {
        "max_completion_tokens": 7,
        "max_tokens": 7,
    }


def test_no_limit_sends_no_limit_field() -> None:
    model = CompatChatOpenAI(
        model="qwen3", base_url="http://127.0.0.1:8080/v1", api_key=SecretStr(API_KEY)
    )
    assert limit_fields(model._get_request_payload("hi")) == {}


def test_responses_api_payload_is_left_alone() -> None:
    model = CompatChatOpenAI(
        model="gpt-5",
        base_url="http://127.0.0.1:8080/v1",
        api_key=SecretStr(API_KEY),
        max_completion_tokens=7,
        use_responses_api=True,
    )
    payload = model._get_request_payload("hi")
    assert limit_fields(payload) == {}
    assert payload["max_output_tokens"] == 7


# --------------------------------------------------------------------------- usage


def test_a_server_without_usage_sends_no_usage_chunk(server: StreamServer) -> None:
    server.configure(tokens=5, rate=0, usage=False)
    recorder, chunks = stream(compat(server, stream_usage=True))
    assert sent_body(server)["stream_options"] == {"include_usage": True}
    assert recorder.answer == "".join(generate_reply(5))
    assert merged(chunks).usage_metadata is None


def test_usage_counts_reasoning_tokens(server: StreamServer) -> None:
    server.configure(text=ANSWER, reasoning=THINKING, rate=0)
    _, chunks = stream(compat(server, stream_usage=True))
    usage = merged(chunks).usage_metadata
    assert usage is not None
    assert usage["output_tokens"] == len(tokenize(THINKING)) + len(tokenize(ANSWER))
    assert usage.get("output_token_details", {}).get("reasoning") == len(tokenize(THINKING))


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("refused", "kwargs", "line"),
    [
        (
            "temperature",
            {"temperature": 0.2},
            "gpt-5 does not accept temperature: leave out -t "
            "(and set StreamMagics.temperature = None).",
        ),
        (
            "max_tokens",
            {"max_tokens": 12},
            "gpt-5 does not accept max_tokens: leave out --max-tokens "
            "(and set StreamMagics.max_tokens = None).",
        ),
    ],
)
def test_a_refused_parameter_becomes_one_line(
    server: StreamServer, refused: str, kwargs: dict[str, Any], line: str
) -> None:
    server.configure(refuse_params=[refused], tokens=3, rate=0)
    with pytest.raises(openai.BadRequestError) as info:
        stream(compat(server, **kwargs))
    record = only_completion(server)
    assert record.status == 400
    assert refused in (record.body or {})

    param = refused_parameter(info.value)
    assert param == refused
    assert describe_refused(param, "gpt-5") == line

    # Without it the same server answers.
    recorder, _ = stream(compat(server))
    assert recorder.answer == "".join(generate_reply(3))


@pytest.mark.parametrize(
    ("message", "body", "expected"),
    [
        pytest.param(
            "Error code: 400",
            {
                "message": "Unsupported value: 'temperature' does not support 0.2 with this "
                "model. Only the default (1) value is supported.",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "unsupported_value",
            },
            "temperature",
            id="openai-unsupported-value",
        ),
        pytest.param(
            "Error code: 400",
            {"error": {"message": "x", "param": "top_p", "code": "unsupported_parameter"}},
            "top_p",
            id="whole-body",
        ),
        pytest.param(
            "Error code: 400 - Unsupported parameter: 'max_tokens' is not supported with this "
            "model. Use 'max_completion_tokens' instead.",
            None,
            "max_tokens",
            id="message-only",
        ),
        pytest.param(
            "Error code: 400",
            {"message": "'temperature' does not support 0.2 with this model.", "code": None},
            "temperature",
            id="no-code",
        ),
        pytest.param(
            "Error code: 400",
            "Unsupported parameter: 'stop' is not supported with this model.",
            "stop",
            id="text-body",
        ),
        pytest.param(
            "Error code: 400",
            {
                "message": "Invalid parameter: 'response_format' of type 'json_schema' is "
                "not supported with this model.",
                "param": "response_format",
                "code": None,
            },
            None,
            id="not-a-refused-parameter",
        ),
        pytest.param(
            "Error code: 400",
            {
                "message": "This model's maximum context length is 8192 tokens.",
                "param": "messages",
                "code": "context_length_exceeded",
            },
            None,
            id="context-length",
        ),
        pytest.param(
            "Error code: 400",
            {"message": "bad", "param": "not a name!", "code": "unsupported_parameter"},
            None,
            id="garbled-param",
        ),
    ],
)
def test_refused_parameter_reads_bodies_and_messages(
    message: str, body: object, expected: str | None
) -> None:
    assert refused_parameter(bad_request(message, body)) == expected


def test_refused_parameter_is_none_for_other_errors() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(429, request=request)
    body = {"param": "temperature", "code": "unsupported_parameter"}
    assert refused_parameter(openai.RateLimitError("x", response=response, body=body)) is None
    assert refused_parameter(ValueError("Unsupported parameter: 'temperature'")) is None


@pytest.mark.parametrize(
    ("param", "model", "line"),
    [
        (
            "max_completion_tokens",
            "o3-mini",
            "o3-mini does not accept max_completion_tokens: leave out --max-tokens "
            "(and set StreamMagics.max_tokens = None).",
        ),
        (
            "top_p",
            "gpt-5",
            "gpt-5 does not accept the parameter 'top_p': leave it out of the model's settings.",
        ),
        (
            "temperature",
            " ",
            "The model does not accept temperature: leave out -t "
            "(and set StreamMagics.temperature = None).",
        ),
    ],
)
def test_describe_refused(param: str, model: str, line: str) -> None:
    text = describe_refused(param, model)
    assert text == line
    assert "\n" not in text
    assert text.endswith(".") and not text.endswith("..")
    for doubled in ("..", ".:", ":.", ",.", " .", " :", "::"):
        assert doubled not in text


# --------------------------------------------------------------------------- server knobs


def streamed(server: StreamServer, **kwargs: Any) -> list[ChatCompletionChunk]:
    """Every chunk of a streamed chat completion from *server*."""
    return list(open_stream(make_client(server), **kwargs))


def thought_of(chunk: ChatCompletionChunk, field: str) -> str | None:
    if not chunk.choices:
        return None
    extra = chunk.choices[0].delta.model_extra or {}
    value = extra.get(field)
    return value if isinstance(value, str) else None


def answer_of(chunks: list[ChatCompletionChunk]) -> list[str]:
    return [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]


def test_new_knobs_keep_the_old_behaviour_by_default() -> None:
    knobs = Knobs()
    assert knobs.reasoning is None
    assert knobs.reasoning_field == "reasoning_content"
    assert knobs.limit_param == "any"
    assert knobs.usage is True
    assert knobs.refuse_params == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("reasoning", 3),
        ("reasoning_field", "thoughts"),
        ("limit_param", "max_output_tokens"),
        ("usage", "no"),
        ("refuse_params", "temperature"),
        ("refuse_params", [""]),
        ("refuse_params", [1]),
    ],
)
def test_new_knobs_are_validated(server: StreamServer, name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        server.configure(**{name: value})
    assert server.knobs == Knobs()


def test_knob_lists_are_not_shared() -> None:
    knobs = Knobs(refuse_params=("temperature",))  # type: ignore[arg-type]
    assert knobs.refuse_params == ["temperature"]
    with StreamServer(knobs=knobs) as server:
        server.knobs.refuse_params.append("top_p")
        assert server.knobs.refuse_params == ["temperature"]
        server.reset()
        assert server.knobs.refuse_params == ["temperature"]


def test_new_knobs_over_http(server: StreamServer) -> None:
    knobs = remote_configure(
        server.url,
        reasoning="Hmm.",
        reasoning_field="reasoning",
        limit_param="max_tokens",
        usage=False,
        refuse_params=["temperature"],
    )
    assert (knobs["reasoning"], knobs["reasoning_field"], knobs["limit_param"]) == (
        "Hmm.",
        "reasoning",
        "max_tokens",
    )
    assert (knobs["usage"], knobs["refuse_params"]) == (False, ["temperature"])
    with pytest.raises(urllib.error.HTTPError) as info:
        remote_configure(server.url, limit_param="nope")
    assert info.value.code == 400
    assert remote_reset(server.url) == Knobs().to_json()


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_server_streams_reasoning_before_the_answer(server: StreamServer, field: str) -> None:
    server.configure(reasoning=THINKING, reasoning_field=field, text=ANSWER, rate=0)
    chunks = streamed(server)
    thoughts = [thought_of(c, field) for c in chunks]
    answer_at = [i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content]
    assert [t for t in thoughts if t] == tokenize(THINKING)
    assert max(i for i, t in enumerate(thoughts) if t) < min(answer_at)
    assert all(c.choices[0].delta.content is None for c in chunks if thought_of(c, field))
    assert answer_of(chunks) == tokenize(ANSWER)
    record = only_completion(server)
    assert (record.reasoning_sent, record.tokens_sent) == (len(tokenize(THINKING)), 7)
    assert record.text_sent == ANSWER


def test_the_limit_covers_reasoning_first(server: StreamServer) -> None:
    thinking = len(tokenize(THINKING))
    server.configure(reasoning=THINKING, text=ANSWER, rate=0)
    chunks = streamed(server, max_tokens=thinking - 2)
    thoughts = [t for c in chunks if (t := thought_of(c, "reasoning_content"))]
    assert thoughts == tokenize(THINKING)[: thinking - 2]
    assert answer_of(chunks) == []
    assert chunks[-1].choices[0].finish_reason == "length"

    chunks = streamed(server, max_tokens=thinking + 2)
    assert answer_of(chunks) == tokenize(ANSWER)[:2]
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("limit_param", "sent", "limited"),
    [
        ("max_tokens", {"max_completion_tokens": 3}, False),
        ("max_tokens", {"max_tokens": 3}, True),
        ("max_completion_tokens", {"max_tokens": 3}, False),
        ("max_completion_tokens", {"max_completion_tokens": 3}, True),
        ("any", {"max_tokens": 3}, True),
        ("any", {"max_completion_tokens": 3}, True),
    ],
)
def test_limit_param_picks_the_field_honoured(
    server: StreamServer, limit_param: str, sent: dict[str, int], limited: bool
) -> None:
    server.configure(tokens=10, rate=0, limit_param=limit_param)
    chunks = streamed(server, **sent)
    assert answer_of(chunks) == generate_reply(3 if limited else 10)
    assert chunks[-1].choices[0].finish_reason == ("length" if limited else "stop")


def test_usage_knob_drops_the_usage_chunk_but_not_the_reply(server: StreamServer) -> None:
    server.configure(tokens=4, rate=0, usage=False)
    chunks = streamed(server, stream_options={"include_usage": True})
    assert answer_of(chunks) == generate_reply(4)
    assert all(c.usage is None and c.choices for c in chunks)

    completion = make_client(server).chat.completions.create(model=MODEL, messages=USER)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4


def test_refused_params_answer_openai_400_and_do_not_count_as_failures(
    server: StreamServer,
) -> None:
    server.configure(refuse_params=["temperature", "top_p"], status=500, fail_times=1)
    request = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=json.dumps({"model": MODEL, "messages": USER, "top_p": 1, "temperature": 0}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert json.loads(info.value.read()) == {
        "error": {
            "message": "Unsupported parameter: 'temperature' is not supported with this model.",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_parameter",
        }
    }
    # The injected failure is still pending: it comes next, then the normal reply.
    with pytest.raises(openai.InternalServerError):
        streamed(server)
    assert answer_of(streamed(server)) == generate_reply(Knobs().tokens)
    first = server.completion_requests[0]
    assert (first.status, first.completed) == (400, False)
    assert first.error is not None and "temperature" in first.error
