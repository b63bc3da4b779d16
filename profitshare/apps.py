from django.apps import AppConfig


class ProfitShareConfig(AppConfig):
    """The profit-share app: engine, chain gateway, local node, pages."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "profitshare"
    verbose_name = "Profit share"

    def ready(self) -> None:
        """Connect the app's signal receivers, here and only here (models are loaded by now):
        one JSON log line per audit event recorded one by one, the RPC error metric mirrored
        before each django-q2 task, and the warm-up of each new worker process."""
        from django.db.models.signals import post_save
        from django_q.signals import post_spawn, pre_execute

        from profitshare.log_format import log_audit_event
        from profitshare.tasks import sync_metrics_before_task

        post_save.connect(log_audit_event, sender="profitshare.AuditEvent", dispatch_uid="qv-state-log")
        pre_execute.connect(sync_metrics_before_task, dispatch_uid="qv-metrics-sync")
        post_spawn.connect(warm_worker, dispatch_uid="qv-warm-worker")


def warm_worker(sender, proc_name: str = "", **kwargs) -> None:
    """Run once in each new django-q2 worker process (``post_spawn``): import the task modules
    and build the process's chain gateway (RPC clients, IDL, SSL context) before the first task
    arrives, so the first payouts of a burst do not pay ~0.5 s of start-up each (measured with
    py-spy under benchmarks/engine.py). Import errors surface here too, not mid-payout."""
    import logging

    from profitshare.services import engine

    try:
        engine.default_gateway()
    except Exception:  # a misconfigured chain fails the first payout with its own error instead
        logging.getLogger(__name__).warning("worker %s: chain gateway not built at start", proc_name, exc_info=True)
