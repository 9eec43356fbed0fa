"""A JupyterLab server process with throwaway directories, and its REST API."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .constants import KERNEL_NAME, PROJECT_ROOT, PROVIDER_ENV, TOKEN, WIDGET_EXTENSION

if TYPE_CHECKING:
    from collections.abc import Mapping


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# server
# ---------------------------------------------------------------------------------------------


@dataclass
class LabServer:
    """A running JupyterLab server (see :meth:`start`)."""

    base_url: str
    token: str
    root_dir: Path
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls,
        home: Path,
        *,
        log_path: Path,
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> LabServer:
        """Start ``python -m jupyter lab`` with everything throwaway under ``home``.

        ``extra_env`` is added to the server's (and so its kernels') environment after the
        provider variables (``OPENAI_*``) were removed: that is how a test model server
        and a fake key reach the notebooks, which then never hold a key themselves.

        Waits until ``/api/status`` answers and the kernelspec points at this interpreter.
        """
        root = home / "root"
        cfg, data, runtime = home / "config", home / "data", home / "runtime"
        settings, workspaces, ipython = home / "lab-settings", home / "workspaces", home / "ipython"
        for d in (root, cfg, data, runtime, settings, workspaces, ipython):
            d.mkdir(parents=True, exist_ok=True)

        # Kernel "python3" of this very interpreter (the venv); JUPYTER_DATA_DIR comes first
        # in the data path (JUPYTER_PREFER_ENV_PATH=0), so this one shadows the venv's
        # share/jupyter/kernels/python3.
        _write_json(
            data / "kernels" / KERNEL_NAME / "kernel.json",
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "interrupt_mode": "signal",
                "metadata": {"debugger": True},
            },
        )
        # User settings: no news/update toast, no autosave (saving is explicit in tests),
        # every cell attached to the DOM (no windowing), so off-screen cells stay readable.
        _write_json(
            settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
            {"fetchNews": "false", "checkForUpdates": False},
        )
        _write_json(
            settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings",
            {"autosave": False},
        )
        _write_json(
            settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
            {"windowingMode": "none"},
        )

        port = _free_port()
        _write_json(
            cfg / "jupyter_server_config.json",
            {
                "ServerApp": {
                    "ip": "127.0.0.1",
                    "port": port,
                    "port_retries": 0,
                    "open_browser": False,
                    "root_dir": str(root),
                    "allow_root": True,
                    "terminals_enabled": False,
                },
                "IdentityProvider": {"token": TOKEN},
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "extension_manager": "readonly",
                    "expose_app_in_browser": True,
                    "user_settings_dir": str(settings),
                    "workspaces_dir": str(workspaces),
                },
            },
        )

        env = dict(os.environ)
        # nothing reaches a real provider or the developer's own data by accident (the same
        # rule as tests/conftest.py's _isolated_environment, for the kernels of this server)
        for var in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", *PROVIDER_ENV):
            env.pop(var, None)
        env.update(
            {
                # in a venv jupyter_core puts the env's dirs before the user dirs; we want our
                # throwaway user dirs first (the venv's share/jupyter stays on the path)
                "JUPYTER_PREFER_ENV_PATH": "0",
                "JUPYTER_CONFIG_DIR": str(cfg),
                "JUPYTER_DATA_DIR": str(data),
                "JUPYTER_RUNTIME_DIR": str(runtime),
                "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
                "JUPYTER_PLATFORM_DIRS": "0",
                "IPYTHONDIR": str(ipython),
                "XDG_DATA_HOME": str(home / "xdg-data"),
                # the kernel imports the working tree's ipy_stream, whatever is installed
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra_env or {})
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("wb")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "lab"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kernels die with it
            )
        finally:
            log.close()
        server = cls(
            base_url=f"http://127.0.0.1:{port}",
            token=TOKEN,
            root_dir=root,
            home=home,
            log_path=log_path,
            process=proc,
        )
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    # -- lifecycle -----------------------------------------------------------------------------

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "/api/status", timeout=2)
                break
            except (OSError, urllib.error.URLError) as exc:
                last_error = exc
                time.sleep(0.1)
        else:
            raise TimeoutError(
                f"jupyter lab not ready after {timeout}s ({last_error}):\n{self.log_tail()}"
            )
        spec = self.api("GET", "/api/kernelspecs")["kernelspecs"][KERNEL_NAME]["spec"]
        if spec["argv"][0] != sys.executable:
            raise RuntimeError(f"kernelspec {KERNEL_NAME} is not this interpreter: {spec['argv']}")
        names = {e.get("name") for e in self.page_config().get("federated_extensions", [])}
        if WIDGET_EXTENSION not in names:
            raise RuntimeError(
                f"JupyterLab does not load {WIDGET_EXTENSION} (federated extensions: {names}); "
                "is ipywidgets/jupyterlab_widgets installed in this environment?"
            )

    def page_config(self) -> dict[str, Any]:
        """The ``jupyter-config-data`` JSON that /lab serves to the browser."""
        req = urllib.request.Request(self.url("/lab"))
        with urllib.request.urlopen(req, timeout=10) as resp:
            html = resp.read().decode("utf-8")
        m = re.search(
            r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S
        )
        if not m:
            raise RuntimeError("no jupyter-config-data in /lab")
        return dict(json.loads(m.group(1)))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (jupyter server shuts its kernels down), then SIGKILL its process group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # leftovers of the group we started
        if self.process.poll() is None:
            self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- REST ----------------------------------------------------------------------------------

    def url(self, path: str, **query: str) -> str:
        """Absolute URL for ``path`` with the token (and ``query``) appended."""
        q = urllib.parse.urlencode({**query, "token": self.token})
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}{q}"

    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def kernels(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/kernels"))

    def sessions(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/sessions"))

    def shutdown_all_kernels(self) -> None:
        for s in self.sessions():
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/sessions/{s['id']}")
        for k in self.kernels():
            with contextlib.suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/kernels/{k['id']}")

    def last_modified(self, path: str) -> str | None:
        """The contents API's ``last_modified`` of ``path`` (relative to root), or None."""
        try:
            model = self.api("GET", f"/api/contents/{urllib.parse.quote(path)}?content=0")
        except urllib.error.HTTPError:
            return None
        return str(model["last_modified"])
