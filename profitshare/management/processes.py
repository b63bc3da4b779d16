"""Child processes of ``run_product`` and the deployment tests: waiting for one to answer over
HTTP, and stopping them all without leaving orphans."""

from __future__ import annotations

import os
import signal
import subprocess
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


def stop_process_groups(
    children: list[tuple[str, subprocess.Popen]], *, grace: float, on_timeout: Callable[[str], None] = lambda name: None
) -> None:
    """Stop processes started with ``start_new_session=True`` (last started first): SIGTERM to
    each group leader only, so it stops its own children (a qcluster whose workers were
    signalled directly waits for them forever); wait up to ``grace`` seconds in all
    (``on_timeout(name)`` for each that did not stop), then SIGKILL whatever is left of every
    group, so no orphan survives."""
    for _, proc in reversed(children):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for name, proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            on_timeout(name)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)
