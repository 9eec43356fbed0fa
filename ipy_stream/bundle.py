"""The live view's built front end, shipped in ``ipy_stream/static``, and sent once per kernel.

The front end's code: each live view's ``_esm`` is ``loader.js`` (about 1 kB); the
view itself (``live.js``, about 200 kB with markdown-it, DOMPurify and highlight.js)
is the ``_bundle`` trait of one hidden widget per kernel (:class:`FrontEnd`),
gzip-compressed, which Jupyter sends as a binary buffer (no JSON string escaping, no
base64): about 80 kB once, instead of with every run. A live view carries only the
bundle's id; the loader unpacks the bundle with the browser's ``DecompressionStream``,
imports it once per page and hands it to every view with that id.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import threading
from importlib import resources
from pathlib import Path

import anywidget
import traitlets

__all__ = ["FrontEnd", "packed_bundle", "shared_front_end", "static_path"]


def static_path(name: str) -> Path:
    """A file of the built front end shipped in the package (``ipy_stream/static``)."""
    path = Path(str(resources.files("ipy_stream") / "static" / name))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the live view's front end was not built. Reinstall "
            "ipy_stream, or run `npm ci && npm run build` in js/."
        )
    return path


@functools.cache
def packed_bundle() -> tuple[bytes, str]:
    """``live.js`` gzip-compressed (deterministic bytes), and an id for its content."""
    code = static_path("live.js").read_bytes()
    packed = gzip.compress(code, compresslevel=9, mtime=0)
    return packed, hashlib.sha256(code).hexdigest()[:16]


class FrontEnd(anywidget.AnyWidget):
    """The live view's module, for the pages that show this kernel's live views.

    Never displayed: the page creates its model (it is a widget the kernel opened),
    and the loader unpacks and imports the bundle from its state.
    """

    _esm = static_path("loader.js")
    _bundle = traitlets.Bytes(b"").tag(sync=True)
    _bundle_id = traitlets.Unicode("").tag(sync=True)
    _library = traitlets.Bool(True).tag(sync=True)


_shared: list[FrontEnd] = []  # this kernel's FrontEnd, once made
_shared_lock = threading.Lock()


def shared_front_end() -> str:
    """The id of the bundle that this kernel's :class:`FrontEnd` carries, made on first
    use and again if it was closed (``Widget.close_all()``)."""
    with _shared_lock:
        if not _shared or getattr(_shared[0], "comm", None) is None:
            bundle, bundle_id = packed_bundle()
            _shared[:] = [FrontEnd(_bundle=bundle, _bundle_id=bundle_id)]
        return _shared[0]._bundle_id
