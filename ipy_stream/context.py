"""The notebook's values as parts of the prompt: text, tables with a note, and images.

``{name}`` in a cell is filled from the variable ``name``:

* a pandas or polars DataFrame or Series is sent as a Markdown table of at most
  ``max_rows`` rows and ``max_columns`` columns, under a line that gives its whole
  shape and what was left out (``showing 50 of 10,000 rows; 12 of 40 columns``);
* a numpy array, a list, a tuple or a dict too large for those limits is cut the same
  way, with the same kind of note; a smaller one is sent whole, as before;
* a matplotlib figure or Axes, a PIL image, an ``IPython.display.Image``, or PNG or JPEG
  bytes is sent as an image part of the message, where ``{name}`` stands;
* anything else is sent as ``str(value)``, as before.

Each table, cut value and image is an :class:`Attachment`, named by a label such as
``[table: df, 50 of 10,000 rows]`` or ``[image: fig, 640×480]``. The label is sent
too, just before what it names, so the model can tell which variable is which; the
run log, ``%stream history`` and the saved output show the same labels.

Nothing here knows IPython or LangChain, and pandas, polars, numpy, matplotlib and PIL
are never imported to check a value (see :mod:`ipy_stream.tables`, :mod:`ipy_stream.images`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ipy_stream.errors import PromptError
from ipy_stream.images import Picture, picture_of
from ipy_stream.tables import Excerpt, Limits, excerpt_of

__all__ = [
    "Attachment",
    "Context",
    "ImagePart",
    "Limits",
    "budget_error",
    "prepare",
]


@dataclass(frozen=True)
class Attachment:
    """A variable sent as more than its ``str()``: a table, a cut value, or an image."""

    kind: str
    """``table``, ``image``, ``array``, ``list``, ``tuple`` or ``dict``."""
    name: str
    extent: str
    """``50 of 10,000 rows``, ``640×480``."""
    chars: int
    """Characters it adds to the request: its text, or the image in base64."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """For the run log: counts of rows and columns, or an image's type, size and SHA-256
    (never its bytes)."""

    @property
    def label(self) -> str:
        """``[table: df, 50 of 10,000 rows]``, ``[image: fig, 640×480]``."""
        return f"[{self.kind}: {self.name}, {self.extent}]"

    def record(self) -> dict[str, Any]:
        """What the run log keeps of it (JSON-ready)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "label": self.label,
            "chars": self.chars,
            **self.details,
        }


@dataclass(frozen=True)
class ImagePart:
    """How an image variable enters the message: its label as text, then the image."""

    label: str
    block: Mapping[str, str]
    """A LangChain standard image content block, as a template: ``{"type": "image",
    "base64": "{fig}", "mime_type": "image/png"}`` (or ``"url": "{fig}"``)."""


@dataclass(frozen=True)
class Context:
    """The cell's variables, ready for the template."""

    inputs: dict[str, Any]
    """The template's values: the text sent for each variable (for an image, its base64
    data or address); values sent as their ``str()`` are kept as they are."""
    images: Mapping[str, ImagePart]
    """The variables sent as images."""
    attachments: tuple[Attachment, ...]
    sizes: Mapping[str, int]
    """Characters each variable adds to the request."""


def prepare(values: Mapping[str, Any], limits: Limits) -> Context:
    """Turn the cell's variables into what is sent. Raises PromptError for an image
    that cannot be sent."""
    inputs: dict[str, Any] = {}
    images: dict[str, ImagePart] = {}
    attachments: list[Attachment] = []
    sizes: dict[str, int] = {}
    for name, value in values.items():
        picture = picture_of(name, value)
        if picture is not None:
            attachment = _image(name, picture)
            inputs[name] = picture.base64 if picture.data else picture.url
            images[name] = ImagePart(attachment.label, _block(name, picture))
            attachments.append(attachment)
            sizes[name] = attachment.chars
            continue
        excerpt = excerpt_of(value, limits)
        if isinstance(excerpt, Excerpt):
            text = _excerpt_text(name, excerpt)
            attachments.append(
                Attachment(excerpt.kind, name, excerpt.extent, len(text), excerpt.details)
            )
            inputs[name] = text
        else:
            inputs[name] = value if excerpt is None else excerpt
        sizes[name] = len(str(inputs[name]))
    return Context(inputs, images, tuple(attachments), sizes)


def _image(name: str, picture: Picture) -> Attachment:
    if not picture.data:
        return Attachment(
            "image", name, picture.extent, len(picture.url or ""), {"url": picture.url}
        )
    details = {
        "mime_type": picture.mime_type,
        "width": picture.width,
        "height": picture.height,
        "bytes": len(picture.data),
        "sha256": picture.sha256,
    }
    return Attachment("image", name, picture.extent, len(picture.base64), details)


def _block(name: str, picture: Picture) -> dict[str, str]:
    if not picture.data:
        return {"type": "image", "url": f"{{{name}}}"}
    return {"type": "image", "base64": f"{{{name}}}", "mime_type": picture.mime_type}


def _excerpt_text(name: str, excerpt: Excerpt) -> str:
    """The label, a line with the whole shape and what was left out, and the excerpt."""
    note = excerpt.what[0].upper() + excerpt.what[1:]
    if excerpt.shown:
        note += f", showing {'; '.join(excerpt.shown)} ({excerpt.gap} marks what was left out)"
    return f"[{excerpt.kind}: {name}, {excerpt.extent}]\n{note}.\n\n{excerpt.body}\n"


def budget_error(
    total: int,
    limit: int,
    sizes: Mapping[str, int],
    attachments: tuple[Attachment, ...],
    earlier: int = 0,
) -> PromptError:
    """The one line for a prompt of ``total`` characters, over ``limit``: the largest
    variable (or the ``earlier`` turns of a conversation, when they are larger), its
    size, and what to do."""
    over = f"The prompt is {total:,} characters, over StreamMagics.max_prompt_chars ({limit:,})"
    enough = -(-total // 10_000) * 10_000
    advice = f"or raise the limit (%config StreamMagics.max_prompt_chars = {enough:_})"
    largest = max(sizes.values(), default=0)
    if earlier > largest:
        return PromptError(
            f"{over}; the earlier turns of this conversation (-c) are {earlier:,} characters: "
            f"start another with -c NAME or forget this one with %stream reset, {advice}. "
            "Nothing was sent."
        )
    if largest == 0:
        return PromptError(f"{over}: shorten the cell, {advice}. Nothing was sent.")
    name = max(sizes, key=lambda key: sizes[key])
    kind = next((a.kind for a in attachments if a.name == name), None)
    if kind == "image":
        hint = "send a smaller image (an image counts by its size in base64)"
    elif kind == "table":
        hint = "send fewer rows or columns (StreamMagics.max_rows, max_columns)"
    else:
        hint = "send a part of it"
    return PromptError(
        f"{over}; the largest variable is {{{name}}} ({sizes[name]:,} characters): "
        f"{hint}, {advice}. Nothing was sent."
    )
