"""Fixtures for the real-browser tests: one JupyterLab server and one headless Chromium per
session, a fresh browser context, page and workspace per test.

Fixtures: ``lab_server`` (session, :class:`LabServer`), ``browser`` (session, Playwright
Browser), ``page`` (per test: new context 1280x900 + page), ``lab`` (per test, :class:`Lab`:
write/open notebooks in a folder of its own), ``dialogs`` (per test: every alert/confirm/
prompt any page of the test opened, each dismissed).  On a failing test a screenshot and the
browser console go to ``tests/artifacts/``; the server log is
``tests/artifacts/jupyter-server.log``.  Set ``IPY_STREAM_CHROMIUM`` to use another Chromium.

The model server: the lab server's kernels get ``OPENAI_BASE_URL`` = the session's test
server (``stream_server`` from tests/conftest.py) and ``OPENAI_API_KEY`` = :data:`FAKE_KEY`,
so notebooks never hold a key or a setup cell. A test that streams takes the ``server``
fixture (it resets the knobs) and sets knobs: ``server.configure(tokens=120, rate=30)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .lab import (
    ARTIFACTS_DIR,
    CHROMIUM,
    CHROMIUM_ARGS,
    FAKE_KEY,
    INIT_SCRIPT,
    VIEWPORT,
    Lab,
    LabServer,
)

if TYPE_CHECKING:
    from collections.abc import Generator

    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page

    from tests.openai_server import StreamServer

_FAILED = pytest.StashKey[bool]()
_DIALOGS = pytest.StashKey[list[str]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:100]


@pytest.fixture(scope="session")
def lab_server(
    tmp_path_factory: pytest.TempPathFactory, stream_server: StreamServer
) -> Generator[LabServer]:
    for stale in ARTIFACTS_DIR.glob("FAILED-*"):
        stale.unlink()
    server = LabServer.start(
        tmp_path_factory.mktemp("jupyterlab"),
        log_path=ARTIFACTS_DIR / "jupyter-server.log",
        extra_env={"OPENAI_BASE_URL": stream_server.base_url, "OPENAI_API_KEY": FAKE_KEY},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Generator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's Chromium "
            "(`apt-get install chromium`), or set IPY_STREAM_CHROMIUM to a Chromium binary. "
            "Never `playwright install`.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(
    browser: Browser, lab_server: LabServer, request: pytest.FixtureRequest
) -> Generator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.add_init_script(INIT_SCRIPT)
    context.set_default_timeout(30_000)
    console: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        console.append(f"[{msg.type}] {msg.text}")

    dialogs: list[str] = []
    request.node.stash[_DIALOGS] = dialogs

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        console.append(f"[dialog] {dialog.type}: {dialog.message}")
        dialog.dismiss()

    context.on("console", on_console)
    context.on("weberror", lambda err: console.append(f"[pageerror] {err.error}"))
    context.on("dialog", on_dialog)
    pg = context.new_page()
    try:
        yield pg
    finally:
        try:
            if request.node.stash.get(_FAILED, False):
                ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
                stem = ARTIFACTS_DIR / f"FAILED-{_safe(request.node.name)}"
                for p in context.pages:
                    if not p.is_closed():
                        p.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.console.txt").write_text("\n".join(console), encoding="utf-8")
        finally:
            context.close()
            lab_server.shutdown_all_kernels()


@pytest.fixture
def lab(lab_server: LabServer, page: Page, request: pytest.FixtureRequest) -> Lab:
    return Lab(lab_server, page.context, page, folder=_safe(request.node.name))


@pytest.fixture
def dialogs(page: Page, request: pytest.FixtureRequest) -> list[str]:
    """``"type: message"`` of every dialog (alert, confirm, prompt, beforeunload) that any page
    of this test's browser context opened, so far; each was dismissed at once."""
    return request.node.stash[_DIALOGS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the README screenshot generator (it rewrites docs/screenshot.png) unless
    IPY_STREAM_SCREENSHOT=1 asks for it."""
    if os.environ.get("IPY_STREAM_SCREENSHOT") == "1":
        return
    generators = [item for item in items if item.get_closest_marker("screenshot")]
    if generators:
        config.hook.pytest_deselected(items=generators)
        items[:] = [item for item in items if not item.get_closest_marker("screenshot")]
