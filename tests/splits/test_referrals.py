"""Referral links (docs/design.md, "The referral chain"): one referrer per wallet, set once; no
self-referral, no invalid address, no cycle, also when two links race on PostgreSQL; the chain
reads three levels up."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections
from solders.keypair import Keypair

from profitshare.models import AuditEvent, Referral
from profitshare.selectors.referrals import referral_chain, referral_root, referrer_of
from profitshare.services.errors import Conflict, InvalidInput
from profitshare.services.locks import advisory_key
from profitshare.services.referrals import (
    InvalidReferralAddress,
    ReferralConflict,
    ReferralCycle,
    SelfReferral,
    link_referral,
)

pytestmark = pytest.mark.django_db(transaction=True)


def wallets(n: int) -> list[str]:
    return [str(Keypair().pubkey()) for _ in range(n)]


def state() -> tuple[list, int]:
    return list(Referral.objects.order_by("pk").values()), AuditEvent.objects.count()


def test_a_link_is_recorded_once_with_an_audit_event():
    a, b = wallets(2)
    referral, created = link_referral(a, b, actor="test")
    assert created and (referral.wallet, referral.referrer_wallet) == (a, b)
    event = AuditEvent.objects.get(entity="referral", entity_id=a)
    assert (event.actor, event.to_status, event.data) == ("test", "linked", {"referrer_wallet": b})
    before = state()
    again, created = link_referral(a, b)
    assert not created and again.pk == referral.pk
    assert state() == before


def test_another_referrer_is_a_conflict_and_changes_nothing():
    a, b, c = wallets(3)
    link_referral(a, b)
    before = state()
    with pytest.raises(ReferralConflict) as caught:
        link_referral(a, c)
    assert isinstance(caught.value, Conflict) and caught.value.referrer_wallet == b
    assert state() == before
    assert referrer_of(a) == b


def test_a_self_referral_is_refused():
    (a,) = wallets(1)
    with pytest.raises(SelfReferral) as caught:
        link_referral(a, a)
    assert (caught.value.field, caught.value.message) == ("referrer_wallet", "a wallet cannot refer itself")
    assert state() == ([], 0)


@pytest.mark.parametrize("bad", ["", "not base58!", "3" * 20, "1" * 32, " " + str(Keypair().pubkey()), None, 7])
@pytest.mark.parametrize("field", ["wallet", "referrer_wallet"])
def test_an_invalid_address_is_refused_naming_its_field(field, bad):
    args = dict(zip(("wallet", "referrer_wallet"), wallets(2), strict=True))
    args[field] = bad
    with pytest.raises(InvalidReferralAddress) as caught:
        link_referral(**args)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.field == field and "not a valid Solana address" in caught.value.message
    assert state() == ([], 0)


def test_a_link_that_would_make_a_cycle_is_refused_at_any_depth():
    a, b, c, d = wallets(4)
    link_referral(a, b)  # b referred a
    with pytest.raises(ReferralCycle) as caught:
        link_referral(b, a)
    assert caught.value.field == "referrer_wallet" and "cycle" in caught.value.message
    link_referral(b, c)
    link_referral(c, d)
    before = state()
    for below in (a, b, c):  # d, the top, is 3 levels above a: nobody under it may refer it
        with pytest.raises(ReferralCycle):
            link_referral(d, below)
    assert state() == before


def test_the_chain_reads_up_to_three_levels_nearest_first():
    a, b, c, d, e = wallets(5)
    for wallet, referrer in ((a, b), (b, c), (c, d), (d, e)):
        link_referral(wallet, referrer)
    assert referral_chain(a) == [b, c, d]
    assert referral_chain(a, levels=10) == [b, c, d, e]
    assert referral_chain(a, levels=1) == [b]
    assert referral_chain(a, levels=0) == []
    assert referral_chain(c) == [d, e]
    assert referral_chain(e) == []
    assert (referral_root(a), referral_root(e)) == (e, e)


def _race(first: tuple[str, str], second: tuple[str, str]) -> list[object]:
    """Run two links at once from two threads (own connections), started together; each
    thread's result or the exception it raised, in order."""
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def run(i: int, link: tuple[str, str]) -> None:
        try:
            barrier.wait(10)
            results[i] = link_referral(*link)[1]
        except Exception as exc:  # noqa: BLE001 (the outcome is what the test reads)
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, link)) for i, link in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_two_links_racing_into_a_cycle_end_with_one_refused():
    for _ in range(25):
        a, b = wallets(2)
        results = _race((a, b), (b, a))
        assert sorted(map(type, results), key=str) == sorted([bool, ReferralCycle], key=str), results
        assert True in results
        assert Referral.objects.filter(wallet__in=[a, b]).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_two_links_racing_into_a_longer_cycle_end_with_one_refused():
    """b <- c and d <- e exist; e <- b and c <- d at once would close e <- b <- c <- d <- e. The
    two links share no wallet: each locks its own wallet and the top of its referrer's tree."""
    for _ in range(15):
        b, c, d, e = wallets(4)
        link_referral(b, c)
        link_referral(d, e)
        results = _race((e, b), (c, d))
        assert sorted(map(type, results), key=str) == sorted([bool, ReferralCycle], key=str), results
        assert Referral.objects.filter(wallet__in=[b, c, d, e]).count() == 3
        for wallet in (b, c, d, e):
            assert len(referral_chain(wallet, levels=10)) < 4  # the chain ends


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")
def test_a_link_waits_for_the_top_of_its_tree_and_other_trees_do_not():
    """Another transaction holds the lock of ``top``: a link below ``top`` waits for it, a link
    in an unrelated tree does not."""
    below, top, other, other_referrer = wallets(4)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_key(top, namespace="referral")])
                held.set()
                release.wait(30)
                cursor.execute("COMMIT")
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    finished = threading.Event()

    def link_below() -> None:
        try:
            link_referral(below, top)
            finished.set()
        finally:
            connection.close()

    waiter = threading.Thread(target=link_below)
    try:
        waiter.start()
        started = time.monotonic()
        link_referral(other, other_referrer)  # unrelated: not held up
        assert time.monotonic() - started < 2
        assert not finished.wait(0.5)  # still waiting for top's lock
    finally:
        release.set()
        holder.join(10)
        waiter.join(10)
    assert finished.is_set() and referrer_of(below) == top
