"""Notebook values as prompt parts: the text, notes and image parts built for each type.

Pure functions, no shell: :func:`ipy_stream.context.prepare` on real pandas, polars,
numpy, matplotlib, PIL and IPython objects, and the template that carries them.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from IPython.display import Image as IPythonImage
from markdown_it import MarkdownIt
from matplotlib.figure import Figure
from PIL import Image

from ipy_stream.chain import build_template, message_dicts, sent_chars
from ipy_stream.compat import describe_refused_images
from ipy_stream.context import Limits, budget_error, prepare
from ipy_stream.errors import PromptError
from ipy_stream.images import pixel_size
from ipy_stream.prompt import parse_cell
from ipy_stream.tables import CELL_CHARS, ITEM_CHARS


def sent(value: Any, limits: Limits | None = None, name: str = "v") -> str:
    """The text sent for ``{name}`` holding ``value``."""
    return str(prepare({name: value}, limits or Limits()).inputs[name])


def table_cells(markdown: str) -> list[list[str]]:
    """The cells of the first Markdown table in ``markdown``, as a renderer reads them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows: list[list[str]] = []
    in_row = False
    for token in tokens:
        if token.type in ("tr_open", "tr_close"):
            in_row = token.type == "tr_open"
            rows += [[]] if in_row else []
        elif token.type == "inline" and in_row:
            rows[-1].append("".join(child.content for child in token.children or []))
    return rows


def png_bytes(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode == "RGB" else 0).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int, height: int, *, progressive: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buffer, format="JPEG", progressive=progressive)
    return buffer.getvalue()


# -- tables ------------------------------------------------------------------------------


def wide_frame(rows: int = 10_000, columns: int = 40) -> pd.DataFrame:
    data = np.arange(rows * columns).reshape(rows, columns)
    return pd.DataFrame(data, columns=[f"c{i}" for i in range(columns)])


def test_a_large_dataframe_is_a_bounded_markdown_table_that_says_what_was_left_out() -> None:
    text = sent(wide_frame(), Limits(max_rows=50, max_columns=12), name="df")
    label, note = text.splitlines()[:2]
    assert label == "[table: df, 50 of 10,000 rows; 12 of 40 columns]"
    assert "10,000 rows × 40 columns" in note
    assert "showing 50 of 10,000 rows; 12 of 40 columns" in note
    assert "… marks what was left out" in note
    cells = table_cells(text)
    # A header, 25 first rows, a gap row, 25 last rows; index, 6 first columns, a gap, 6 last.
    assert len(cells) == 1 + 25 + 1 + 25
    assert all(len(row) == 1 + 6 + 1 + 6 for row in cells)
    assert cells[0] == [
        "",
        "c0",
        "c1",
        "c2",
        "c3",
        "c4",
        "c5",
        "…",
        *[f"c{i}" for i in range(34, 40)],
    ]
    assert cells[1][:3] == ["0", "0", "1"]
    assert cells[26] == ["…"] * 14
    assert cells[-1][0] == "9999"
    assert cells[-1][-1] == str(10_000 * 40 - 1)


def test_a_small_dataframe_is_sent_whole_with_its_shape_and_no_gap() -> None:
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, 19.25]})
    text = sent(frame, name="df")
    assert text.splitlines()[0] == "[table: df, 2 rows × 2 columns]"
    assert "A pandas DataFrame of 2 rows × 2 columns." in text
    assert "showing" not in text
    assert "…" not in text
    assert table_cells(text) == [["", "city", "temp"], ["0", "Oslo", "3.5"], ["1", "Lima", "19.25"]]


def test_cells_stay_on_one_line_and_pipes_do_not_split_them() -> None:
    frame = pd.DataFrame({"a|b": ["x | y", "two\nlines"], "n": [0.1 + 0.2, 1e-12]})
    cells = table_cells(sent(frame))
    assert cells[0] == ["", "a|b", "n"]
    assert cells[1] == ["0", "x | y", "0.3"]
    assert cells[2] == ["1", "two lines", "1e-12"]


def test_a_named_index_and_a_series_keep_their_labels() -> None:
    frame = pd.DataFrame({"sales": [5, 7]}, index=pd.Index(["north", "south"], name="region"))
    assert table_cells(sent(frame))[:2] == [["region", "sales"], ["north", "5"]]
    series = pd.Series(range(1000), name="price", dtype="int64")
    text = sent(series, Limits(max_rows=10), name="s")
    assert text.splitlines()[0] == "[table: s, 10 of 1,000 rows]"
    assert "A pandas Series 'price' of 1,000 rows, dtype int64" in text
    cells = table_cells(text)
    assert cells[0] == ["", "price"]
    assert [row[0] for row in cells[1:]] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "…",
        "995",
        "996",
        "997",
        "998",
        "999",
    ]


def test_polars_frames_and_series_are_tables_too() -> None:
    frame = pl.DataFrame({"x": list(range(100)), "label": [f"r{i}" for i in range(100)]})
    text = sent(frame, Limits(max_rows=4), name="pf")
    assert text.splitlines()[0] == "[table: pf, 4 of 100 rows]"
    assert "A polars DataFrame of 100 rows × 2 columns, showing 4 of 100 rows" in text
    assert table_cells(text) == [
        ["x", "label"],
        ["0", "r0"],
        ["1", "r1"],
        ["…", "…"],
        ["98", "r98"],
        ["99", "r99"],
    ]
    series = pl.Series("z", [1.5, 2.5])
    assert table_cells(sent(series)) == [["z"], ["1.5"], ["2.5"]]


def test_the_limits_apply_with_one_row_and_one_column() -> None:
    text = sent(wide_frame(3, 3), Limits(max_rows=1, max_columns=1))
    assert "showing 1 of 3 rows; 1 of 3 columns" in text
    assert table_cells(text) == [["", "c0", "…"], ["0", "0", "…"], ["…", "…", "…"]]


# -- arrays, lists, dicts and everything else --------------------------------------------------


def test_a_large_2d_array_is_a_table_and_a_small_one_is_numpys_own_text() -> None:
    big = np.arange(200 * 30).reshape(200, 30)
    text = sent(big, Limits(max_rows=6, max_columns=4), name="a")
    assert text.splitlines()[0] == "[array: a, 6 of 200 rows; 4 of 30 columns]"
    assert "A numpy array of shape (200, 30), dtype int64" in text
    assert table_cells(text)[0] == ["", "0", "1", "…", "28", "29"]
    small = np.arange(6).reshape(2, 3)
    assert sent(small) == str(small)


def test_a_long_1d_array_keeps_its_ends_and_says_how_many_values_were_sent() -> None:
    text = sent(np.arange(10_000), Limits(max_rows=6), name="a")
    assert text.splitlines()[0] == "[array: a, 6 of 10,000 values]"
    assert "(... marks what was left out)" in text
    assert text.rstrip().endswith("[   0    1    2 ... 9997 9998 9999]")


def test_an_array_within_the_limits_is_never_cut_by_numpy() -> None:
    # numpy's own str() shortens arrays of more than 1,000 values without saying so.
    values = np.arange(2000).reshape(20, 10, 10)
    text = sent(values, Limits(max_rows=100, max_columns=50))
    assert "..." not in text
    assert "1999" in text
    assert "..." in str(values)


def test_a_large_3d_array_is_numpys_summary_with_a_note() -> None:
    text = sent(np.zeros((10, 10, 10)), Limits(max_rows=6, max_columns=4), name="cube")
    assert text.splitlines()[0] == "[array: cube, 216 of 1,000 values]"
    assert "shape (10, 10, 10)" in text


@pytest.mark.parametrize(
    ("value", "label", "body"),
    [
        (list(range(100)), "[list: v, 4 of 100 items]", "[0, 1, …, 98, 99]"),
        (tuple(range(100)), "[tuple: v, 4 of 100 items]", "(0, 1, …, 98, 99)"),
        (
            {f"k{i}": i for i in range(100)},
            "[dict: v, 4 of 100 items]",
            "{'k0': 0, 'k1': 1, …, 'k98': 98, 'k99': 99}",
        ),
    ],
)
def test_long_lists_tuples_and_dicts_keep_their_ends_with_a_note(
    value: Any, label: str, body: str
) -> None:
    text = sent(value, Limits(max_rows=4))
    assert text.splitlines()[0] == label
    assert "showing 4 of 100 items (… marks what was left out)" in text
    assert text.rstrip().endswith(body)


def test_a_table_inside_a_dict_or_list_is_named_by_its_shape_never_cut_silently() -> None:
    text = sent({"train": wide_frame(), "size": 3})
    assert text.splitlines()[0] == "[dict: v, 1 table in it as its shape only]"
    assert text.rstrip().endswith(
        "{'train': <a pandas DataFrame of 10,000 rows × 40 columns>, 'size': 3}"
    )
    text = sent([wide_frame(3, 2), pl.DataFrame({"a": [1]})])
    assert text.splitlines()[0] == "[list: v, 2 tables in it as their shape only]"


def test_long_arrays_lists_and_strings_inside_a_container_are_bounded_with_a_note() -> None:
    arrays = sent([np.arange(5000)] * 3, Limits(max_rows=4))
    assert arrays.splitlines()[0] == "[list: v, 3 long items in part]"
    assert arrays.count("4999") == 3
    assert arrays.count("2500") == 0
    strings = sent(["x" * 50_000] * 3)
    assert "showing 3 long items in part (… marks what was left out)" in strings
    assert strings.count("'" + "x" * (ITEM_CHARS - 1) + "…") == 3
    assert len(strings) < 4 * ITEM_CHARS
    lists = sent({f"k{i}": list(range(1000)) for i in range(10)}, Limits(max_rows=4))
    assert lists.splitlines()[0] == "[dict: v, 4 of 10 items; 4 long items in part]"
    assert "'k9': [0, 1, …, 998, 999]" in lists


def test_a_list_holding_itself_is_sent_as_python_writes_it() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert sent(loop) == "[1, [...]]"


def test_a_multiindex_keeps_its_names_and_labels_read_as_written() -> None:
    index = pd.MultiIndex.from_tuples([("x", 1), ("y|z", 2)], names=["group", "n"])
    cells = table_cells(sent(pd.DataFrame({"v": [1.5, 2.0]}, index=index)))
    assert cells == [["group, n", "v"], ["x, 1", "1.5"], ["y|z, 2", "2"]]


def test_a_long_cell_keeps_its_start_and_the_note_says_so() -> None:
    frame = pd.DataFrame({"review": ["word " * 300, "short"]})
    text = sent(frame)
    assert text.splitlines()[0] == "[table: v, the first 500 characters of 1 long cell]"
    assert "showing the first 500 characters of 1 long cell (… marks" in text
    cells = table_cells(text)
    assert len(cells[1][1]) == CELL_CHARS + 1
    assert cells[1][1].endswith("…")
    assert cells[2][1] == "short"


@pytest.mark.parametrize(
    "value",
    ["plain text", 42, 3.5, [1, 2, 3], {"a": 1}, b"not an image", np.float64(2.5), None],
)
def test_other_values_are_sent_as_before_and_are_not_attachments(value: Any) -> None:
    context = prepare({"v": value}, Limits())
    assert str(context.inputs["v"]) == str(value)
    assert context.attachments == ()
    assert context.images == {}


# -- images ---------------------------------------------------------------------------------


def test_a_matplotlib_figure_is_a_png_of_its_pixel_size() -> None:
    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    figure.add_subplot().plot([1, 3, 2])
    context = prepare({"fig": figure}, Limits())
    (attachment,) = context.attachments
    assert attachment.label == "[image: fig, 640×480]"
    data = base64.b64decode(context.inputs["fig"])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(data)).size == (640, 480)
    assert context.images["fig"].block == {
        "type": "image",
        "base64": "{fig}",
        "mime_type": "image/png",
    }
    assert attachment.record()["sha256"] != ""
    assert attachment.record()["bytes"] == len(data)
    assert attachment.chars == len(context.inputs["fig"])


def test_an_axes_sends_its_figure_on_an_opaque_background() -> None:
    figure = Figure(figsize=(2, 1), dpi=50, facecolor=(1, 1, 1, 0))  # as notebook backends do
    axes = figure.add_subplot()
    context = prepare({"ax": axes}, Limits())
    assert context.attachments[0].label == "[image: ax, 100×50]"
    image = Image.open(io.BytesIO(base64.b64decode(context.inputs["ax"]))).convert("RGBA")
    assert image.getpixel((0, 0)) == (255, 255, 255, 255)


def test_pil_images_are_sent_as_png_and_photos_stay_jpeg() -> None:
    context = prepare(
        {
            "drawing": Image.new("RGB", (30, 20), "red"),
            "cmyk": Image.new("CMYK", (8, 4)),
            "photo": Image.open(io.BytesIO(jpeg_bytes(12, 9))),
        },
        Limits(),
    )
    labels = [a.label for a in context.attachments]
    assert labels == ["[image: drawing, 30×20]", "[image: cmyk, 8×4]", "[image: photo, 12×9]"]
    assert [context.images[n].block["mime_type"] for n in ("drawing", "cmyk", "photo")] == [
        "image/png",
        "image/png",
        "image/jpeg",
    ]
    assert Image.open(io.BytesIO(base64.b64decode(context.inputs["cmyk"]))).mode == "RGB"


def test_png_and_jpeg_bytes_and_ipython_images_are_images() -> None:
    png, jpeg = png_bytes(7, 5), jpeg_bytes(16, 8, progressive=True)
    context = prepare(
        {"raw": png, "buffer": bytearray(jpeg), "shown": IPythonImage(data=png)}, Limits()
    )
    assert [a.label for a in context.attachments] == [
        "[image: raw, 7×5]",
        "[image: buffer, 16×8]",
        "[image: shown, 7×5]",
    ]
    assert base64.b64decode(context.inputs["buffer"]) == jpeg
    assert context.images["buffer"].block["mime_type"] == "image/jpeg"


def test_an_ipython_image_of_a_web_address_is_sent_as_a_link() -> None:
    context = prepare({"web": IPythonImage(url="https://example.org/plot.png")}, Limits())
    assert context.inputs["web"] == "https://example.org/plot.png"
    assert context.images["web"].block == {"type": "image", "url": "{web}"}
    assert context.attachments[0].label == "[image: web, linked]"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 4, "not a valid one"),
        (IPythonImage(data=b"GIF89a" + b"\0" * 20, format="gif"), "only PNG and JPEG"),
    ],
)
def test_an_image_that_cannot_be_sent_is_a_one_line_error(value: Any, says: str) -> None:
    with pytest.raises(PromptError, match=says) as caught:
        prepare({"img": value}, Limits())
    assert "{img}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_sizes_are_read_from_png_and_jpeg_headers() -> None:
    assert pixel_size(png_bytes(3, 2)) == (3, 2)
    assert pixel_size(jpeg_bytes(33, 17)) == (33, 17)
    assert pixel_size(jpeg_bytes(40, 30, progressive=True)) == (40, 30)
    assert pixel_size(b"\xff\xd8\xff") is None
    assert pixel_size(b"GIF89a") is None


# -- the template and the budget --------------------------------------------------------------


def test_an_image_is_a_message_part_where_the_cell_puts_it() -> None:
    prompt = parse_cell('Look at {fig} and say {{"ok"}} about {df}.')
    context = prepare({"fig": png_bytes(4, 3), "df": pd.DataFrame({"a": [1]})}, Limits())
    template = build_template(prompt, images=context.images)
    (message,) = template.format_messages(**context.inputs)
    before, image, after = message.content
    assert before == {"type": "text", "text": "Look at [image: fig, 4×3]"}
    assert image == {"type": "image", "base64": context.inputs["fig"], "mime_type": "image/png"}
    assert isinstance(after, dict)
    assert after["text"].startswith(' and say {"ok"} about [table: df, 1 row × 1 column]')
    # What the run log and history keep: the text with the label, never the data.
    (logged,) = message_dicts([message])
    assert "[image: fig, 4×3] and say" in logged["content"]
    assert context.inputs["fig"] not in logged["content"]
    assert sent_chars([message]) == len(message.text) + len(context.inputs["fig"])


def test_the_budget_error_names_the_largest_variable_and_what_to_do() -> None:
    context = prepare({"note": "x" * 10, "df": wide_frame(100, 3)}, Limits())
    error = budget_error(250_001, 200_000, context.sizes, context.attachments)
    text = str(error)
    assert text.startswith("The prompt is 250,001 characters, over StreamMagics.max_prompt_chars")
    assert f"the largest variable is {{df}} ({context.sizes['df']:,} characters)" in text
    assert "StreamMagics.max_rows" in text
    assert "max_prompt_chars = 260_000" in text
    assert "\n" not in text


def test_a_long_conversation_is_named_when_it_is_the_largest_part() -> None:
    error = budget_error(300_000, 250_000, {"q": 10}, (), earlier=299_000)
    assert "the earlier turns of this conversation (-c) are 299,000 characters" in str(error)
    assert "%stream reset" in str(error)


@pytest.mark.parametrize(
    "said",
    [
        "Invalid content type. image_url is only supported by certain models.",  # OpenAI
        "image input is not supported - hint: you may need to provide the mmproj",  # llama.cpp
        "Model does not support images. Please use a model that does.",  # LM Studio
        "Qwen/Qwen2.5-7B is not a multimodal model",  # vLLM
    ],
)
def test_servers_refusing_images_are_recognised_in_their_own_words(said: str) -> None:
    line = describe_refused_images(RuntimeError(said), "local", ("fig", "photo"))
    assert line is not None
    assert line.startswith("local does not read images (")
    assert "send {fig}, {photo} to a model that does" in line


def test_other_failures_are_not_taken_for_a_refused_image() -> None:
    assert describe_refused_images(RuntimeError("Rate limit reached"), "m", ("fig",)) is None
