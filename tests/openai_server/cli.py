"""A small OpenAI-compatible streaming server for tests and benchmarks.

Command line: ``python -m tests.openai_server --port 8765 --tokens 200 --rate 50``.
"""

from __future__ import annotations

import argparse
import signal
from typing import TYPE_CHECKING

from .knobs import Knobs
from .server import StreamServer

if TYPE_CHECKING:
    from collections.abc import Iterable


def main(argv: Iterable[str] | None = None) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM; prints its base URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.openai_server",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--tokens", type=int, default=Knobs.tokens)
    parser.add_argument("--rate", type=float, default=Knobs.rate, help="tokens/s, 0 = max")
    parser.add_argument("--text", default=None, help="exact reply text")
    parser.add_argument("--echo", action="store_true", help="quote the last user message")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(None if argv is None else list(argv))
    knobs = Knobs(tokens=args.tokens, rate=args.rate, text=args.text, echo=args.echo)
    try:
        knobs.validate()
    except ValueError as exc:
        parser.error(str(exc))
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started in the background (where
    # shells make SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    server = StreamServer(args.host, args.port, knobs, verbose=args.verbose).start()
    print(server.base_url, flush=True)
    server.serve_until_interrupted()
    return 0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
