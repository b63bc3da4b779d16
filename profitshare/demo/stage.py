"""What the staged cases share: the API and node clients, the world, waiting for the engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django_q.tasks import async_task

from profitshare.demo.clients import IntakeClient, NodeClient
from profitshare.demo.stream import Close, make_close, report
from profitshare.demo.world import DemoSubscription, World
from profitshare.models import TradeClose
from profitshare.money import format_usdc

UNRESOLVED = ("pending", "processing")


class StageTimeout(Exception):
    """A staged step did not happen within its time limit (it is tried again on the next run)."""


@dataclass
class Stage:
    """The demo's handles for staging: ``api`` (signed intake client, with the admin secret),
    ``node``, ``world``, ``say(line)`` for the console, ``stopping()`` (Ctrl-C seen) and the
    time limit of one wait in seconds."""

    api: IntakeClient
    node: NodeClient
    world: World
    say: Callable[[str], None]
    stopping: Callable[[], bool]
    timeout: float = 60.0

    def sub(self, label: str) -> DemoSubscription:
        """The demo subscription named ``label``."""
        return self.world.subscriptions[label]

    def has_closes(self, label: str) -> bool:
        """Whether any close of subscription ``label`` was reported already (a resumed run)."""
        return TradeClose.objects.filter(subscription__subscription_id=self.sub(label).subscription_id).exists()

    def close(self, label: str, pnl: int, kind: str = "full") -> Close:
        """Realize and report a close of ``pnl`` USDC base units on subscription ``label``."""
        close = make_close(self.world.seed, self.sub(label), pnl, kind)
        report(close, self.api, self.node)
        return close

    def first_close(self, label: str, pnl: int, why: str = "") -> None:
        """Report the case's first close of ``pnl`` base units once per world (a resumed run
        skips it), wait for the engine and say how it ended (``why`` explains what is owed)."""
        if self.has_closes(label):
            return
        body = self.resolved(self.close(label, pnl))
        self.say(f"[{label}] payout {body['status']}: {format_usdc(body['owed'])} USDC owed{why}")

    def wait_for(self, what: str, check: Callable[[], object], *, poll: float = 0.25, nudge: Callable[[], None] | None = None):
        """Poll ``check`` until it returns something truthy (returned); ``nudge`` is called every
        few seconds meanwhile. Raises ``StageTimeout`` after ``timeout`` s or on Ctrl-C."""
        deadline = time.monotonic() + self.timeout
        next_nudge = 0.0
        while True:
            value = check()
            if value:
                return value
            if self.stopping() or time.monotonic() >= deadline:
                raise StageTimeout(f"gave up waiting for {what}")
            if nudge is not None and time.monotonic() >= next_nudge:
                nudge()
                next_nudge = time.monotonic() + 3.0
            time.sleep(poll)

    def resolved(self, close: Close) -> dict:
        """Wait until the engine finished with ``close``; returns ``GET /trade-closes/{id}``."""
        def check():
            body = self.api.get(f"/trade-closes/{close.close_id}")
            return body if body["status"] not in UNRESOLVED else None
        return self.wait_for(f"close {close.close_id} to be processed", check)

    def ious(self, label: str, status: str | None = None) -> list[dict]:
        """The subscription's IOUs (``GET /ious``), oldest first."""
        query = f"/ious?subscription_id={self.sub(label).subscription_id}&limit=200"
        if status:
            query += f"&status={status}"
        return self.api.get(query)["items"]


def run_task_now(func: str) -> None:
    """Queue one run of a scheduled task now (``profitshare.tasks.<name>``) instead of waiting
    for its schedule: the cluster's workers run it, as they run the schedule."""
    async_task(func)
