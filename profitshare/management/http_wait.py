"""Waiting for a process we started to answer over HTTP (``run_product``, deployment tests)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def wait_until_answering(url: str, *, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll ``url`` every 0.2 s until it answers with a status below 500 (True), ``timeout``
    seconds pass or ``alive()`` turns False (False: the process died). Never raises."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False
