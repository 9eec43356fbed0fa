"""Is the built front end (ipy_stream/static/: live.js, loader.js, live.css) up to date with js/?

The bundle's first line carries ``sources sha256:<hex>``, the hash that
``js/build.mjs`` computed over its sources; :func:`source_hash` computes the same
hash here, so Python (the build hook, the tests) can tell a stale bundle without
node. Keep the file list in step with ``sourceFiles()`` in build.mjs.

Used by ``js/hatch_build.py`` (packaging) and ``tests/test_live.py``; it only
needs the standard library.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

JS_DIR = Path(__file__).resolve().parent
ROOT = JS_DIR.parent
STATIC_DIR = ROOT / "ipy_stream" / "static"
BUNDLES = ("live.js", "loader.js", "live.css")
_STAMP = re.compile(rb"sources sha256:([0-9a-f]{64})")


def source_files(js_dir: Path = JS_DIR) -> list[str]:
    """The files whose content decides the bundle, as sorted POSIX paths relative to js/.

    ``../ipy_stream/policy.json`` (the HTML policy, shared with ``ipy_stream/render.py``)
    is bundled too.
    """
    files = ["../ipy_stream/policy.json", "build.mjs", "package-lock.json", "package.json"]
    files += [
        path.relative_to(js_dir).as_posix()
        for path in (js_dir / "src").rglob("*")
        if path.is_file()
    ]
    return sorted(files)


def source_hash(js_dir: Path = JS_DIR) -> str:
    """sha256 over each source's path and content (CRLF read as LF), like build.mjs."""
    digest = hashlib.sha256()
    for name in source_files(js_dir):
        content = (js_dir / name).read_bytes().replace(b"\r\n", b"\n")
        digest.update(name.encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def bundle_stamp(path: Path) -> str | None:
    """The source hash a bundle says it was built from, or None (missing, unstamped)."""
    try:
        with path.open("rb") as file:
            head = file.read(512)
    except FileNotFoundError:
        return None
    match = _STAMP.search(head)
    return match.group(1).decode() if match else None


def stale_bundles(static_dir: Path = STATIC_DIR, js_dir: Path = JS_DIR) -> list[str]:
    """The bundles that are missing or were built from other sources."""
    expected = source_hash(js_dir)
    return [name for name in BUNDLES if bundle_stamp(static_dir / name) != expected]


def _npm() -> str | None:
    return shutil.which("npm")


def build(log: Callable[[str], object] = print, js_dir: Path = JS_DIR) -> None:
    """``npm ci`` (when node_modules is missing or older than the lock) and ``npm run build``."""
    npm = _npm()
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js (>= 18) to build js/")
    installed = js_dir / "node_modules" / ".package-lock.json"
    lock = js_dir / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        log("ipy_stream: npm ci (js/)")
        # The bundle needs no install script (esbuild's binary comes as a package).
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=js_dir, check=True
        )
    log("ipy_stream: npm run build (js/ -> ipy_stream/static/)")
    subprocess.run([npm, "run", "build"], cwd=js_dir, check=True)


def ensure_built(
    log: Callable[[str], object] = print, warn: Callable[[str], object] = print
) -> None:
    """Build the bundle when it is missing or stale; keep a stale one if npm is missing.

    ``IPY_STREAM_JS_BUILD=skip`` never builds, ``=force`` always does.
    """
    mode = os.environ.get("IPY_STREAM_JS_BUILD", "auto").lower()
    if mode == "skip":
        return
    stale = stale_bundles()
    if mode != "force" and not stale:
        return
    if _npm() is None and mode != "force":
        missing = [name for name in stale if not (STATIC_DIR / name).exists()]
        if missing:
            raise RuntimeError(
                f"ipy_stream/static/{missing[0]} is missing and npm is not on PATH: "
                "install Node.js (>= 18) to build the live view's front end from js/."
            )
        warn(
            "ipy_stream: js/ sources changed since ipy_stream/static/ was built, and npm "
            "is not on PATH: packaging the previous build."
        )
        return
    build(log)
    still_stale = stale_bundles()
    if still_stale:
        raise RuntimeError(f"the build did not produce up-to-date {', '.join(still_stale)}")
