"""The append-only audit trail: every state change of a distribution, IOU or subscription."""

from __future__ import annotations

from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events are append-only")

    def delete(self):
        raise AppendOnlyError("audit events are append-only")


class AuditEvent(models.Model):
    """Who or what (``actor``) changed which entity from which status to which, when and why.

    Append-only: saving an existing row, updating or deleting raises ``AppendOnlyError``; on
    PostgreSQL a trigger refuses UPDATE and DELETE as well. ``data`` holds amounts (base
    units), signatures and other facts of the change, never key material.
    """

    entity = models.CharField(max_length=24)
    entity_id = models.CharField(max_length=100)
    actor = models.CharField(max_length=150)
    from_status = models.CharField(max_length=24, blank=True, default="")
    to_status = models.CharField(max_length=24, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["entity", "entity_id", "created_at"])]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.entity}:{self.entity_id} {self.from_status}->{self.to_status} by {self.actor}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only")
