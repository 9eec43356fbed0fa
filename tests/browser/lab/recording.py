"""How an output changed over time: samples, in-page recordings, and polling a locator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playwright.sync_api import Error as PlaywrightError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from playwright.sync_api import Locator


@dataclass
class Sample:
    """One observed state: ``t`` seconds after sampling started, ``value`` (None = absent)."""

    t: float
    value: str | None


@dataclass
class Recording:
    """In-page recording of a value under one cell; filled when the ``with`` block exits."""

    samples: list[Sample] = field(default_factory=list)
    _peek: Callable[[], list[Sample]] | None = field(default=None, repr=False)

    def peek(self) -> list[Sample]:
        """The samples so far, while the ``with`` block still runs."""
        return self._peek() if self._peek else list(self.samples)

    @property
    def values(self) -> list[str]:
        """Distinct successive non-absent values, in order."""
        return distinct(self.samples)

    def distinct(self, normalize: Callable[[str], str] | None = str.strip) -> list[str]:
        """Distinct successive values after ``normalize`` (default: strip), empty ones and
        absent ones dropped."""
        return distinct(self.samples, normalize)


def distinct(samples: Sequence[Sample], normalize: Callable[[str], str] | None = None) -> list[str]:
    """The distinct successive values of ``samples`` (None dropped), each passed through
    ``normalize`` first if given (then empty results are dropped too).

    Text can reach the DOM in more pieces than the kernel printed (``print(i)`` may arrive
    as ``"1"`` then ``"\\n"``), so compare normalized values."""
    out: list[str] = []
    for s in samples:
        if s.value is None:
            continue
        v = normalize(s.value) if normalize else s.value
        if normalize and not v:
            continue
        if not out or out[-1] != v:
            out.append(v)
    return out


def sample_text(
    locator: Locator,
    *,
    until: Callable[[], bool] | None = None,
    timeout: float = 30.0,
    interval: float = 0.03,
    attribute: str | None = None,
) -> list[Sample]:
    """Poll ``locator`` (its ``inner_text()`` or ``attribute``) every ``interval`` seconds and
    return the distinct successive states, until ``until()`` is true (checked after each poll;
    one last sample is taken then) or ``timeout`` elapses (TimeoutError).  ``value`` is None
    while the locator matches nothing.  With ``until=None`` it samples for ``timeout`` seconds
    and returns without error.

    Python-side polling can miss states shorter than ``interval``; use
    :meth:`NotebookPage.record` to see every DOM state.
    """
    t0 = time.monotonic()
    samples: list[Sample] = []

    def poll() -> None:
        try:
            if locator.count() == 0:
                value = None
            elif attribute is not None:
                value = locator.first.get_attribute(attribute, timeout=1000)
            else:
                value = locator.first.inner_text(timeout=1000)
        except PlaywrightError:  # element replaced between count() and read: next round
            return
        if not samples or samples[-1].value != value:
            samples.append(Sample(time.monotonic() - t0, value))

    while True:
        poll()
        if until is not None and until():
            poll()
            return samples
        if time.monotonic() - t0 > timeout:
            if until is None:
                return samples
            seen = [s.value for s in samples]
            raise TimeoutError(f"sample_text: condition not met after {timeout}s; saw {seen!r}")
        locator.page.wait_for_timeout(interval * 1000)
