"""One payout at a time per agent wallet (docs/design.md, "One payout at a time
per agent wallet": two payouts on one wallet would measure each other's withdraws), and the
referral locks that keep the referral links free of cycles (``lock_referral_wallets``).

On PostgreSQL: a session-level advisory lock (``pg_advisory_lock``) keyed by the agent wallet,
held across settle + withdraw + transfer while the steps commit their own records, and released
by PostgreSQL itself if the worker dies (its connection closes). It holds across every machine
that shares the database. On other databases (the SQLite embedded default, one machine only): an
``fcntl`` file lock per agent wallet under ``QV_LOCK_DIR``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection


class LockTimeout(Exception):
    """The agent wallet stayed locked by another worker for ``timeout`` seconds."""


def advisory_key(name: str, *, namespace: str = "agent") -> int:
    """A signed 64-bit advisory-lock key for ``name`` (first 8 bytes of the SHA-256 of
    ``"qv-{namespace}:{name}"``): ``"agent"`` for agent wallets' payout locks, ``"referral"`` for
    referral trees, so the two never share a key."""
    return int.from_bytes(hashlib.sha256(f"qv-{namespace}:{name}".encode()).digest()[:8], "big", signed=True)


def lock_referral_wallets(wallets: list[str]) -> None:
    """Take the referral locks of ``wallets`` until the current transaction ends (call inside
    ``transaction.atomic``), one statement per wallet in key order, so two callers wanting the same
    wallets cannot deadlock each other. Waits as long as another transaction holds one.

    On PostgreSQL: ``pg_advisory_xact_lock`` (released by commit or rollback, or when the
    connection dies). On other databases nothing is taken: SQLite (the embedded default) begins
    every transaction ``IMMEDIATE``, which already serialises writers. Why these locks and which
    wallets: ``profitshare.services.referrals.link_referral``.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in sorted({advisory_key(wallet, namespace="referral") for wallet in wallets}):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


@contextlib.contextmanager
def agent_wallet_lock(agent_pubkey: str, *, timeout: float = 60.0, poll: float = 0.05) -> Iterator[None]:
    """Hold the agent wallet's payout lock; raises ``LockTimeout`` after ``timeout`` seconds.

    ``timeout=0`` tries once (for resolvers that skip busy wallets).
    """
    if connection.vendor == "postgresql":
        with _pg_lock(advisory_key(agent_pubkey), timeout, poll):
            yield
    else:
        with _file_lock(agent_pubkey, timeout, poll):
            yield


@contextlib.contextmanager
def agent_wallet_locks(agent_pubkeys: list[str], *, timeout: float = 0.0) -> Iterator[list[str]]:
    """Hold the payout locks of as many of ``agent_pubkeys`` as are free (each waited for up to
    ``timeout`` seconds); yields the ones held, in order. A batch uses ``timeout=0`` and leaves
    busy wallets to whoever holds them.

    On PostgreSQL with ``timeout=0`` all the tries are one statement and all the releases
    another (two round trips per batch instead of two per wallet)."""
    pubkeys = list(dict.fromkeys(agent_pubkeys))
    if connection.vendor == "postgresql" and timeout == 0 and pubkeys:
        held = _pg_try_many(pubkeys)
        try:
            yield held
        finally:
            _pg_unlock_many(held)
        return
    with contextlib.ExitStack() as stack:
        held = []
        for pubkey in pubkeys:
            try:
                stack.enter_context(agent_wallet_lock(pubkey, timeout=timeout))
            except LockTimeout:
                continue
            held.append(pubkey)
        yield held


def _pg_try_many(pubkeys: list[str]) -> list[str]:
    """Try each wallet's advisory lock once, in order, in one statement; the ones taken."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_lock(k) FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(k, i) ORDER BY i",
            [[advisory_key(p) for p in pubkeys]],
        )
        taken = [row[0] for row in cursor.fetchall()]
    return [p for p, ok in zip(pubkeys, taken, strict=True) if ok]


def _pg_unlock_many(pubkeys: list[str]) -> None:
    if not pubkeys:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(k) FROM unnest(%s::bigint[]) AS t(k)", [[advisory_key(p) for p in pubkeys]])


@contextlib.contextmanager
def _pg_lock(key: int, timeout: float, poll: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(f"advisory lock {key} busy")
            time.sleep(poll)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


@contextlib.contextmanager
def _file_lock(name: str, timeout: float, poll: float) -> Iterator[None]:
    directory = Path(getattr(settings, "QV_LOCK_DIR", settings.BASE_DIR / "var" / "locks"))
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"agent-{name}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"file lock for {name} busy") from None
                time.sleep(poll)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
