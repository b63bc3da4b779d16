"""``python manage.py setup_schedules``: create or update the engine's django-q2 schedules.

Idempotent (keyed by name): the IOU retry sweep and the stale-work resolver, every minute.
``make run`` runs it; on several machines run it once against the shared database.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = [
    ("qv-iou-retry-sweep", "profitshare.tasks.retry_due_ious_task", 1),
    ("qv-stale-resolver", "profitshare.tasks.resolve_stale_task", 1),
    # operations: TTL, reconciliation, delinquency, notifications, RPC watch
    ("qv-iou-ttl", "profitshare.tasks.expire_ious_task", 5),
    ("qv-reconciliation", "profitshare.tasks.reconcile_task", 60),
    ("qv-delinquency", "profitshare.tasks.detect_delinquency_task", 1),
    ("qv-notifications", "profitshare.tasks.deliver_notifications_task", 1),
    ("qv-rpc-watch", "profitshare.tasks.watch_rpc_failures_task", 5),
    ("qv-webhooks", "profitshare.tasks.deliver_webhooks_task", 1),
    # what ended subscriptions still carry, and carries whose recipient's token account exists now
    ("qv-carry-flush", "profitshare.tasks.flush_carries_task", 60),
    # expired Sign-In With Solana nonces
    ("qv-siws-prune", "profitshare.tasks.prune_sign_in_nonces_task", 60),
]


class Command(BaseCommand):
    help = "Create or update the profit-share engine's django-q2 schedules (idempotent)."

    def handle(self, *args, **options):
        for name, func, minutes in SCHEDULES:
            _, created = Schedule.objects.update_or_create(
                name=name,
                defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
            )
            self.stdout.write(f"{'created' if created else 'updated'} schedule {name}: {func} every {minutes} min")
