"""One test's folder of notebooks on the lab server, opened in its browser page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import nbformat

from .constants import ARTIFACTS_DIR, KERNEL_NAME
from .stream_page import NotebookPage

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from playwright.sync_api import BrowserContext, Page

    from .server import LabServer


def make_notebook(cells: Sequence[str | nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """A v4 notebook for the ``python3`` kernel (without kernelspec metadata JupyterLab asks
    for a kernel in a dialog). str cells become code cells; pass other cells ready-made, e.g.
    ``nbformat.v4.new_markdown_cell("# title")``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


class Lab:
    """Per-test entry point: a server, a browser context, a private folder under the root."""

    def __init__(self, server: LabServer, context: BrowserContext, page: Page, folder: str):
        self.server = server
        self.context = context
        self.page = page
        self.folder = folder  # relative to server.root_dir, unique per test
        (server.root_dir / folder).mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        """Server-relative path of ``name`` inside this test's folder."""
        return f"{self.folder}/{name}"

    def write_notebook(self, name: str, cells: Sequence[str | nbformat.NotebookNode]) -> str:
        """Write ``name`` (``.ipynb`` added if missing) and return its server-relative path."""
        if not name.endswith(".ipynb"):
            name += ".ipynb"
        rel = self.path(name)
        nbformat.write(make_notebook(cells), self.server.root_dir / rel)
        return rel

    def read_notebook(self, path: str) -> nbformat.NotebookNode:
        """The notebook as saved on disk."""
        return nbformat.read(self.server.root_dir / path, as_version=4)

    def open(self, path: str, *, timeout: float = 60.0) -> NotebookPage:
        """Open ``path`` in this test's page in a fresh workspace; wait for the kernel idle."""
        nb = NotebookPage(self, path)
        nb.open(timeout=timeout)
        return nb

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        out = ARTIFACTS_DIR / f"{name}.png"
        self.page.screenshot(path=str(out), full_page=full_page)
        return out
