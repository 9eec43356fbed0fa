"""Where things are, the lab server's token and fake key, the browser, and the DOM selectors
the helpers rely on (JupyterLab's and ipy_stream's live view's)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS_DIR = PROJECT_ROOT / "tests" / "artifacts"
TOKEN = "ipy-stream-browser-tests"
KERNEL_NAME = "python3"
WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
FAKE_KEY = "sk-browser-test-5f1d2c3b4a59687766554433"
"""The OPENAI_API_KEY of the lab server's kernels (conftest.py); it must never be shown,
saved or sent anywhere but the test model server."""

CHROMIUM = os.environ.get("IPY_STREAM_CHROMIUM", "/usr/bin/chromium")
"""The Chromium binary the browser tests and the benchmark drive (Debian's by default)."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}

# --- selectors that proved robust in JupyterLab 4.6 -------------------------------------------
SEL_CELL = ".jp-Notebook .jp-Cell"  # every cell (code, markdown, raw), in order
SEL_CODE_CELL = "jp-CodeCell"  # class on code cells
SEL_INPUT_PROMPT = ".jp-InputArea-prompt"  # "[ ]:", "[*]:", "[3]:"
SEL_OUTPUT_AREA = ".jp-Cell-outputArea"  # the whole output area of one cell
SEL_OUTPUT = ".jp-OutputArea-output"  # one output (stream, result, display, error)
SEL_SAVED_OUTPUT = ".jp-RenderedHTML"  # the text/html output a finished run leaves
SEL_EXEC_INDICATOR = ".jp-Notebook-ExecutionIndicator"  # has data-status="idle"|"busy"|...
SEL_INTERRUPT = '.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]'
SEL_DIALOG = ".jp-Dialog"
SEL_WIDGET = ".jupyter-widgets"  # root of any rendered ipywidget view
# product DOM contract (ipy_stream's live widget)
SEL_STREAM = ".ipy-stream"  # root, with data-status streaming|done|failed|interrupted
SEL_STREAM_BODY = ".ipy-stream-body"
SEL_STREAM_FOOTER = ".ipy-stream-footer"
SEL_STREAM_GRID = ".ipy-stream-grid"  # side-by-side panes (-m a,b)
SEL_STREAM_STOP = ".ipy-stream-stop"  # Stop button of background runs (--bg)
STREAM_STATUSES = ("streaming", "done", "failed", "interrupted")
STATUS = ":status"
"""Pseudo-attribute for :meth:`NotebookPage.record`: the live view's status, read from
``data-status`` or, failing that, from an ``ipy-stream--<status>`` class (the first
ipywidgets view had only the class)."""
