"""Size and load: a huge answer, a huge prompt, twenty background streams at once.

All over real HTTP to the project's OpenAI-compatible test server, through the magic.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from tests.openai_server import StreamServer, generate_reply
from tests.saved_output import saved
from tests.support import background_threads, log_rows, run

MODEL = "gpt-4o-mini"


def huge_answer(size: int = 1_000_000) -> str:
    """About ``size`` characters of Markdown ending in a recognisable last line.

    Words are long (~500 characters) so the reply is ~2,000 tokens: the openai client
    spends ~1 ms parsing each chunk, and what is measured here is size, not token count.
    """
    words = [f"w{index}".ljust(497, "abcdefghij"[index % 10]) for index in range(10)]
    paragraph = " ".join(words) + "\n\n"
    head = "# A very long answer\n\n"
    body = (paragraph * (size // len(paragraph) + 1))[: size - len(head) - 40]
    return head + body + "\n\nThe last line of the answer: THE END."


def test_a_million_character_answer_arrives_whole_in_linear_memory(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    answer = huge_answer()
    assert 999_000 <= len(answer) <= 1_000_000
    # Warm up: imports, HTTP client and widget classes are created once per process and
    # are not part of the answer's cost.
    server.configure(tokens=5, rate=0)
    assert run(http, f"%%stream -m {MODEL} -o warm\nhi")[0].success
    server.reset()
    server.configure(text=answer, rate=0)

    tracemalloc.start()
    try:
        result, captured = run(http, f"%%stream -m {MODEL} -o out\nWrite a lot")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.success, captured.stdout + captured.stderr
    assert http.user_ns["out"] == answer
    (kept,) = captured.final_outputs()
    assert kept["data"]["text/plain"] == answer
    shown = saved(kept["data"]).answer
    assert shown.renders(answer)
    assert shown.footer.startswith(f"{MODEL} · done")
    assert log_rows(log_path)[-1]["answer"] == answer
    # The answer lives in a handful of full copies at once (the server's reply and its
    # record, the client's merged message, the collected parts and their join, the
    # widget's text, -o, the log row, the saved Markdown), plus LangChain's and openai's
    # per-chunk objects: about 11x the answer's size is measured. An implementation that
    # kept every intermediate text (a join or render per token, a message per flush with
    # the whole text, ...) holds ~tokens/2 copies: ~1,000x here. 60x leaves room for
    # library changes and still fails such an implementation by far.
    assert peak < 60 * len(answer), f"peak {peak / len(answer):.0f}x the answer's size"


def test_a_200_000_character_prompt_variable_is_sent_intact(
    http: InteractiveShell, server: StreamServer
) -> None:
    unit = 'Line {not_a_var} {{x}} "quoted" \\ tab\t émoji 😀 עברית e\u0301 NUL\x00 end\n'
    document = (unit * (200_000 // len(unit) + 1))[:200_000]
    http.user_ns["document"] = document
    server.configure(tokens=5, rate=0)
    result, captured = run(http, f"%%stream -m {MODEL} -o out\nSummarize this:\n{{document}}")
    assert result.success, captured.stdout + captured.stderr
    (request,) = server.completion_requests
    assert request.body is not None
    assert request.body["messages"] == [{"role": "user", "content": "Summarize this:\n" + document}]


def test_twenty_background_streams_each_get_exactly_their_own_text(
    http: InteractiveShell, server: StreamServer, log_path: Path
) -> None:
    count = 20
    # Each reply starts by quoting its own prompt, so a mix-up cannot go unnoticed.
    # Each stream is held after its first token until all twenty have started, so they
    # overlap however slowly the machine starts them.
    server.configure(echo=True, tokens=40, rate=25, stall_after=1, stall_seconds=120)
    tail = "".join(generate_reply(40))
    prompts = [f"Stream number {index} of {count}, the {'x' * index} one" for index in range(count)]
    expected = {f"out{index}": f"> {prompt}\n\n{tail}" for index, prompt in enumerate(prompts)}

    publisher = CapturingDisplayPublisher()
    original = http.display_pub
    http.display_pub = publisher  # background runs publish after their cell has returned
    try:
        with capture_output(display=False) as io:
            results = [
                http.run_cell(f"%%stream -m {MODEL} --bg -o out{index}\n{prompt}")
                for index, prompt in enumerate(prompts)
            ]
            server.wait_for(lambda: len(server.completion_requests) == count, timeout=60)
            server.end_stall()
            for thread in background_threads():
                thread.join(timeout=30)
    finally:
        http.display_pub = original
    assert background_threads() == [], "a background stream did not finish"
    assert all(result.success for result in results)
    assert "Traceback" not in io.stdout + io.stderr

    # -o: each cell got its own answer, whole.
    assert {name: http.user_ns.get(name) for name in expected} == expected
    # The saved outputs: one final Markdown per cell, each with its own answer only.
    finals = [shown for shown in publisher.outputs if shown.get("update")]
    assert len(finals) == count
    answers = {json.dumps(f["data"]["text/plain"]) for f in finals}
    assert answers == {json.dumps(text) for text in expected.values()}
    for shown in finals:
        answer = saved(shown["data"]).answer
        assert sum(answer.renders(text) for text in expected.values()) == 1
        assert answer.footer.startswith(f"{MODEL} · done")
    # The run log has all twenty, each answer next to its own prompt.
    rows = log_rows(log_path)
    assert len(rows) == count
    pairs = {(json.loads(row["messages"])[-1]["content"], row["answer"]) for row in rows}
    assert pairs == {(prompt, f"> {prompt}\n\n{tail}") for prompt in prompts}
    # And they really ran at once: every request was open when the last one started.
    records = server.completion_requests
    assert len(records) == count
    assert all(record.completed for record in records)
    last_start = max(record.started for record in records)
    assert all(record.finished is not None and record.finished > last_start for record in records)
