"""Run the project's OpenAI-compatible test server for the benchmark, in its own process.

Prints one JSON line: ``{"url", "base_url", "offset"}`` where ``offset`` is
``time.time() - time.monotonic()`` taken in this process, so the ``token_times``
(``time.monotonic()``) of its request records convert to wall-clock time as
``t + offset``. Serves until SIGTERM, SIGINT or end of stdin.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.openai_server import StreamServer


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = StreamServer().start()
    try:
        offsets = []
        for _ in range(5):  # the tightest pair of readings
            a = time.monotonic()
            wall = time.time()
            b = time.monotonic()
            offsets.append((b - a, wall - (a + b) / 2))
        offset = min(offsets)[1]
        line = {"url": server.url, "base_url": server.base_url, "offset": offset}
        print(json.dumps(line), flush=True)

        def watch_stdin() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stop.wait(0.2):
            pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
