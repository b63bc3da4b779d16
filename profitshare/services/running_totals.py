"""The shared running totals are written last (docs/design.md, "Running totals are written
last").

Two tables hold running totals that many transactions add to: the creators' earnings rollups
(``services.earnings``: a row per creator, day and bot, and one per subscription) and the
legs' totals (``services.leg_totals``: a row per creator, wallet and role). They are hot rows:
every intake and every landed payout of one creator adds to the same creator-leg row. A row
lock taken in the middle of a transaction is held to its commit, so a transaction that took
one and then waited for another row (a subscription, say) could deadlock with an intake that
holds that subscription and waits for the total.

So every transaction that changes them calls ``add_to_running_totals`` once, as its last
row-locking statement, and the function writes them in one order: earnings rollups, then
leg totals, each in key order. A transaction holding a running-total row then waits for
nothing but other running-total rows, taken in the same order, and commit: transactions of
one creator queue on the row and never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable

from profitshare.models import Distribution
from profitshare.services import leg_totals
from profitshare.services.earnings import record_paid, record_voided


def add_to_running_totals(
    *,
    paid: Iterable[tuple[Distribution, int]] = (),
    voided: Iterable[tuple[Distribution, int]] = (),
    legs: Iterable[leg_totals.Delta] = (),
) -> None:
    """Add to the running totals, inside the caller's transaction and after its other writes.

    ``paid``: ``(distribution, base units)`` per landed payout (``earnings.record_paid``: each
    distribution's ``paid`` must already include them). ``voided``: ``(distribution, base
    units)`` an admin voided (``earnings.record_voided``). ``legs``: the legs' deltas
    (``leg_totals.delta``). Raises ``ValueError`` for a non-positive paid or voided amount,
    before anything is written."""
    paid, voided = list(paid), list(voided)
    for _, amount in (*paid, *voided):
        if int(amount) <= 0:
            raise ValueError(f"amounts added to the totals must be positive, got {amount!r}")
    record_paid(paid)
    for distribution, amount in voided:
        record_voided(distribution, amount)
    leg_totals.add(legs)
