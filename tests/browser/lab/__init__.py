"""Drive a real JupyterLab (4.x) in headless Chromium through Playwright.

Two layers:

* :class:`LabServer` (``server.py``) starts and stops ``python -m jupyter lab`` on 127.0.0.1
  with throwaway config/data/runtime/settings/workspace directories and talks to its REST API.
* :class:`Lab` (``workspace.py``, one per test) writes notebooks into the server's root
  directory and opens them in a fresh workspace; :class:`NotebookPage` is the handle on one
  opened notebook: run cells, wait for them, read outputs, record how an output changes over
  time, save, interrupt, shut the kernel down, reopen, take screenshots. Its JupyterLab part
  is ``notebook.py``; ``stream_page.py`` adds ipy_stream's live view and the watch for unsafe
  output.

``recording.py`` holds what a recording of an output is made of (:class:`Sample`,
:class:`Recording`, :func:`sample_text`); ``page_script.py`` the in-page helpers
(:data:`INIT_SCRIPT`); ``constants.py`` paths, the fake key, the browser and the selectors.

Cell indices are 0-based. Every wait is a wait-for-condition bounded by a timeout (seconds);
nothing sleeps for a fixed time.

JupyterLab is started with ``--LabApp.expose_app_in_browser=True`` so ``window.jupyterapp``
exists; the helpers use it only to find the notebook panel and its kernel connection, the
rest goes through the DOM, the keyboard and the toolbar like a person would.
"""

from __future__ import annotations

from .constants import (
    ARTIFACTS_DIR,
    CHROMIUM,
    CHROMIUM_ARGS,
    FAKE_KEY,
    KERNEL_NAME,
    PROJECT_ROOT,
    PROVIDER_ENV,
    SEL_CELL,
    SEL_CODE_CELL,
    SEL_DIALOG,
    SEL_EXEC_INDICATOR,
    SEL_INPUT_PROMPT,
    SEL_INTERRUPT,
    SEL_OUTPUT,
    SEL_OUTPUT_AREA,
    SEL_SAVED_OUTPUT,
    SEL_STREAM,
    SEL_STREAM_BODY,
    SEL_STREAM_FOOTER,
    SEL_STREAM_GRID,
    SEL_STREAM_STOP,
    SEL_WIDGET,
    STATUS,
    STREAM_STATUSES,
    TOKEN,
    VIEWPORT,
    WIDGET_EXTENSION,
)
from .notebook import LabNotebook
from .page_script import INIT_SCRIPT
from .recording import Recording, Sample, distinct, sample_text
from .server import LabServer
from .stream_page import NotebookPage
from .workspace import Lab, make_notebook

__all__ = [
    "ARTIFACTS_DIR",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "FAKE_KEY",
    "INIT_SCRIPT",
    "KERNEL_NAME",
    "PROJECT_ROOT",
    "PROVIDER_ENV",
    "SEL_CELL",
    "SEL_CODE_CELL",
    "SEL_DIALOG",
    "SEL_EXEC_INDICATOR",
    "SEL_INPUT_PROMPT",
    "SEL_INTERRUPT",
    "SEL_OUTPUT",
    "SEL_OUTPUT_AREA",
    "SEL_SAVED_OUTPUT",
    "SEL_STREAM",
    "SEL_STREAM_BODY",
    "SEL_STREAM_FOOTER",
    "SEL_STREAM_GRID",
    "SEL_STREAM_STOP",
    "SEL_WIDGET",
    "STATUS",
    "STREAM_STATUSES",
    "TOKEN",
    "VIEWPORT",
    "WIDGET_EXTENSION",
    "Lab",
    "LabNotebook",
    "LabServer",
    "NotebookPage",
    "Recording",
    "Sample",
    "distinct",
    "make_notebook",
    "sample_text",
]
