"""ipy_stream: stream LLM answers into Jupyter as live Markdown, kept as safe HTML.

Load it with ``%load_ext ipy_stream`` and use the ``%%stream`` cell magic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "load_ipython_extension"]
__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%stream`` (called by ``%load_ext ipy_stream``)."""
    from ipy_stream.magic import StreamMagics

    ipython.register_magics(StreamMagics(shell=ipython))
