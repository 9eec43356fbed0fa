"""The live view's built front end, shipped in ``ipy_stream/static``.

The front end's code: the widget's ``_esm`` is ``loader.js`` (about 1 kB); the view
itself (``live.js``, about 200 kB with markdown-it, DOMPurify and highlight.js) is
the ``_bundle`` trait, gzip-compressed, which Jupyter sends as a binary buffer (no
JSON string escaping, no base64): about 75 kB per widget. The loader unpacks it
with the browser's ``DecompressionStream`` and imports it once per page.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from importlib import resources
from pathlib import Path

__all__ = ["packed_bundle", "static_path"]


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
