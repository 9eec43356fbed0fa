"""Terminal IPython (no widgets): tokens are printed as they arrive, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.openai_server import StreamServer, generate_reply

SCRIPT = """
ip = get_ipython()
ip.run_cell("%load_ext ipy_stream")
ip.run_cell("topic = 'terminals'")
ip.run_cell("%%stream -m gpt-4o-mini -o answer\\nWrite about {topic}")
_ = ip.run_cell("print('KEPT', len(answer))")
"""


def test_tokens_print_as_they_arrive_without_widget_reprs(server: StreamServer) -> None:
    server.configure(tokens=80, rate=40)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-terminal-test")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "IPython",
            "--no-banner",
            "--simple-prompt",
            "--colors=nocolor",
            "-c",
            SCRIPT,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines = [(time.monotonic(), line) for line in process.stdout]
    errors = process.stderr.read()
    assert process.wait(timeout=60) == 0
    expected = "".join(generate_reply(80))
    output = "".join(line for _, line in lines)
    first_line_at, first_line = lines[0]
    ended_at = next(t for t, line in lines if line.startswith("— "))
    # The first line of the answer was on screen well before the stream ended.
    assert first_line == expected.split("\n")[0] + "\n"
    assert ended_at - first_line_at > 0.5
    assert output.startswith(expected + "\n— gpt-4o-mini · done · ")
    assert f"KEPT {len(expected)}" in output
    for noise in ("VBox", "HTML(", "<ipy_stream", "Widget", "Out["):
        assert noise not in output
    assert "Traceback" not in errors
