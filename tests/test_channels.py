"""The channel reader: answer text, reasoning and tool calls out of what chat models stream.

Chunks come from real LangChain code wherever it is installed: ``ChatOpenAI`` (Chat
Completions and the Responses API, every ``output_version``) talking to a mock HTTP
transport, LangChain's own ``GenericFakeChatModel``, and a scripted ``BaseChatModel`` whose
chunks are built exactly as langchain-anthropic 1.7, langchain-google-genai 4.4,
langchain-ollama 1.1 and langchain-aws build theirs. Every stream passes through
``BaseChatModel.stream`` and a real callback handler, so the reader sees what
``on_llm_new_token`` really receives.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import httpx2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.language_models.llms import LLM
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages import content as types
from langchain_core.messages.block_translators import PROVIDER_TRANSLATORS
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from ipy_stream.channels import CLOSE_TAG, OPEN_TAG, ChunkReader, Pieces, ToolCallDelta
from tests.support import ScriptedChatModel

# --- Collecting what a stream yields --------------------------------------------------------


@dataclass
class Channels:
    """Everything one run produced, joined up."""

    text: str = ""
    reasoning: str = ""
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    deltas: list[ToolCallDelta] = field(default_factory=list)

    def add(self, pieces: Pieces) -> None:
        self.text += pieces.text
        self.reasoning += pieces.reasoning
        for delta in pieces.tool_calls:
            self.deltas.append(delta)
            call = self.calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
            call["id"] = call["id"] or delta.id
            call["name"] += delta.name
            call["arguments"] += delta.arguments


class ChannelHandler(BaseCallbackHandler):
    """The wiring the product's handler uses: one ChunkReader per LLM run."""

    raise_error = True
    run_inline = True

    def __init__(self) -> None:
        self.readers: dict[uuid.UUID, ChunkReader] = {}
        self.runs: dict[uuid.UUID, Channels] = {}
        self.received: list[tuple[Any, Any]] = []

    def _start(self, run_id: uuid.UUID) -> None:
        self.readers[run_id] = ChunkReader()
        self.runs[run_id] = Channels()

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        self._start(run_id)

    def on_llm_start(
        self, serialized: Any, prompts: Any, *, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        self._start(run_id)

    def on_llm_new_token(
        self, token: Any, *, chunk: Any = None, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        self.received.append((token, chunk))
        self.runs[run_id].add(self.readers[run_id].feed(token, chunk))

    def _end(self, run_id: uuid.UUID) -> None:
        reader = self.readers.pop(run_id, None)
        if reader is not None:
            self.runs[run_id].add(reader.end())

    def on_llm_end(self, response: LLMResult, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        self._end(run_id)

    @property
    def only(self) -> Channels:
        assert len(self.runs) == 1
        assert not self.readers, "every reader is ended"
        return next(iter(self.runs.values()))


def stream_through(model: Any, prompt: str = "hi") -> ChannelHandler:
    handler = ChannelHandler()
    for _ in model.stream(prompt, config={"callbacks": [handler]}):
        pass
    return handler


def read_all(tokens: Sequence[Any], chunks: Sequence[Any] | None = None) -> Channels:
    reader = ChunkReader()
    out = Channels()
    for position, token in enumerate(tokens):
        out.add(reader.feed(token, None if chunks is None else chunks[position]))
    out.add(reader.end())
    return out


# --- A model that streams given chunks, and the wire for ChatOpenAI --------------------------


def sse(events: Sequence[dict[str, Any]], *, named: bool) -> bytes:
    lines = []
    for event in events:
        if named:
            lines.append(f"event: {event['type']}\n")
        lines.append(f"data: {json.dumps(event)}\n\n")
    if not named:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def openai_model(body: bytes, **kwargs: Any) -> ChatOpenAI:
    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = httpx2.Client(transport=httpx2.MockTransport(reply))
    return ChatOpenAI(
        model="test-model",
        api_key=SecretStr("test-key"),
        base_url="http://test/v1",
        http_client=client,
        **kwargs,
    )


def delta(finish: str | None = None, **fields: Any) -> dict[str, Any]:
    """One Chat Completions stream event."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "delta": fields, "finish_reason": finish}],
    }


def function(
    index: int, arguments: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """One streamed piece of a Chat Completions tool call (id and name only on the first)."""
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        call |= {"id": call_id, "type": "function"}
        call["function"]["name"] = name
    return call


# --- Plain tokens -----------------------------------------------------------------------------


def test_plain_string_tokens_without_a_chunk_are_text() -> None:
    assert read_all(["Hel", "lo", " world", ""]).text == "Hello world"


def test_empty_token_gives_nothing_falsy() -> None:
    pieces = ChunkReader().feed("", None)
    assert pieces == Pieces()
    assert not pieces


def test_token_is_ignored_when_the_chunk_has_a_message() -> None:
    # LangChain passes the content (here a list) as the token and the chunk alongside it;
    # reading both would give the text twice.
    chunk = ChatGenerationChunk(message=AIMessageChunk(content=[{"type": "text", "text": "x"}]))
    assert ChunkReader().feed(chunk.message.content, chunk) == Pieces(text="x")
    assert ChunkReader().feed("x", chunk) == Pieces(text="x")


def test_content_list_token_without_chunk() -> None:
    token = [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "ok"}, " then"]
    assert ChunkReader().feed(token) == Pieces(text="ok then", reasoning="hm")


def test_a_message_chunk_passed_as_chunk_is_read() -> None:
    message = AIMessageChunk(content="hi", additional_kwargs={"reasoning_content": "r"})
    assert ChunkReader().feed("hi", message) == Pieces(text="hi", reasoning="r")


class WordLLM(LLM):
    """A non-chat LLM streaming ``GenerationChunk``s, calling back as integrations do."""

    reply: str = "<think>plan</think>\n\nDone here."

    @property
    def _llm_type(self) -> str:
        return "words"

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return self.reply

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        for start in range(0, len(self.reply), 3):
            chunk = GenerationChunk(text=self.reply[start : start + 3])
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def test_non_chat_llm_generation_chunks() -> None:
    run = stream_through(WordLLM()).only
    assert (run.reasoning, run.text) == ("plan", "Done here.")


# --- OpenAI Chat Completions through the real ChatOpenAI -------------------------------------


def test_chat_completions_text_and_interleaved_parallel_tool_calls() -> None:
    events = [
        delta(role="assistant", content=""),
        delta(content="Let me "),
        delta(content="check.\n\n"),
        delta(tool_calls=[function(0, "", "call_a", "get_weather")]),
        delta(tool_calls=[function(1, "", "call_b", "get_time")]),
        delta(tool_calls=[function(0, '{"city": ')]),
        delta(tool_calls=[function(1, '{"tz": "UTC"}')]),
        delta(tool_calls=[function(0, '"Paris"}')]),
        delta("tool_calls"),
    ]
    handler = stream_through(openai_model(sse(events, named=False)))
    run = handler.only
    assert run.text == "Let me check.\n\n"
    assert run.reasoning == ""
    assert run.calls == {
        0: {"id": "call_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_b", "name": "get_time", "arguments": '{"tz": "UTC"}'},
    }
    assert [d.index for d in run.deltas] == [0, 1, 0, 1, 0]
    assert run.deltas[0] == ToolCallDelta(0, "call_a", "get_weather", "")
    assert run.deltas[2] == ToolCallDelta(0, None, "", '{"city": ')


def test_chat_completions_think_tags_in_the_text() -> None:
    # A raw DeepSeek-R1 / Qwen3 server: reasoning inline, tags split across tokens.
    parts = ["<th", "ink>", "Let me", " think</", "think", ">\n", "\nThe answer", " is 4."]
    events = [delta(role="assistant", content="")] + [delta(content=p) for p in parts]
    run = stream_through(openai_model(sse([*events, delta("stop")], named=False))).only
    assert (run.reasoning, run.text) == ("Let me think", "The answer is 4.")


class ChatDeepSeekLike(ChatOpenAI):
    """ChatOpenAI with langchain-deepseek's chunk conversion.

    ``ChatOpenAI`` itself drops ``reasoning_content``; ``ChatDeepSeek`` (and the usual
    patches for vLLM / llama.cpp servers) copy it into ``additional_kwargs`` like this.
    """

    def _convert_chunk_to_generation_chunk(
        self,
        chunk: dict[str, Any],
        default_chunk_class: type,
        base_generation_info: dict[str, Any] | None,
    ) -> ChatGenerationChunk | None:
        generation_chunk = super()._convert_chunk_to_generation_chunk(
            chunk, default_chunk_class, base_generation_info
        )
        if (choices := chunk.get("choices")) and generation_chunk:
            top = choices[0]
            if isinstance(generation_chunk.message, AIMessageChunk):
                generation_chunk.message.response_metadata = {
                    **generation_chunk.message.response_metadata,
                    "model_provider": "deepseek",
                }
                delta_ = top.get("delta", {})
                if (reasoning_content := delta_.get("reasoning_content")) is not None:
                    generation_chunk.message.additional_kwargs["reasoning_content"] = (
                        reasoning_content
                    )
                elif (reasoning := delta_.get("reasoning")) is not None:
                    generation_chunk.message.additional_kwargs["reasoning_content"] = reasoning
        return generation_chunk


def deepseek_events() -> list[dict[str, Any]]:
    return [
        delta(role="assistant", content=None, reasoning_content=""),
        delta(content=None, reasoning_content="The user "),
        delta(content=None, reasoning_content="wants 2+2."),
        delta(content="\n\n", reasoning_content=None),
        delta(content="It is ", reasoning_content=None),
        delta(content="<think>4</think>.", reasoning_content=None),
        delta("stop", content=""),
    ]


@pytest.mark.parametrize("output_version", [None, "v1"])
def test_deepseek_reasoning_content(output_version: str | None) -> None:
    kwargs: dict[str, Any] = {} if output_version is None else {"output_version": output_version}
    model = ChatDeepSeekLike(
        model="deepseek-reasoner",
        api_key=SecretStr("test-key"),
        base_url="http://test/v1",
        http_client=httpx2.Client(
            transport=httpx2.MockTransport(
                lambda request: httpx2.Response(
                    200,
                    headers={"content-type": "text/event-stream"},
                    content=sse(deepseek_events(), named=False),
                )
            )
        ),
        **kwargs,
    )
    handler = stream_through(model)
    run = handler.only
    assert run.reasoning == "The user wants 2+2."
    # Leading whitespace held while <think> was still possible is released, and a later
    # <think> is ordinary text.
    assert run.text == "\n\nIt is <think>4</think>."
    if output_version == "v1":
        # content holds a reasoning block *and* additional_kwargs still has the same text.
        token, chunk = handler.received[2]
        assert token == chunk.message.content
        assert [b["type"] for b in token] == ["reasoning"]
        assert chunk.message.additional_kwargs["reasoning_content"] == "wants 2+2."


# --- OpenAI Responses API through the real ChatOpenAI ----------------------------------------


def responses_events() -> list[dict[str, Any]]:
    def response(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        usage = {
            "input_tokens": 3,
            "output_tokens": 9,
            "total_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 4},
        }
        return {
            "id": "resp_1",
            "object": "response",
            "created_at": 1,
            "model": "o4-mini",
            "status": status,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage if status == "completed" else None,
        }

    call = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_9",
        "name": "get_weather",
        "arguments": "",
        "status": "in_progress",
    }
    summary = [{"type": "summary_text", "text": "Weather needs a tool."}]
    reasoning = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    text = {"item_id": "msg_1", "output_index": 1, "content_index": 0, "logprobs": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": []},
        },
        {
            "type": "response.reasoning_summary_part.added",
            **reasoning,
            "part": {"type": "summary_text", "text": ""},
        },
        {"type": "response.reasoning_summary_text.delta", **reasoning, "delta": "Weather needs"},
        {"type": "response.reasoning_summary_text.delta", **reasoning, "delta": " a tool."},
        {
            "type": "response.reasoning_summary_text.done",
            **reasoning,
            "text": "Weather needs a tool.",
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": summary},
        },
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            },
        },
        {"type": "response.output_text.delta", **text, "delta": "Checking "},
        {"type": "response.output_text.delta", **text, "delta": " Paris."},
        {"type": "response.output_text.done", **text, "text": "Checking  Paris."},
        {"type": "response.output_item.added", "output_index": 2, "item": call},
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '{"city":',
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 2,
            "delta": '"Paris"}',
        },
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 2,
            "arguments": '{"city":"Paris"}',
            "name": "get_weather",
        },
        {
            "type": "response.completed",
            "response": response(
                "completed",
                [
                    {"id": "rs_1", "type": "reasoning", "summary": summary},
                    {
                        "id": "msg_1",
                        "type": "message",
                        "role": "assistant",
                        "status": "completed",
                        "content": [
                            {"type": "output_text", "text": "Checking  Paris.", "annotations": []}
                        ],
                    },
                    {**call, "arguments": '{"city":"Paris"}', "status": "completed"},
                ],
            ),
        },
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


@pytest.mark.parametrize("output_version", [None, "responses/v1", "v0", "v1"])
def test_responses_api_reasoning_summary_text_and_tool_call(output_version: str | None) -> None:
    kwargs: dict[str, Any] = {} if output_version is None else {"output_version": output_version}
    model = openai_model(sse(responses_events(), named=True), use_responses_api=True, **kwargs)
    handler = stream_through(model)
    run = handler.only
    assert run.reasoning == "Weather needs a tool."
    assert run.text == "Checking  Paris."
    assert run.calls == {
        0: {"id": "call_9", "name": "get_weather", "arguments": '{"city":"Paris"}'}
    }
    shapes = [chunk.message for _, chunk in handler.received]
    if output_version == "v0":
        assert shapes[3].additional_kwargs["reasoning"] == {
            "summary": [{"index": 0, "type": "summary_text", "text": "Weather needs"}]
        }
    elif output_version == "v1":
        assert shapes[3].content[0]["reasoning"] == "Weather needs"
    else:
        assert shapes[3].content[0]["summary"][0]["text"] == "Weather needs"


def test_servers_that_number_every_call_zero() -> None:
    # Some OpenAI-compatible servers send index 0 for every call; a new id means a new call.
    events = [
        delta(role="assistant", content=""),
        delta(tool_calls=[function(0, "", "call_a", "first")]),
        delta(tool_calls=[function(0, "{}")]),
        delta(tool_calls=[function(0, "", "call_b", "second")]),
        delta(tool_calls=[function(0, '{"x": 1}')]),
        delta("tool_calls"),
    ]
    run = stream_through(openai_model(sse(events, named=False))).only
    assert run.calls == {
        0: {"id": "call_a", "name": "first", "arguments": "{}"},
        1: {"id": "call_b", "name": "second", "arguments": '{"x": 1}'},
    }


def test_pieces_without_index_or_id_continue_the_last_call() -> None:
    def piece(**fields: Any) -> AIMessageChunk:
        return AIMessageChunk(content="", tool_call_chunks=[tool_call_chunk(**fields)])

    chunks = [
        piece(name="f", args="", id="c1", index=None),
        piece(name=None, args='{"a":', id=None, index=None),
        piece(name=None, args=" 1}", id=None, index=None),
        piece(name=None, args=None, id=None, index=None),  # nothing in it: no delta
    ]
    run = read_all([""] * len(chunks), [ChatGenerationChunk(message=c) for c in chunks])
    assert run.calls == {0: {"id": "c1", "name": "f", "arguments": '{"a": 1}'}}
    assert len(run.deltas) == 3


# --- Anthropic (chunks as langchain-anthropic 1.7 builds them) -------------------------------


def anthropic(content: Any, **kwargs: Any) -> AIMessageChunk:
    chunk = AIMessageChunk(content=content, **kwargs)
    chunk.response_metadata["model_provider"] = "anthropic"
    return chunk


def anthropic_stream() -> list[AIMessageChunk]:
    # message_start; content_block_start(thinking) and (text) give no chunk when empty.
    return [
        anthropic([], response_metadata={"model_name": "claude"}),
        anthropic([{"thinking": "I should ", "type": "thinking", "index": 0}]),
        anthropic([{"thinking": "look it up.", "type": "thinking", "index": 0}]),
        anthropic([{"signature": "EqQB", "type": "thinking", "index": 0, "thinking": ""}]),
        anthropic([{"text": "Looking", "type": "text", "index": 1}]),
        anthropic([{"text": " it up.", "type": "text", "index": 1}]),
        anthropic(
            [{"id": "toolu_1", "input": {}, "name": "search", "type": "tool_use", "index": 2}],
            tool_call_chunks=[tool_call_chunk(name="search", args="", id="toolu_1", index=2)],
        ),
        anthropic(
            [{"partial_json": '{"q": "x', "type": "input_json_delta", "index": 2}],
            tool_call_chunks=[tool_call_chunk(name=None, args='{"q": "x', id=None, index=2)],
        ),
        anthropic(
            [{"partial_json": '"}', "type": "input_json_delta", "index": 2}],
            tool_call_chunks=[tool_call_chunk(name=None, args='"}', id=None, index=2)],
        ),
        anthropic(
            [],
            response_metadata={"stop_reason": "tool_use", "stop_sequence": None},
            chunk_position="last",
        ),
    ]


@pytest.mark.parametrize("output_version", ["v0", "v1"])
def test_anthropic_thinking_text_and_tool_use(output_version: str) -> None:
    model = ScriptedChatModel(chunks=anthropic_stream(), output_version=output_version)
    run = stream_through(model).only
    assert run.reasoning == "I should look it up."
    assert run.text == "Looking it up."
    assert run.calls == {0: {"id": "toolu_1", "name": "search", "arguments": '{"q": "x"}'}}


def test_anthropic_citation_delta_and_text_start_block() -> None:
    chunks = [
        anthropic([{"type": "text", "text": "Per the doc", "index": 0}]),  # content_block_start
        anthropic([{"type": "text", "citations": [{"cited_text": "x"}], "index": 0}]),
        anthropic([{"text": ", yes.", "type": "text", "index": 0}]),
    ]
    assert stream_through(ScriptedChatModel(chunks=chunks)).only.text == "Per the doc, yes."


def test_bare_strings_in_a_list_are_kept() -> None:
    # content_blocks drops these for Anthropic-tagged chunks; the reader must not.
    chunk = anthropic(["plain ", {"type": "text", "text": "and block"}])
    assert chunk.content_blocks == [{"type": "text", "text": "and block"}]
    assert read_all([""], [ChatGenerationChunk(message=chunk)]).text == "plain and block"


# --- Gemini, Ollama, OpenRouter / Groq, Bedrock ----------------------------------------------


def test_gemini_thinking_blocks_strings_and_whole_function_calls() -> None:
    # langchain-google-genai 4.4: thought parts become "thinking" blocks; text is a string,
    # or a block beside thinking; each function call arrives whole with its own index.
    def gemini(content: Any, **kwargs: Any) -> AIMessageChunk:
        return AIMessageChunk(
            content=content, response_metadata={"model_provider": "google_genai"}, **kwargs
        )

    chunks = [
        gemini([{"type": "thinking", "thinking": "Two cities", "index": 0}]),
        gemini(
            [
                {"type": "thinking", "thinking": ", two calls.", "index": 0},
                {"type": "text", "text": "Checking", "index": 1},
            ]
        ),
        gemini(" both."),
        gemini(
            "",
            tool_call_chunks=[
                tool_call_chunk(name="weather", args='{"city": "Oslo"}', id="g-1", index=2)
            ],
        ),
        gemini(
            "",
            tool_call_chunks=[
                tool_call_chunk(name="weather", args='{"city": "Rome"}', id="g-2", index=3)
            ],
        ),
    ]
    run = stream_through(ScriptedChatModel(chunks=chunks)).only
    assert (run.reasoning, run.text) == ("Two cities, two calls.", "Checking both.")
    assert run.calls == {
        0: {"id": "g-1", "name": "weather", "arguments": '{"city": "Oslo"}'},
        1: {"id": "g-2", "name": "weather", "arguments": '{"city": "Rome"}'},
    }


def test_ollama_reasoning_content_and_complete_tool_calls_without_index() -> None:
    # langchain-ollama 1.1 with reasoning=True: thinking in additional_kwargs, tool calls
    # whole (AIMessageChunk turns tool_calls into tool_call_chunks with index None).
    def ollama(content: str, **kwargs: Any) -> AIMessageChunk:
        return AIMessageChunk(content=content, **kwargs)

    chunks = [
        ollama("", additional_kwargs={"reasoning_content": "Need "}),
        ollama("", additional_kwargs={"reasoning_content": "two lookups."}),
        ollama("On it."),
        ollama("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "u-1"}]),
        ollama("", tool_calls=[{"name": "add", "args": {"a": 2}, "id": "u-2"}]),
        ollama("", response_metadata={"model_provider": "ollama", "done_reason": "stop"}),
    ]
    assert chunks[3].tool_call_chunks[0]["index"] is None
    run = stream_through(ScriptedChatModel(chunks=chunks)).only
    assert (run.reasoning, run.text) == ("Need two lookups.", "On it.")
    assert run.calls == {
        0: {"id": "u-1", "name": "add", "arguments": '{"a": 1}'},
        1: {"id": "u-2", "name": "add", "arguments": '{"a": 2}'},
    }


@pytest.mark.parametrize("provider", ["openrouter", "groq", "openai", None])
def test_reasoning_content_whatever_the_provider_tag(provider: str | None) -> None:
    # content_blocks loses this for chunks tagged "openai" (a patched ChatOpenAI).
    metadata = {} if provider is None else {"model_provider": provider}
    chunks = [
        AIMessageChunk(content="", additional_kwargs={"reasoning_content": "a"}),
        AIMessageChunk(content="b", response_metadata=metadata),
    ]
    chunks[0].response_metadata.update(metadata)
    run = stream_through(ScriptedChatModel(chunks=chunks)).only
    assert (run.reasoning, run.text) == ("a", "b")


def test_reasoning_string_in_additional_kwargs() -> None:
    chunks = [AIMessageChunk(content="", additional_kwargs={"reasoning": "why"})]
    chunks.append(AIMessageChunk(content="because"))
    run = stream_through(ScriptedChatModel(chunks=chunks)).only
    assert (run.reasoning, run.text) == ("why", "because")


def test_one_reasoning_key_when_a_server_sends_both() -> None:
    message = AIMessageChunk(
        content="", additional_kwargs={"reasoning_content": "same", "reasoning": "same"}
    )
    assert ChunkReader().feed("", message) == Pieces(reasoning="same")


def test_bedrock_converse_reasoning_content_blocks() -> None:
    chunks = [
        AIMessageChunk(
            content=[
                {"type": "reasoning_content", "reasoning_content": {"text": "hm"}, "index": 0}
            ],
            response_metadata={"model_provider": "bedrock_converse"},
        ),
        AIMessageChunk(
            content=[{"type": "text", "text": "ok", "index": 1}],
            response_metadata={"model_provider": "bedrock_converse"},
        ),
    ]
    run = stream_through(ScriptedChatModel(chunks=chunks)).only
    assert (run.reasoning, run.text) == ("hm", "ok")


def test_thinking_block_without_a_provider_tag() -> None:
    # content_blocks leaves this as non_standard; the reader still finds it.
    message = AIMessageChunk(content=[{"type": "thinking", "thinking": "np"}])
    assert message.content_blocks[0]["type"] == "non_standard"
    assert ChunkReader().feed("", message) == Pieces(reasoning="np")


def test_non_standard_wrapped_reasoning() -> None:
    message = AIMessageChunk(
        content=[{"type": "non_standard", "value": {"type": "thinking", "thinking": "w"}}]
    )
    assert ChunkReader().feed("", message) == Pieces(reasoning="w")


def test_unknown_blocks_use_a_registered_translator(monkeypatch: pytest.MonkeyPatch) -> None:
    # An integration can register a content translator for its own block shapes.
    def translate(message: AIMessage) -> list[types.ContentBlock]:
        blocks: list[types.ContentBlock] = []
        for block in message.content:
            if isinstance(block, dict) and block.get("type") == "acme_thought":
                blocks.append({"type": "reasoning", "reasoning": block["words"]})
        return blocks

    monkeypatch.setitem(
        PROVIDER_TRANSLATORS,
        "acme",
        {"translate_content": translate, "translate_content_chunk": translate},
    )
    message = AIMessageChunk(
        content=[{"type": "acme_thought", "words": "deep"}, {"type": "text", "text": "hi"}],
        response_metadata={"model_provider": "acme"},
    )
    assert ChunkReader().feed("", message) == Pieces(text="hi", reasoning="deep")


def test_failing_translator_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(message: AIMessage) -> list[types.ContentBlock]:
        raise KeyError("words")

    monkeypatch.setitem(
        PROVIDER_TRANSLATORS,
        "acme",
        {"translate_content": broken, "translate_content_chunk": broken},
    )
    message = AIMessageChunk(
        content=[{"type": "acme_thought"}, {"type": "text", "text": "hi"}],
        response_metadata={"model_provider": "acme"},
    )
    assert ChunkReader().feed("", message) == Pieces(text="hi")


# --- LangChain's GenericFakeChatModel --------------------------------------------------------


def test_generic_fake_chat_model_with_think_tags() -> None:
    # It splits on whitespace, so "\n" and "" tokens arrive between the tags and the answer.
    message = AIMessage(content="<think>Plan: add  them.</think>\n\nThe sum is  4.\n")
    run = stream_through(GenericFakeChatModel(messages=iter([message]))).only
    assert (run.reasoning, run.text) == ("Plan: add  them.", "The sum is  4.\n")


def test_generic_fake_chat_model_with_reasoning_in_additional_kwargs() -> None:
    message = AIMessage(content="  Four.", additional_kwargs={"reasoning_content": "2+2"})
    handler = stream_through(GenericFakeChatModel(messages=iter([message])))
    run = handler.only
    assert (run.reasoning, run.text) == ("2+2", "  Four.")


def test_each_run_has_its_own_reader() -> None:
    # Two streams through one handler, their tokens interleaved.
    model = GenericFakeChatModel(
        messages=iter([AIMessage(content="<think>a b</think>one two"), AIMessage(content="3 4")])
    )
    handler = ChannelHandler()
    config: Any = {"callbacks": [handler]}
    for _ in zip_longest(model.stream("x", config=config), model.stream("y", config=config)):
        pass
    assert sorted((r.reasoning, r.text) for r in handler.runs.values()) == [
        ("", "3 4"),
        ("a b", "one two"),
    ]


def test_error_mid_think_releases_held_text_as_reasoning() -> None:
    class Failing(ScriptedChatModel):
        def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            yield from super()._stream(*args, **kwargs)
            raise RuntimeError("connection dropped")

    model = Failing(
        chunks=[AIMessageChunk(content="<think>almost</"), AIMessageChunk(content="th")]
    )
    handler = ChannelHandler()
    with pytest.raises(RuntimeError):
        for _ in model.stream("x", config={"callbacks": [handler]}):
            pass
    assert (handler.only.reasoning, handler.only.text) == ("almost</th", "")


# --- The <think> splitter --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "reasoning", "text"),
    [
        (["<think>a</think>b"], "a", "b"),
        (["<", "t", "h", "i", "n", "k", ">", "a", "<", "/", "think", ">", "\n", "b"], "a", "b"),
        (["  \n", "<think>", "a", "</think>\n\n", "\n", "b\n\nc"], "a", "b\n\nc"),
        (["<think>", "a", "</think>"], "a", ""),
        (["<think>a</think>", " b"], "a", " b"),  # only newlines are stripped
        (["<think>a</think>\r\n", "b"], "a", "b"),
        (["<think>", "never closed</thi"], "never closed</thi", ""),
        (
            ["<think>", "x<thin", "k>y", "</think>z<think>w</think>"],
            "x<think>y",
            "z<think>w</think>",
        ),
        (["<thin"], "", "<thin"),
        (["  <th"], "", "  <th"),
        (["  ", "  "], "", "    "),
        (["<thinking>a"], "", "<thinking>a"),
        (["x<think>a</think>"], "", "x<think>a</think>"),
        (["<", "b>bold</b>"], "", "<b>bold</b>"),
        (["<THINK>a</THINK>"], "", "<THINK>a</THINK>"),
        (["<think></think>\n\nb"], "", "b"),
    ],
)
def test_think_tags(tokens: list[str], reasoning: str, text: str) -> None:
    run = read_all(tokens)
    assert (run.reasoning, run.text) == (reasoning, text)


def test_partial_tag_is_held_until_decided() -> None:
    reader = ChunkReader()
    assert reader.feed("<thi") == Pieces()
    assert reader.feed("ng") == Pieces(text="<thing")
    reader = ChunkReader()
    assert reader.feed("<think>abc</th") == Pieces(reasoning="abc")
    assert reader.feed("ink>\n") == Pieces()
    assert reader.feed("\nok") == Pieces(text="ok")


def test_end_releases_and_starts_over() -> None:
    reader = ChunkReader()
    assert reader.feed("<think>ab</") == Pieces(reasoning="ab")
    assert reader.end() == Pieces(reasoning="</")
    assert reader.end() == Pieces()
    assert reader.feed("<think>c</think>d") == Pieces(text="d", reasoning="c")


def test_think_detection_waits_past_leading_whitespace_tokens() -> None:
    reader = ChunkReader()
    assert reader.feed("\n") == Pieces()
    assert reader.feed(" ") == Pieces()
    assert reader.feed("Hi") == Pieces(text="\n Hi")


# --- Properties ------------------------------------------------------------------------------

# Alphabets rich in the characters the tags are made of.
TAGGY = st.text(
    alphabet=st.sampled_from(list("<>/thinkTHINK \n\r\tx")) | st.characters(), max_size=40
)


def splits(text: str) -> st.SearchStrategy[list[str]]:
    """Any way to cut ``text`` into tokens (empty tokens included)."""
    cuts = st.lists(st.integers(0, len(text)), max_size=12).map(sorted)
    return cuts.map(lambda c: [text[a:b] for a, b in zip([0, *c], [*c, len(text)], strict=True)])


def reference(whole: str) -> tuple[str, str]:
    """What the reader should give for ``whole``, computed in one go."""
    stripped = whole.lstrip()
    if not stripped.startswith(OPEN_TAG):
        return "", whole
    body = stripped[len(OPEN_TAG) :]
    reasoning, closed, answer = body.partition(CLOSE_TAG)
    return reasoning, (answer.lstrip("\r\n") if closed else "")


@given(
    st.data(),
    TAGGY.filter(lambda r: CLOSE_TAG not in r),
    TAGGY.filter(lambda a: not a.startswith(("\n", "\r"))),
)
@example(data=None, reasoning="</thin", answer="<think>x</think>")
def test_any_split_of_a_think_block_yields_reasoning_and_answer(
    data: st.DataObject | None, reasoning: str, answer: str
) -> None:
    whole = OPEN_TAG + reasoning + CLOSE_TAG + "\n\n" + answer
    tokens = [whole[:3], whole[3:]] if data is None else data.draw(splits(whole))
    run = read_all(tokens)
    assert (run.reasoning, run.text) == (reasoning, answer)


@given(st.data(), TAGGY.filter(lambda a: not a.lstrip().startswith(OPEN_TAG)))
@example(data=None, answer=" <thin")
def test_any_split_of_an_answer_without_think_is_unchanged(
    data: st.DataObject | None, answer: str
) -> None:
    tokens = [answer[:2], answer[2:]] if data is None else data.draw(splits(answer))
    run = read_all(tokens)
    assert (run.reasoning, run.text) == ("", answer)


@given(
    st.data(), st.one_of(TAGGY, TAGGY.map(lambda s: OPEN_TAG + s), TAGGY.map(" <think>".__add__))
)
def test_streaming_matches_reading_everything_at_once(data: st.DataObject, whole: str) -> None:
    run = read_all(data.draw(splits(whole)))
    assert (run.reasoning, run.text) == reference(whole)


@given(
    st.data(),
    TAGGY.filter(lambda r: CLOSE_TAG not in r),
    TAGGY.filter(lambda a: not a.startswith(("\n", "\r"))),
)
def test_chunk_shapes_do_not_change_the_result(
    data: st.DataObject, reasoning: str, answer: str
) -> None:
    # The same stream as plain tokens, as string-content chunks, and as text blocks.
    tokens = data.draw(splits(OPEN_TAG + reasoning + CLOSE_TAG + "\n" + answer))
    as_strings = [ChatGenerationChunk(message=AIMessageChunk(content=t)) for t in tokens]
    as_blocks = [
        ChatGenerationChunk(message=AIMessageChunk(content=[{"type": "text", "text": t}]))
        for t in tokens
    ]
    for chunks in (None, as_strings, as_blocks):
        run = read_all(tokens, chunks)
        assert (run.reasoning, run.text) == (reasoning, answer)
