"""Notebook values that are pictures, turned into PNG or JPEG bytes for the model.

Recognised by the module and name of their class (or a base class), so nothing is
imported to check: a matplotlib ``Figure``, ``SubFigure`` or ``Axes`` (its figure, as
``df.plot()`` returns an Axes), a PIL ``Image``, an ``IPython.display.Image``, and
``bytes`` that start like a PNG or JPEG file. Only the object's own methods are called.
Nothing here knows LangChain or IPython's shell.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ipy_stream.errors import PromptError

__all__ = ["Picture", "picture_of", "pixel_size"]

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# Modes PIL writes to PNG as they are; others (CMYK, YCbCr, float, …) are converted.
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"})


@dataclass(frozen=True)
class Picture:
    """An image ready to send: its bytes (or only a web address) and what to show of it."""

    mime_type: str
    data: bytes = b""
    url: str | None = None
    """For an ``IPython.display.Image`` of a web address, not embedded: sent as a link."""
    width: int = 0
    height: int = 0

    @cached_property
    def base64(self) -> str:
        """The bytes as base64, as they travel in the request."""
        return base64.b64encode(self.data).decode("ascii")

    @property
    def sha256(self) -> str:
        """The bytes' SHA-256 (hex): what the run log keeps instead of the bytes."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def extent(self) -> str:
        """``640×480``, or ``linked`` for an image sent by its address."""
        return f"{self.width}×{self.height}" if self.data else "linked"


def _kinds(value: Any) -> set[tuple[str, str]]:
    """``(top-level module, class name)`` of the value's class and its bases."""
    return {(cls.__module__.split(".")[0], cls.__name__) for cls in type(value).__mro__}


def picture_of(name: str, value: Any) -> Picture | None:
    """The image ``value`` holds, or None when it is not an image.

    Raises PromptError for an image that cannot be sent (an empty figure's canvas
    failing, an image format other than PNG or JPEG).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return _from_bytes(name, data) if data.startswith((_PNG, _JPEG)) else None
    kinds = _kinds(value)
    if ("matplotlib", "Axes") in kinds:
        value = getattr(value, "figure", None)
        kinds = _kinds(value)
    if kinds & {("matplotlib", "Figure"), ("matplotlib", "SubFigure")}:
        return _from_figure(name, value)
    if ("PIL", "Image") in kinds:
        return _from_pil(name, value)
    if ("IPython", "Image") in kinds:
        return _from_ipython(name, value)
    return None


def _from_figure(name: str, figure: Any) -> Picture:
    figure = getattr(figure, "figure", figure)  # a SubFigure is drawn with its figure
    options: dict[str, Any] = {"format": "png"}
    # Notebook backends often draw on a transparent background, which some models
    # read as black, hiding the black labels and lines.
    facecolor = figure.get_facecolor()
    if len(facecolor) == 4 and facecolor[3] == 0:
        options["facecolor"] = "white"
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, **options)
    except Exception as exc:  # noqa: BLE001 - any drawing error is the figure's, not ours
        raise PromptError(f"{{{name}}}: the figure could not be drawn ({exc}).") from None
    return _from_bytes(name, buffer.getvalue())


def _from_pil(name: str, image: Any) -> Picture:
    buffer = io.BytesIO()
    if image.format == "JPEG" and image.mode in ("RGB", "L"):
        # A photo stays a JPEG: as PNG it would be several times larger.
        image.save(buffer, format="JPEG", quality=90)
    else:
        if image.mode not in _PNG_MODES:
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        image.save(buffer, format="PNG")
    return _from_bytes(name, buffer.getvalue())


def _from_ipython(name: str, image: Any) -> Picture:
    data = image.data
    if isinstance(data, bytes) and data:
        if not data.startswith((_PNG, _JPEG)):
            raise PromptError(
                f"{{{name}}} is a {str(image.format).upper()} image: only PNG and JPEG can be "
                "sent; convert it first, e.g. with PIL: Image.open(...).convert('RGB')."
            )
        return _from_bytes(name, data)
    url = image.url
    if isinstance(url, str) and url.startswith(("http://", "https://")):
        return Picture(mime_type=f"image/{image.format or 'png'}", url=url)
    raise PromptError(
        f"{{{name}}} is an IPython Image without its data: create it with "
        "Image(filename=...) or Image(url=..., embed=True)."
    )


def _from_bytes(name: str, data: bytes) -> Picture:
    mime_type = "image/png" if data.startswith(_PNG) else "image/jpeg"
    size = pixel_size(data)
    if size is None:
        kind = mime_type.removeprefix("image/").upper()
        raise PromptError(f"{{{name}}} starts like a {kind} image but is not a valid one.")
    return Picture(mime_type=mime_type, data=data, width=size[0], height=size[1])


def pixel_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG or JPEG image, read from its header (None if unreadable)."""
    if data.startswith(_PNG):
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(_JPEG):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame marker (SOF0 to SOF15, but not DHT, JPG, DAC)."""
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            index += 2
            continue
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if index + 9 > len(data):
                return None
            height = int.from_bytes(data[index + 5 : index + 7], "big")
            width = int.from_bytes(data[index + 7 : index + 9], "big")
            return width, height
        index += 2 + length
    return None
