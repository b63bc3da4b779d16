"""The engine's schedules exist once, however often the command runs."""

import pytest
from django.core.management import call_command
from django_q.models import Schedule

pytestmark = pytest.mark.django_db


def test_setup_schedules_is_idempotent():
    call_command("setup_schedules")
    call_command("setup_schedules")
    names = sorted(Schedule.objects.values_list("name", flat=True))
    assert {"qv-iou-retry-sweep", "qv-stale-resolver", "qv-iou-ttl"} <= set(names)
    assert len(names) == len(set(names))
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert {"profitshare.tasks.retry_due_ious_task", "profitshare.tasks.resolve_stale_task"} <= funcs
    for func in funcs:  # every scheduled task exists
        module, _, name = func.rpartition(".")
        assert callable(getattr(__import__(module, fromlist=[name]), name))


def test_webhook_deliveries_are_scheduled():
    call_command("setup_schedules")
    assert Schedule.objects.get(name="qv-webhooks").func == "profitshare.tasks.deliver_webhooks_task"
