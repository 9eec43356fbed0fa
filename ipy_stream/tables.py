"""Notebook data turned into bounded, readable text: tables, arrays, long lists and dicts.

A pandas or polars DataFrame or Series becomes a Markdown table of at most
``max_rows`` rows and ``max_columns`` columns: when there are more, the first half
and the last half of each are kept and a ``…`` row or column stands where the rest
were, as pandas shows them. A numpy array with two dimensions is a table too; other
arrays, lists, tuples and dicts longer than ``max_rows`` keep their first and last
items. A table cell keeps at most :data:`CELL_CHARS` characters and an item of a list,
tuple or dict at most :data:`ITEM_CHARS`; a table or large array inside a list or dict
is named by its shape, never sent as pandas' or numpy's shortened display. What was
left out is always counted (:attr:`Excerpt.shown`), so the caller can say so: nothing
is cut silently.

Recognised by the module and name of their class (or a base class), so nothing is
imported to check; numpy, already loaded when a value is an array, is imported only
then. Nothing here knows LangChain or IPython.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CELL_CHARS", "GAP", "ITEM_CHARS", "Excerpt", "Limits", "excerpt_of"]

GAP = "…"
"""Stands where rows, columns or items were left out."""

CELL_CHARS = 500
"""The most characters sent of one table cell."""

ITEM_CHARS = 1_000
"""The most characters sent of one item of a list, tuple or dict."""


@dataclass(frozen=True)
class Limits:
    """How much of a table, array, list or dict is sent."""

    max_rows: int = 50
    max_columns: int = 20


@dataclass(frozen=True)
class Excerpt:
    """What is sent of one value, and how it relates to the whole."""

    kind: str
    """``table``, ``array``, ``list``, ``tuple`` or ``dict``."""
    what: str
    """The whole value in words: ``a pandas DataFrame of 10,000 rows × 40 columns``."""
    body: str
    """The text sent: a Markdown table, or the items kept."""
    whole: str
    """Its size when nothing is left out: ``3 rows × 2 columns``."""
    shown: tuple[str, ...] = ()
    """What is kept of each cut dimension: ``("50 of 10,000 rows", "12 of 40 columns")``,
    and of long cells or items: ``("the first 500 characters of 3 long cells",)``."""
    details: dict[str, int] = field(default_factory=dict)
    """Counts for the run log: rows, columns and how many of each are sent."""
    gap: str = GAP
    """What stands where values were left out (numpy writes ``...``)."""

    @property
    def extent(self) -> str:
        """``50 of 10,000 rows; 12 of 40 columns`` when cut, else :attr:`whole`."""
        return "; ".join(self.shown) or self.whole


def _kinds(value: Any) -> set[tuple[str, str]]:
    return {(cls.__module__.split(".")[0], cls.__name__) for cls in type(value).__mro__}


def excerpt_of(value: Any, limits: Limits, depth: int = 0) -> Excerpt | str | None:
    """The bounded text for ``value``: an Excerpt, a plain text to send in place of its
    ``str()`` (a small numpy array, whole: numpy's own ``str()`` would cut one of more
    than 1,000 values), or None when its ``str()`` is sent as it is. ``depth`` is how
    deep in lists and dicts ``value`` sits."""
    kinds = _kinds(value)
    for library in ("pandas", "polars"):
        if (library, "DataFrame") in kinds:
            return _frame(value, library, limits)
        if (library, "Series") in kinds:
            return _series(value, library, limits)
    if ("numpy", "ndarray") in kinds:
        return _array(value, limits)
    if isinstance(value, list | tuple | dict):
        return _items(value, limits, depth)
    return None


# -- tables --------------------------------------------------------------------------


def _kept(count: int, keep: int) -> list[int | None]:
    """Positions sent: all of them, or the first and the last half with None between."""
    if count <= keep:
        return list(range(count))
    head = (keep + 1) // 2
    return [*range(head), None, *range(count - (keep - head), count)]


def _text(value: Any) -> str:
    """A value as text: floats to 10 digits, a MultiIndex label's parts joined."""
    if isinstance(value, float) or getattr(getattr(value, "dtype", None), "kind", "") == "f":
        return format(float(value), ".10g")
    if isinstance(value, tuple):
        return ", ".join(_text(part) for part in value)
    return str(value)


def _cell(value: Any) -> tuple[str, bool]:
    """A value as a Markdown table cell (on one line, at most :data:`CELL_CHARS`
    characters then ``…``, ``|`` escaped), and whether it was cut."""
    text = " ".join(_text(value).split())
    cut = len(text) > CELL_CHARS
    if cut:
        text = text[:CELL_CHARS] + GAP
    return text.replace("|", "\\|"), cut


def _grid(
    rows: int,
    columns: int,
    limits: Limits,
    *,
    cell: Callable[[int, int], Any],
    column_name: Callable[[int], Any],
    row_name: Callable[[int], Any] | None = None,
    index_title: str = "",
) -> tuple[str, tuple[str, ...], dict[str, int]]:
    """A Markdown table of the kept rows and columns, what it shows, and its counts."""
    kept_rows = _kept(rows, limits.max_rows)
    kept_columns = _kept(columns, limits.max_columns)
    long_cells = 0

    def text(value: Any) -> str:
        nonlocal long_cells
        written, cut = _cell(value)
        long_cells += cut
        return written

    header = [text(index_title)] if row_name is not None else []
    header += [GAP if c is None else text(column_name(c)) for c in kept_columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in kept_rows:
        if r is None:
            values = [GAP] * len(header)
        else:
            values = [text(row_name(r))] if row_name is not None else []
            values += [GAP if c is None else text(cell(r, c)) for c in kept_columns]
        lines.append("| " + " | ".join(values) + " |")
    sent_rows = sum(r is not None for r in kept_rows)
    sent_columns = sum(c is not None for c in kept_columns)
    shown = []
    if sent_rows < rows:
        shown.append(f"{sent_rows:,} of {rows:,} rows")
    if sent_columns < columns:
        shown.append(f"{sent_columns:,} of {columns:,} columns")
    if long_cells:
        shown.append(f"the first {CELL_CHARS:,} characters of {_count(long_cells, 'long cell')}")
    counts = {
        "rows": rows,
        "columns": columns,
        "sent_rows": sent_rows,
        "sent_columns": sent_columns,
    }
    return "\n".join(lines), tuple(shown), counts


def _rows(count: int) -> str:
    return f"{count:,} row{'s' if count != 1 else ''}"


def _columns(count: int) -> str:
    return f"{count:,} column{'s' if count != 1 else ''}"


def _frame(frame: Any, library: str, limits: Limits) -> Excerpt:
    rows, columns = frame.shape
    if library == "pandas":
        body, shown, counts = _grid(
            rows,
            columns,
            limits,
            cell=lambda r, c: frame.iat[r, c],
            column_name=lambda c: frame.columns[c],
            row_name=lambda r: frame.index[r],
            index_title=", ".join(_name(name) for name in frame.index.names),
        )
    else:  # polars has no index
        body, shown, counts = _grid(
            rows,
            columns,
            limits,
            cell=lambda r, c: frame[r, c],
            column_name=lambda c: frame.columns[c],
        )
    whole = f"{_rows(rows)} × {_columns(columns)}"
    return Excerpt("table", f"a {library} DataFrame of {whole}", body, whole, shown, counts)


def _series(series: Any, library: str, limits: Limits) -> Excerpt:
    rows = len(series)
    title = _name(series.name)
    if library == "pandas":
        body, shown, counts = _grid(
            rows,
            1,
            limits,
            cell=lambda r, _c: series.iat[r],
            column_name=lambda _c: title,
            row_name=lambda r: series.index[r],
            index_title=_name(series.index.name),
        )
    else:
        body, shown, counts = _grid(
            rows, 1, limits, cell=lambda r, _c: series[r], column_name=lambda _c: title
        )
    named = f" '{title}'" if title else ""
    what = f"a {library} Series{named} of {_rows(rows)}, dtype {series.dtype}"
    return Excerpt("table", what, body, _rows(rows), shown, counts)


def _name(name: Any) -> str:
    return "" if name is None else str(name)


# -- arrays, lists and dicts -----------------------------------------------------------


def _array(array: Any, limits: Limits) -> Excerpt | str | None:
    import numpy as np

    if array.ndim == 0:
        return None
    what = f"a numpy array of shape {tuple(array.shape)}, dtype {array.dtype}"
    if array.ndim == 2:
        rows, columns = array.shape
        if rows <= limits.max_rows and columns <= limits.max_columns:
            return np.array2string(array, threshold=sys.maxsize)
        body, shown, counts = _grid(
            rows,
            columns,
            limits,
            cell=lambda r, c: array[r, c],
            column_name=lambda c: c,
            row_name=lambda r: r,
        )
        whole = f"{_rows(rows)} × {_columns(columns)}"
        return Excerpt("array", what, body, whole, shown, counts)
    keep = limits.max_rows if array.ndim == 1 else limits.max_rows * limits.max_columns
    if array.size <= keep:
        return np.array2string(array, threshold=sys.maxsize)
    # numpy keeps `edgeitems` values at each end of every dimension longer than twice that.
    edge = max(1, keep // 2) if array.ndim == 1 else 3
    body = np.array2string(array, threshold=keep, edgeitems=edge, max_line_width=100)
    sent = int(np.prod([min(n, 2 * edge) for n in array.shape]))
    shown = (f"{sent:,} of {array.size:,} values",)
    counts = {"values": int(array.size), "sent_values": sent}
    return Excerpt("array", what, body, f"{array.size:,} values", shown, counts, gap="...")


NESTING = 3
"""How deep in lists and dicts tables and arrays are still recognised; deeper
items are their ``repr()``, cut at :data:`ITEM_CHARS`."""


def _items(
    value: list[Any] | tuple[Any, ...] | dict[Any, Any], limits: Limits, depth: int
) -> Excerpt | None:
    """A list, tuple or dict with its first and last items when it is long; an item that
    is a table is named by its shape, a long array, list or dict is bounded the same
    way, and a long item is cut. None when ``str()`` sends it whole."""
    count = len(value)
    kept = _kept(count, limits.max_rows)
    pairs = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    tables = shortened = 0
    texts: list[str] = []
    for i in kept:
        if i is None:
            texts.append(GAP)
            continue
        key, item = pairs[i]
        nested = excerpt_of(item, limits, depth + 1) if depth < NESTING else None
        if isinstance(nested, Excerpt) and nested.kind == "table":
            tables += 1
            text = f"<{nested.what}>"
        else:
            text = nested.body if isinstance(nested, Excerpt) else nested or repr(item)
            if isinstance(nested, Excerpt) or len(text) > ITEM_CHARS:
                shortened += 1
                text = text[:ITEM_CHARS] + GAP if len(text) > ITEM_CHARS else text
        texts.append(f"{key!r}: {text}" if isinstance(value, dict) else text)
    sent = sum(i is not None for i in kept)
    if sent == count and not tables and not shortened:
        return None
    if isinstance(value, dict):
        opening, closing, kind = "{", "}", "dict"
    elif isinstance(value, list):
        opening, closing, kind = "[", "]", "list"
    else:
        opening, closing, kind = "(", ",)" if count == 1 else ")", "tuple"
    shown = [f"{sent:,} of {count:,} items"] if sent < count else []
    if tables:
        shown.append(
            f"{_count(tables, 'table')} in it as {'its' if tables == 1 else 'their'} shape only"
        )
    if shortened:
        shown.append(f"{_count(shortened, 'long item')} in part")
    whole = _count(count, "item")
    counts = {"items": count, "sent_items": sent}
    body = opening + ", ".join(texts) + closing
    return Excerpt(kind, f"a {kind} of {whole}", body, whole, tuple(shown), counts)


def _count(count: int, noun: str) -> str:
    """``1 item``, ``1,000 items``."""
    return f"{count:,} {noun}{'s' if count != 1 else ''}"
