"""Drift on the local node: compute units and time of the product's settle, withdraw and
one-transaction payout.

Prints, for ``--n`` subscribers, the compute units consumed and the node's execution time
(LiteSVM, in-process, no HTTP) of ``settle_pnl`` and ``withdraw`` transactions built by the
product's own Drift adapter (``DriftpyAdapter``) and of the one-transaction payout (settle +
withdraw + the creator's ATA when new + ``transfer_checked`` + memo, as the engine builds it;
and with three referral legs more, one ``transfer_checked`` each), next to a plain SPL ``transfer_checked`` measured
in the same run as the baseline. Also prints what building the instructions costs the adapter
(its reads answered in-process).

    .venv/bin/python benchmarks/drift.py --n 200
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantumvault.settings")

from solders.compute_budget import set_compute_unit_limit  # noqa: E402
from solders.hash import Hash  # noqa: E402
from solders.keypair import Keypair  # noqa: E402
from solders.message import Message  # noqa: E402
from solders.pubkey import Pubkey  # noqa: E402
from solders.transaction import Transaction, VersionedTransaction  # noqa: E402
from spl.token.constants import TOKEN_PROGRAM_ID  # noqa: E402
from spl.token.instructions import (  # noqa: E402
    TransferCheckedParams,
    get_associated_token_address,
    transfer_checked,
)

from profitshare.chain.drift.driftpy_adapter import DriftpyAdapter  # noqa: E402
from profitshare.chain.fees import DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT  # noqa: E402
from profitshare.chain.payouts import payout_instructions  # noqa: E402
from profitshare.localnet.node import USDC_MINT, LocalNode  # noqa: E402


class InProcessPool:
    """``RpcPool.call`` answered from the node in-process (getMultipleAccounts only)."""

    def __init__(self, node: LocalNode) -> None:
        self.node = node

    def call(self, method: str, keys, config=None):
        assert method == "getMultipleAccounts"
        values = []
        for key in keys:
            account = self.node.ledger.get_account(Pubkey.from_string(key))
            values.append(None if account is None else {"data": [base64.b64encode(bytes(account.data)).decode(), "base64"]})
        return {"value": values}


def _run(node: LocalNode, signer: Keypair, instructions, *, budget: bool = True) -> tuple[int, float]:
    blockhash = Hash.from_string(node.ledger.latest_blockhash)
    prefix = [set_compute_unit_limit(200_000)] if budget else []
    tx = VersionedTransaction.from_legacy(
        Transaction([signer], Message([*prefix, *instructions], signer.pubkey()), blockhash)
    )
    started = time.perf_counter()
    record = node.send_transaction_parsed(tx, bytes(tx), preflight=True)
    return record.compute_units, time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="subscribers (one settle + one withdraw each)")
    args = parser.parse_args(argv)
    import django

    django.setup()
    started = time.perf_counter()
    node = LocalNode(slot_ms=0)
    print(f"node with Drift v2.84.0 up in {time.perf_counter() - started:.2f} s (program load + genesis)")
    adapter = DriftpyAdapter(InProcessPool(node))
    agents = []
    for _ in range(args.n):
        agent = Keypair()
        node.airdrop(agent.pubkey(), 10**9)
        node.drift.deposit(agent.pubkey(), 0, 1_000_000_000)
        node.drift.realize_pnl(agent.pubkey(), 0, 10_000_000)
        node.drift.realize_pnl(agent.pubkey(), 0, 10_000_000, 1)  # for the one-transaction payouts
        node.fund_usdc(agent.pubkey(), 1)  # the agent's ATA exists (the engine's usual case)
        agents.append(agent)
    rows = {
        "settle_pnl": [], "withdraw": [], "transfer_checked (baseline)": [],
        "atomic, settle + new ATA": [], "atomic, no settle, ATA exists": [],
        "atomic, no settle, 4 legs": [], "atomic, settle + new ATA, 5 legs": [],
        "transfer, 1 leg, ATA exists": [], "transfer, new ATA, 5 legs": [],
    }
    referrers = [Keypair().pubkey() for _ in range(4)]
    for referrer in referrers:
        node.fund_usdc(referrer, 1)
    build = {"settle_pnl": [], "withdraw": []}
    for agent in agents:
        t = time.perf_counter()
        settle = adapter.build_settle_pnl_instructions(agent, 0, 0)
        build["settle_pnl"].append(time.perf_counter() - t)
        rows["settle_pnl"].append(_run(node, agent, settle))
        ata = get_associated_token_address(agent.pubkey(), USDC_MINT)
        t = time.perf_counter()
        withdraw = adapter.build_withdraw_instructions(agent, 0, 0, 1_000_000, True, user_token_account=ata)
        build["withdraw"].append(time.perf_counter() - t)
        rows["withdraw"].append(_run(node, agent, withdraw))
        creator = Keypair().pubkey()
        node.fund_usdc(creator, 1)
        pay = transfer_checked(TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=ata, mint=USDC_MINT, dest=get_associated_token_address(creator, USDC_MINT),
            owner=agent.pubkey(), amount=1_000_000, decimals=6,
        ))
        rows["transfer_checked (baseline)"].append(_run(node, agent, [pay]))
        # the one-transaction payout: settle (market 1) + withdraw + creator's ATA + transfer + memo
        for market, new_creator in ((1, True), (None, False)):
            drift = adapter.build_payout_instructions(agent, 0, market, 0, 1_000_000, user_token_account=ata)
            paid = Keypair().pubkey() if new_creator else creator
            atomic = payout_instructions(
                agent.pubkey(), paid, USDC_MINT, 1_000_000, "qv:bench", compute_unit_limit=DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT,
                compute_unit_price=0, create_destination_ata=new_creator, drift=drift,
            )
            name = "atomic, settle + new ATA" if new_creator else "atomic, no settle, ATA exists"
            rows[name].append(_run(node, agent, [ix for _, ix in atomic], budget=False))
        drift = adapter.build_payout_instructions(agent, 0, None, 0, 1_000_000, user_token_account=ata)
        legs = payout_instructions(
            agent.pubkey(), creator, USDC_MINT, 920_000, "qv:bench", compute_unit_limit=DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT,
            compute_unit_price=0, create_destination_ata=False, drift=drift,
            more_legs=list(zip(referrers[:3], (50_000, 20_000, 10_000), strict=True)),
        )
        rows["atomic, no settle, 4 legs"].append(_run(node, agent, [ix for _, ix in legs], budget=False))
        # the most a split payout does: a settle, the creator's new ATA and five legs
        node.drift.realize_pnl(agent.pubkey(), 0, 10_000_000, 1)
        drift = adapter.build_payout_instructions(agent, 0, 1, 0, 1_000_000, user_token_account=ata)
        most = payout_instructions(
            agent.pubkey(), Keypair().pubkey(), USDC_MINT, 905_000, "qv:bench",
            compute_unit_limit=DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT, compute_unit_price=0, create_destination_ata=True,
            drift=drift, more_legs=list(zip(referrers, (15_000, 50_000, 20_000, 10_000), strict=True)),
        )
        rows["atomic, settle + new ATA, 5 legs"].append(_run(node, agent, [ix for _, ix in most], budget=False))
        # the step-by-step path's transfer transaction (funds already in the agent's account)
        node.fund_usdc(agent.pubkey(), 2_000_000)
        for name, new_creator, more in (
            ("transfer, 1 leg, ATA exists", False, []),
            ("transfer, new ATA, 5 legs", True, list(zip(referrers, (15_000, 50_000, 20_000, 10_000), strict=True))),
        ):
            step = payout_instructions(
                agent.pubkey(), Keypair().pubkey() if new_creator else creator, USDC_MINT, 905_000, "qv:bench",
                compute_unit_limit=DEFAULT_ATOMIC_COMPUTE_UNIT_LIMIT, compute_unit_price=0,
                create_destination_ata=new_creator, more_legs=more,
            )
            rows[name].append(_run(node, agent, [ix for _, ix in step], budget=False))
        node.advance_slots(1)
    print(f"{'transaction':<30} {'compute units (min-max)':>24} {'node ms p50':>12} {'p95':>8}")
    for name, samples in rows.items():
        units = [u for u, _ in samples]
        times = sorted(t * 1000 for _, t in samples)
        print(f"{name:<30} {min(units):>11,}-{max(units):<12,} {statistics.median(times):>12.2f} {times[int(len(times) * 0.95)]:>8.2f}")
    for name, samples in build.items():
        samples = sorted(s * 1000 for s in samples)
        print(f"adapter builds {name:<15} p50 {statistics.median(samples):.2f} ms, p95 {samples[int(len(samples) * 0.95)]:.2f} ms")


if __name__ == "__main__":
    main()
