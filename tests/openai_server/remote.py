"""Drive a server in another process through its ``/_control/*`` endpoints."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def _post_json(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def remote_configure(url: str, timeout: float = 5.0, **knobs: Any) -> dict[str, Any]:
    """``POST /_control/configure`` on a server at *url* (``http://HOST:PORT``).

    Returns the new knobs as a dict; raises ``urllib.error.HTTPError`` (400) on bad knobs.
    """
    result = _post_json(url.rstrip("/") + "/_control/configure", knobs, timeout)
    knob_values: dict[str, Any] = result["knobs"]
    return knob_values


def remote_reset(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """``POST /_control/reset`` on a server at *url*; returns the restored knobs."""
    result = _post_json(url.rstrip("/") + "/_control/reset", {}, timeout)
    knob_values: dict[str, Any] = result["knobs"]
    return knob_values
