"""``manage.py rebuild_earnings``: recompute the earnings rollups and the legs' running totals
from the ledger."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from profitshare.services import earnings, leg_totals


class Command(BaseCommand):
    help = (
        "Recompute the earnings rollups (paid per creator, bot and day; per subscription) from the "
        "distributions and the legs' running totals (per creator, wallet and role; per wallet, role and day) from the legs; "
        "--check only compares them and fails on a difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="compare the rollups with the ledger, change nothing")

    def handle(self, *args, check: bool = False, **options):
        if check:
            ledger, rollups = earnings.ledger_sums(), earnings.rollup_sums()
            ledger["legs"], rollups["legs"] = leg_totals.ledger_sums(), leg_totals.rollup_sums()
            differ = {
                table: sorted(set(ledger[table].items()) ^ set(rollups[table].items()), key=str)[:10]
                for table in ledger
            }
            if any(differ.values()):
                raise CommandError(f"rollups differ from the ledger (first differences): {differ}")
            leg_days = sum(1 for key in ledger["legs"] if key[0] == "day")
            self.stdout.write(f"rollups match the ledger: {len(ledger['days'])} day rows, "
                              f"{len(ledger['subscriptions'])} subscription rows, "
                              f"{len(ledger['legs']) - leg_days} leg total rows, {leg_days} leg day rows")
            return
        written = earnings.rebuild()
        legs = leg_totals.rebuild()
        self.stdout.write(f"rebuilt: {written['days']} day rows, {written['subscriptions']} subscription rows, "
                          f"{legs} leg total rows")
