"""Tests for the OpenAI-compatible test server, driven by the real clients over HTTP.

Every test talks to a :class:`StreamServer` on 127.0.0.1 with the real ``openai`` client
or ``langchain_openai.ChatOpenAI``; nothing here touches the internet.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import httpx2
import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel

from tests.openai_server import (
    CHAT_COMPLETIONS_PATH,
    Knobs,
    StreamServer,
    generate_reply,
    remote_configure,
    remote_reset,
    tokenize,
)
from tests.support import (
    API_KEY,
    MODEL,
    USER,
    content_of,
    make_chat,
    make_client,
    only_completion,
    open_stream,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from openai.types.chat import ChatCompletionChunk

pytestmark = pytest.mark.usefixtures("offline_clients")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def lc_text(chunk: AIMessageChunk) -> str:
    """The text content of a LangChain chunk."""
    assert isinstance(chunk.content, str)
    return chunk.content


# --------------------------------------------------------------------------- text helpers


def test_tokenize_round_trips_and_splits_into_word_pieces() -> None:
    text = "Hello, world! **Bold** `x`\n\n- Ünïcödé 🚀 end  "
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:3] == ["Hello", ",", " world"]
    assert "*" in tokens  # "**" arrives as two tokens, like a real tokenizer may split it
    assert " 🚀" in tokens


def test_generated_reply_is_markdown_shaped_and_deterministic() -> None:
    reply = generate_reply(40)
    text = "".join(reply)
    assert len(reply) == 40
    assert text.startswith("# ")
    assert "**streamed Markdown**" in text
    assert "\n- first item\n- second item" in text
    assert '```python\nprint("hello")\n```' in text
    assert "\n\n1. Paragraph 1" in text
    longer = generate_reply(500)
    assert len(longer) == 500
    assert longer[:40] == reply
    assert "\n\n20. Paragraph 20" in "".join(longer)
    assert generate_reply(0) == []


# --------------------------------------------------------------------------- streaming


def test_stream_sends_exact_token_count_and_text(server: StreamServer) -> None:
    server.configure(tokens=25, rate=0)
    chunks = list(open_stream(make_client(server)))

    first, *middle, last = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    pieces = [content_of(c) for c in middle]
    assert pieces == generate_reply(25)
    assert last.choices[0].finish_reason == "stop"
    assert not last.choices[0].delta.content
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert all(c.usage is None for c in chunks)  # no usage chunk unless asked for

    record = only_completion(server)
    assert record.completed
    assert record.stream
    assert record.status == 200
    assert record.tokens_sent == record.planned_tokens == 25
    assert record.text_sent == "".join(generate_reply(25))
    assert not record.client_closed
    assert record.body is not None
    assert record.body["messages"] == USER
    assert record.body["model"] == MODEL


def test_records_keep_only_last_four_chars_of_the_key(server: StreamServer) -> None:
    server.configure(tokens=1, rate=0)
    list(open_stream(make_client(server)))
    record = only_completion(server)
    assert record.auth_present
    assert record.auth_last4 == "-key"
    assert "authorization" not in record.headers
    assert not any(API_KEY in value for value in record.headers.values())
    assert API_KEY not in json.dumps(record.to_json())


def test_langchain_streams_exact_text(server: StreamServer) -> None:
    text = "Hello, world! Ünïcödé 🚀 and **bold**."
    server.configure(text=text, rate=0)
    chunks = list(make_chat(server).stream("Say hello"))

    pieces = [lc_text(c) for c in chunks if lc_text(c)]
    assert pieces == tokenize(text)
    assert "".join(pieces) == text
    record = only_completion(server)
    assert record.body is not None
    assert record.body["stream"] is True
    assert record.body["model"] == MODEL
    assert record.body["messages"][-1] == {"role": "user", "content": "Say hello"}


def test_echo_quotes_the_last_user_message(server: StreamServer) -> None:
    server.configure(echo=True, text="Four.", rate=0)
    messages = [
        SystemMessage("You are terse."),
        HumanMessage("What is 2+2?\nAnswer briefly."),
    ]
    chunks = list(make_chat(server).stream(messages))
    text = "".join(lc_text(c) for c in chunks)
    assert text == "> What is 2+2?\n> Answer briefly.\n\nFour."


def test_echo_counts_tokens_after_the_quote(server: StreamServer) -> None:
    server.configure(echo=True, tokens=5, rate=0)
    pieces = [content_of(c) for c in open_stream(make_client(server))]
    text = "".join(p for p in pieces if p)
    assert text == "> hi\n\n" + "".join(generate_reply(5))


def test_rate_paces_tokens_so_they_arrive_one_by_one(server: StreamServer) -> None:
    total = 20
    # The server holds the second half until the client has the first: however the
    # threads are scheduled, what the client holds by then was streamed, not buffered.
    server.configure(tokens=total, rate=40, stall_after=total // 2, stall_seconds=60)
    seen_by_client: list[int] = []
    sent_when_seen: list[int] = []
    with open_stream(make_client(server)) as stream:
        for chunk in stream:
            if content_of(chunk):
                seen_by_client.append(len(seen_by_client) + 1)
                sent_when_seen.append(only_completion(server).tokens_sent)
                if len(seen_by_client) == total // 2:
                    assert not only_completion(server).completed
                    server.end_stall()

    assert seen_by_client == list(range(1, total + 1))
    # The server records token k-1 before it writes token k, so when the client holds
    # token k the record says at least k-1 (it may lag by the one in flight) ...
    assert all(sent >= seen - 1 for sent, seen in zip(sent_when_seen, seen_by_client, strict=True))
    assert sent_when_seen == sorted(sent_when_seen)
    # ... and the first token reached the client while most were still unsent: streamed,
    # not buffered until the end.
    assert sent_when_seen[0] < total
    times = only_completion(server).token_times
    assert times == sorted(times)
    # Sleeps never end early, so the server-side pacing gives a hard lower bound.
    assert times[-1] - times[0] >= (total - 1) / 40 * 0.99


def test_usage_chunk_when_requested(server: StreamServer) -> None:
    server.configure(tokens=12, rate=0)
    chunks = list(open_stream(make_client(server), stream_options={"include_usage": True}))

    *content_chunks, finish, usage_chunk = chunks
    assert finish.choices[0].finish_reason == "stop"
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 12
    assert usage_chunk.usage.prompt_tokens > 0
    assert usage_chunk.usage.total_tokens == (
        usage_chunk.usage.prompt_tokens + usage_chunk.usage.completion_tokens
    )
    assert all(c.usage is None for c in content_chunks)


def test_langchain_stream_usage_metadata(server: StreamServer) -> None:
    server.configure(tokens=12, rate=0)
    chunks = list(make_chat(server, stream_usage=True).stream("hi"))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    assert isinstance(total, AIMessageChunk)
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == 12
    assert total.usage_metadata["total_tokens"] == (
        total.usage_metadata["input_tokens"] + total.usage_metadata["output_tokens"]
    )
    record = only_completion(server)
    assert record.body is not None
    assert record.body["stream_options"] == {"include_usage": True}


def test_langchain_without_stream_usage_gets_no_usage_chunk(server: StreamServer) -> None:
    server.configure(tokens=3, rate=0)
    chunks = list(make_chat(server).stream("hi"))
    assert all(c.usage_metadata is None for c in chunks)
    record = only_completion(server)
    assert record.body is not None
    assert "stream_options" not in record.body


def test_max_tokens_truncates_with_finish_reason_length(server: StreamServer) -> None:
    server.configure(tokens=30, rate=0)
    chunks = list(open_stream(make_client(server), max_tokens=4))
    assert [content_of(c) for c in chunks[1:-1]] == generate_reply(4)
    assert chunks[-1].choices[0].finish_reason == "length"


# --------------------------------------------------------------------------- non-streaming


def test_non_streaming_completion(server: StreamServer) -> None:
    server.configure(text="Plain answer.", rate=0)
    completion = make_client(server).chat.completions.create(
        model=MODEL,
        messages=USER,
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Plain answer."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(tokenize("Plain answer."))
    record = only_completion(server)
    assert not record.stream
    assert record.completed


def test_langchain_invoke(server: StreamServer) -> None:
    server.configure(tokens=8, rate=0)
    message = make_chat(server).invoke("hi")
    assert message.content == "".join(generate_reply(8))
    assert message.usage_metadata is not None
    assert message.usage_metadata["output_tokens"] == 8


def test_models_list(server: StreamServer) -> None:
    client = make_client(server)
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# --------------------------------------------------------------------------- HTTP failures


def test_401_raises_authentication_error_without_retry(server: StreamServer) -> None:
    server.configure(status=401)
    with pytest.raises(openai.AuthenticationError) as info:
        open_stream(make_client(server, max_retries=3))
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "invalid_request_error"
    assert "-key" in info.value.message
    assert len(server.completion_requests) == 1  # 401 is never retried
    assert only_completion(server).status == 401


def test_langchain_401_is_an_openai_authentication_error(server: StreamServer) -> None:
    server.configure(status=401)
    with pytest.raises(openai.AuthenticationError):
        list(make_chat(server).stream("hi"))


def test_fail_times_then_normal(server: StreamServer) -> None:
    server.configure(status=401, fail_times=1, tokens=3, rate=0)
    client = make_client(server)
    with pytest.raises(openai.AuthenticationError):
        open_stream(client)
    pieces = [content_of(c) for c in open_stream(client)]
    assert "".join(p for p in pieces if p) == "".join(generate_reply(3))
    assert [r.status for r in server.completion_requests] == [401, 200]


def test_429_then_success_with_retries(server: StreamServer) -> None:
    server.configure(status=429, fail_times=2, retry_after=0.01, tokens=5, rate=0)
    chunks = list(open_stream(make_client(server, max_retries=2)))

    assert [content_of(c) for c in chunks[1:-1]] == generate_reply(5)
    records = server.completion_requests
    assert [r.status for r in records] == [429, 429, 200]
    assert [r.headers.get("x-stainless-retry-count") for r in records] == ["0", "1", "2"]
    assert records[-1].completed


def test_429_exhausting_retries_raises_rate_limit_error(server: StreamServer) -> None:
    server.configure(status=429, fail_times=-1, retry_after=0.01)
    with pytest.raises(openai.RateLimitError) as info:
        open_stream(make_client(server, max_retries=1))
    assert info.value.response.headers["retry-after"] == "0.01"
    assert info.value.code == "rate_limit_exceeded"
    assert [r.status for r in server.completion_requests] == [429, 429]


def test_langchain_429_then_success_with_max_retries(server: StreamServer) -> None:
    server.configure(status=429, fail_times=1, retry_after=0.01, tokens=4, rate=0)
    chunks = list(make_chat(server, max_retries=1).stream("hi"))
    assert "".join(lc_text(c) for c in chunks) == "".join(generate_reply(4))
    assert [r.status for r in server.completion_requests] == [429, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(server: StreamServer, status: int) -> None:
    server.configure(status=status, fail_times=1, tokens=2, rate=0)
    with pytest.raises(openai.InternalServerError) as info:
        open_stream(make_client(server))
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] == "server_error"
    # The failure budget is spent: the next request succeeds.
    assert len(list(open_stream(make_client(server)))) == 4


# --------------------------------------------------------------------------- broken streams


def collect_until_error(stream: Iterator[ChatCompletionChunk]) -> tuple[str, Exception]:
    """Read content from *stream* until it raises; return the text and the error.

    Catches ``openai.APIError`` and ``ValueError`` (a malformed chunk surfaces as
    ``json.JSONDecodeError``): what a streaming consumer has to be ready for.
    """
    text = ""
    try:
        for chunk in stream:
            text += content_of(chunk) or ""
    except (openai.APIError, ValueError) as exc:
        return text, exc
    pytest.fail("stream ended without an error")


def test_drop_after_raises_connection_error_after_partial_content(
    server: StreamServer,
) -> None:
    server.configure(tokens=30, rate=0, drop_after=5)
    text, error = collect_until_error(open_stream(make_client(server, max_retries=2)))

    assert text == "".join(generate_reply(5))
    assert isinstance(error, openai.APIConnectionError)
    assert isinstance(error.__cause__, httpx2.RemoteProtocolError)
    record = only_completion(server)  # mid-stream failures are not retried
    assert record.dropped
    assert not record.completed
    assert record.tokens_sent == 5


def test_langchain_drop_after_raises_connection_error(server: StreamServer) -> None:
    server.configure(tokens=30, rate=0, drop_after=3)
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in make_chat(server).stream("hi"):
            received.append(lc_text(chunk))
    assert "".join(received) == "".join(generate_reply(3))


def test_stall_with_read_timeout_raises_timeout_and_closes(server: StreamServer) -> None:
    server.configure(tokens=10, rate=0, stall_after=3, stall_seconds=60)
    client = make_client(server, timeout=httpx2.Timeout(5.0, read=0.3))
    text, error = collect_until_error(open_stream(client))

    assert text == "".join(generate_reply(3))
    assert isinstance(error, openai.APITimeoutError)
    record = only_completion(server)
    # The client gave up and closed the socket; the server notices during the stall.
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert record.tokens_sent == 3
    assert not record.completed


def test_langchain_stall_with_timeout_raises_timeout(server: StreamServer) -> None:
    server.configure(tokens=10, rate=0, stall_after=2, stall_seconds=60)
    received: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in make_chat(server, timeout=0.3).stream("hi"):
            received.append(lc_text(chunk))
    assert "".join(received) == "".join(generate_reply(2))


def test_short_stall_then_continue(server: StreamServer) -> None:
    server.configure(tokens=6, rate=0, stall_after=3, stall_seconds=0.2)
    chunks = list(open_stream(make_client(server, timeout=10.0)))
    assert [content_of(c) for c in chunks[1:-1]] == generate_reply(6)
    record = only_completion(server)
    assert record.completed
    # A lower bound (sleeps never end early): a slower machine only makes it looser.
    assert record.token_times[3] - record.token_times[2] >= 0.2 * 0.99


def test_stall_before_first_token(server: StreamServer) -> None:
    server.configure(tokens=4, rate=0, stall_after=0, stall_seconds=60)
    with open_stream(make_client(server)) as stream:
        first = next(iter(stream))  # headers and the role chunk arrive before the stall
        assert first.choices[0].delta.role == "assistant"
        record = only_completion(server)
        assert record.status == 200
        assert record.tokens_sent == 0
    server.wait_for(lambda: record.client_closed, timeout=10)


def test_malformed_chunk_raises_after_partial_content(server: StreamServer) -> None:
    server.configure(tokens=40, rate=50, malformed_after=4)
    text, error = collect_until_error(open_stream(make_client(server)))
    assert text == "".join(generate_reply(4))
    # Not an openai.APIError: the SSE decoder's json.loads fails.
    assert isinstance(error, json.JSONDecodeError)
    record = only_completion(server)
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert not record.completed


def test_langchain_malformed_chunk_raises_value_error(server: StreamServer) -> None:
    server.configure(tokens=10, rate=0, malformed_after=2)
    received: list[str] = []
    with pytest.raises(ValueError, match="Expecting"):
        for chunk in make_chat(server).stream("hi"):
            received.append(lc_text(chunk))
    assert "".join(received) == "".join(generate_reply(2))


# --------------------------------------------------------------------------- client goes away


def test_client_closed_when_openai_stream_closed_early(server: StreamServer) -> None:
    server.configure(tokens=500, rate=100)
    received = 0
    stream = open_stream(make_client(server))
    for chunk in stream:
        if content_of(chunk):
            received += 1
            if received == 3:
                break
    stream.close()

    record = only_completion(server)
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert not record.completed
    assert 3 <= record.tokens_sent < 500
    server.wait_for(lambda: record.finished is not None, timeout=10)
    assert record.error == "client closed the connection"
    assert record.text_sent == "".join(generate_reply(500)[: record.tokens_sent])


def test_client_closed_when_langchain_generator_closed(server: StreamServer) -> None:
    server.configure(tokens=500, rate=100)
    generator = make_chat(server).stream("hi")
    assert isinstance(generator, Generator)
    for chunk in generator:
        if lc_text(chunk):
            break
    generator.close()  # what happens when a notebook cell stops consuming the stream

    record = only_completion(server)
    server.wait_for(lambda: record.client_closed, timeout=10)
    assert not record.completed
    assert record.tokens_sent < 500


def test_client_completing_normally_is_not_client_closed(server: StreamServer) -> None:
    server.configure(tokens=3, rate=0)
    for _ in range(3):
        list(open_stream(make_client(server)))
    records = server.wait_for_finished(3)
    assert all(r.completed and not r.client_closed for r in records)


# --------------------------------------------------------------------------- control


def test_configure_validates_and_keeps_old_knobs_on_error(server: StreamServer) -> None:
    server.configure(tokens=7)
    with pytest.raises(TypeError, match="unknown knobs: nope"):
        server.configure(nope=1)
    with pytest.raises(ValueError, match="tokens"):
        server.configure(tokens=-1)
    with pytest.raises(ValueError, match="status"):
        server.configure(status=200)
    assert server.knobs.tokens == 7


def test_reset_restores_initial_knobs_and_forgets_requests() -> None:
    with StreamServer(knobs=Knobs(tokens=2, rate=0)) as server:
        server.configure(tokens=9, status=500)
        with pytest.raises(openai.InternalServerError):
            open_stream(make_client(server))
        server.reset()
        assert server.requests == []
        assert server.knobs == Knobs(tokens=2, rate=0)
        pieces = [content_of(c) for c in open_stream(make_client(server))]
        assert [p for p in pieces if p] == generate_reply(2)


def test_control_endpoints_over_http(server: StreamServer) -> None:
    knobs = remote_configure(server.url, tokens=6, rate=0)
    assert knobs["tokens"] == 6
    pieces = [content_of(c) for c in open_stream(make_client(server))]
    assert [p for p in pieces if p] == generate_reply(6)

    with urllib.request.urlopen(server.url + "/_control/requests", timeout=5) as resp:
        records = json.loads(resp.read())["requests"]
    assert [(r["path"], r["tokens_sent"], r["completed"]) for r in records] == [
        (CHAT_COMPLETIONS_PATH, 6, True)
    ]

    with pytest.raises(urllib.error.HTTPError) as info:
        remote_configure(server.url, tokens="many")
    assert info.value.code == 400
    assert server.knobs.tokens == 6

    assert remote_reset(server.url)["tokens"] == Knobs().tokens
    assert server.requests == []


def test_unknown_path_and_bad_body_get_openai_style_errors(server: StreamServer) -> None:
    request = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=b"not json",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    assert "error" in json.loads(info.value.read())

    with pytest.raises(openai.NotFoundError):
        make_client(server).completions.create(model=MODEL, prompt="legacy endpoint")


def test_wait_for_times_out(server: StreamServer) -> None:
    with pytest.raises(TimeoutError):
        server.wait_for(lambda: bool(server.requests), timeout=0.2)


def test_concurrent_streams(server: StreamServer) -> None:
    server.configure(tokens=10, rate=200)
    results: list[str] = []

    def run() -> None:
        pieces = [content_of(c) for c in open_stream(make_client(server))]
        results.append("".join(p for p in pieces if p))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["".join(generate_reply(10))] * 4
    assert len(server.completion_requests) == 4


def test_close_does_not_hang_on_a_stalled_stream() -> None:
    server = StreamServer(knobs=Knobs(tokens=5, rate=0, stall_after=1, stall_seconds=600))
    server.start()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            list(open_stream(make_client(server)))
        except openai.APIError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    record = server.wait_for_tokens(1)
    server.close()
    reader.join(timeout=10)

    assert not reader.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], openai.APIConnectionError)
    server.wait_for(lambda: record.finished is not None, timeout=10)
    assert record.error == "server shut down"
    assert not record.client_closed
    with pytest.raises(RuntimeError):
        _ = server.url
    server.close()  # idempotent


def test_command_line_prints_base_url_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", "0", "--tokens", "5", "--rate=0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/v1")
        client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
        pieces = [content_of(c) for c in open_stream(client)]
        assert [p for p in pieces if p] == generate_reply(5)
    finally:
        process.terminate()  # SIGTERM: the server closes and exits with status 0
        try:
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


# --------------------------------------------------------------------------- tool calls

CALLS = [
    ["get_weather", '{"city": "Paris", "unit": "celsius"}'],
    ["get_time", '{"timezone": "Europe/Oslo"}'],
]


@pytest.mark.parametrize(
    "bad",
    [[["get_weather"]], [["", "{}"]], [[1, "{}"]], [["f", {"city": "Paris"}]], "get_weather"],
)
def test_tool_calls_knob_is_validated(server: StreamServer, bad: object) -> None:
    with pytest.raises(ValueError, match="tool_calls"):
        server.configure(tool_calls=bad)
    assert server.knobs.tool_calls == []


def test_tool_calls_knob_takes_tuples_and_is_owned_by_each_knobs() -> None:
    knobs = Knobs(tool_calls=(("get_weather", "{}"),))  # type: ignore[arg-type]
    knobs.validate()
    assert knobs.tool_calls == [["get_weather", "{}"]]
    copy = dataclasses.replace(knobs)
    copy.tool_calls.append(["get_time", "{}"])
    assert knobs.tool_calls == [["get_weather", "{}"]]


def test_streamed_tool_calls_arrive_as_openai_streams_them(server: StreamServer) -> None:
    server.configure(text="Checking.", tool_calls=CALLS, rate=0)
    chunks = list(open_stream(make_client(server)))

    text = "".join(content_of(c) or "" for c in chunks)
    assert text == "Checking."
    deltas = [(i, c) for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.tool_calls]
    first_call = deltas[0][0]
    assert all(not content_of(c) for c in chunks[first_call:])  # text first, then the calls
    for number, (name, arguments) in enumerate(CALLS):
        pieces = [
            tool
            for _, chunk in deltas
            for tool in chunk.choices[0].delta.tool_calls or []
            if tool.index == number
        ]
        opening, *rest = pieces
        assert opening.id is not None and opening.id.startswith("call_")
        assert opening.type == "function"
        assert opening.function is not None
        assert (opening.function.name, opening.function.arguments) == (name, "")
        # Then only index and a piece of the arguments, one piece per event.
        assert [p.function.arguments for p in rest if p.function] == tokenize(arguments)
        assert len(rest) > 3
        assert all(p.id is None and p.type is None for p in rest)
        assert all(p.function is not None and p.function.name is None for p in rest)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    record = only_completion(server)
    assert [[c["name"], c["arguments"]] for c in record.tool_calls_sent] == CALLS
    assert record.tool_calls_sent[0]["id"] != record.tool_calls_sent[1]["id"]
    assert record.tokens_sent == len(tokenize("Checking."))  # calls are not answer tokens


def test_tool_call_pieces_are_paced_by_rate(server: StreamServer) -> None:
    server.configure(text="", tool_calls=[CALLS[0]], rate=40)
    pieces = len(tokenize(CALLS[0][1]))
    start = time.monotonic()
    list(open_stream(make_client(server)))
    # The first piece goes at once, the others one interval apart: a lower bound (sleeps
    # never end early), which a slower machine only makes looser.
    assert time.monotonic() - start >= (pieces - 1) / 40


def test_non_streamed_tool_calls_are_in_the_message_and_the_usage(
    server: StreamServer,
) -> None:
    server.configure(text="Checking.", tool_calls=CALLS, rate=0)
    completion = make_client(server).chat.completions.create(model=MODEL, messages=USER)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.type, c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        ("function", name, arguments) for name, arguments in CALLS
    ]
    assert all(c.id.startswith("call_") for c in calls)
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(tokenize("Checking.")) + sum(
        len(tokenize(arguments)) for _, arguments in CALLS
    )
    assert [c["id"] for c in only_completion(server).tool_calls_sent] == [c.id for c in calls]


def test_the_limit_cuts_a_tool_call_inside_its_arguments(server: StreamServer) -> None:
    server.configure(text="Hi.", tool_calls=CALLS, rate=0)
    client = make_client(server)
    chunks = list(open_stream(client, max_completion_tokens=2 + 3))
    assert chunks[-1].choices[0].finish_reason == "length"
    (sent,) = only_completion(server).tool_calls_sent  # the second call is never sent
    assert sent["arguments"] == "".join(tokenize(CALLS[0][1])[:3])


# --------------------------------------------------------------------------- Responses API

RESPONSE_EVENTS: dict[str, type[BaseModel]] = {
    get_args(kind.model_fields["type"].annotation)[0]: kind
    for kind in get_args(get_args(ResponseStreamEvent)[0])
}
"""The openai SDK's Responses API stream event classes, by event type."""
SUMMARY = "**Checking the city**\n\nParis is in France; the tool gives its weather."


def post_responses(server: StreamServer, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """POST /v1/responses with *body* (streamed); each event's ``event:`` name and data."""
    request = urllib.request.Request(
        server.base_url + "/responses",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = []
    for block in raw.strip().split("\n\n"):
        name, data = block.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def test_responses_stream_speaks_the_openai_event_types(server: StreamServer) -> None:
    server.configure(text="Sunny, 21 °C.", reasoning=SUMMARY, tool_calls=[CALLS[0]], rate=0)
    body = {"model": "o4-mini", "input": "Weather in Paris?", "stream": True}
    events = post_responses(server, body)

    # Every event is one the openai SDK knows, whole (validated, not just constructed).
    parsed: list[Any] = [RESPONSE_EVENTS[data["type"]].model_validate(data) for _, data in events]
    assert [name for name, _ in events] == [event.type for event in parsed]
    assert [event.sequence_number for event in parsed] == list(range(len(parsed)))
    kinds = [event.type for event in parsed]
    summary_deltas = [e.delta for e in parsed if e.type == "response.reasoning_summary_text.delta"]
    text_deltas = [e.delta for e in parsed if e.type == "response.output_text.delta"]
    argument_deltas = [
        e.delta for e in parsed if e.type == "response.function_call_arguments.delta"
    ]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds.count("response.reasoning_summary_part.added") == 2  # one per paragraph
    assert (
        "\n\n".join(e.text for e in parsed if e.type == "response.reasoning_summary_text.done")
        == SUMMARY
    )
    assert len(summary_deltas) == len(tokenize(SUMMARY))
    assert text_deltas == tokenize("Sunny, 21 °C.")
    assert argument_deltas == tokenize(CALLS[0][1])
    assert kinds[-1] == "response.completed"
    order = [
        kinds.index(k)
        for k in (
            "response.reasoning_summary_text.delta",
            "response.output_text.delta",
            "response.function_call_arguments.delta",
        )
    ]
    assert order == sorted(order)  # thinking, then the answer, then the call

    final = Response.model_validate(events[-1][1]["response"])
    assert final.status == "completed"
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    assert final.output_text == "Sunny, 21 °C."
    call = final.output[2]
    assert call.type == "function_call"
    assert (call.name, call.arguments) == tuple(CALLS[0])
    assert final.usage is not None
    reasoning_tokens = len(tokenize(SUMMARY))
    completion = reasoning_tokens + len(text_deltas) + len(argument_deltas)
    assert (final.usage.output_tokens, final.usage.output_tokens_details.reasoning_tokens) == (
        completion,
        reasoning_tokens,
    )
    assert final.usage.input_tokens == len(tokenize("Weather in Paris?")) + 3

    (record,) = server.responses_requests
    assert server.completion_requests == []
    assert record.completed and record.stream
    assert (record.tokens_sent, record.reasoning_sent) == (len(text_deltas), reasoning_tokens)
    assert record.tool_calls_sent == [
        {"id": call.call_id, "name": CALLS[0][0], "arguments": CALLS[0][1]}
    ]


def test_responses_through_the_openai_client_and_chatopenai(server: StreamServer) -> None:
    server.configure(text="Owls hunt at night.", reasoning=SUMMARY, rate=0)
    client = make_client(server)
    whole = client.responses.create(model="o4-mini", input="Owls?")
    assert whole.output_text == "Owls hunt at night."
    assert [part.text for part in whole.output[0].summary] == SUMMARY.split("\n\n")  # type: ignore[union-attr]

    chat = make_chat(server, use_responses_api=True)
    merged = None
    for chunk in chat.stream("Owls?"):
        merged = chunk if merged is None else merged + chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.text == "Owls hunt at night."
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_token_details"].get("reasoning") == len(tokenize(SUMMARY))
    assert [r.path for r in server.requests] == ["/v1/responses"] * 2


def test_responses_honour_max_output_tokens_and_the_usage_knob(
    server: StreamServer,
) -> None:
    server.configure(text="Owls hunt at night and sleep by day.", usage=False, rate=0)
    body = {"model": "o4-mini", "input": "Owls?", "stream": True, "max_output_tokens": 4}
    events = post_responses(server, body)
    name, data = events[-1]
    assert name == "response.incomplete"
    final = Response.model_validate(data["response"])
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == "".join(tokenize("Owls hunt at night and sleep by day.")[:4])
    assert final.usage is None  # knob usage=False
    assert final.output[0].status == "incomplete"  # type: ignore[union-attr]


def test_responses_errors_and_faults(server: StreamServer) -> None:
    client = make_client(server)
    server.configure(status=429, retry_after=0)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="o4-mini", input="hi", stream=True)
    server.configure(status=None, refuse_params=["temperature"])
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="o4-mini", input="hi", temperature=0.2)
    assert refused.value.param == "temperature"
    server.configure(refuse_params=[], tokens=20, drop_after=3, rate=0)
    text: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for event in client.responses.create(model="o4-mini", input="hi", stream=True):
            if event.type == "response.output_text.delta":
                text.append(event.delta)
    assert text == generate_reply(3)
    assert server.responses_requests[-1].dropped
