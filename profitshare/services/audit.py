"""Writing the append-only audit trail (DESIGN.md "Append-only history")."""

from __future__ import annotations

from typing import Any

from profitshare.models import AuditEvent

ENGINE = "engine"
RESOLVER = "resolver"
PLATFORM = "api:platform"


def record_event(
    entity: str,
    entity_id: Any,
    *,
    actor: str,
    from_status: str = "",
    to_status: str = "",
    reason: str = "",
    **data: Any,
) -> AuditEvent:
    """Append one audit event. ``data``: JSON-serialisable facts (amounts in base units,
    signatures); never key material. Call inside the transaction that makes the change."""
    return AuditEvent.objects.create(
        entity=entity,
        entity_id=str(entity_id),
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=data,
    )


def event(
    entity: str, entity_id: Any, *, actor: str, from_status: str = "", to_status: str = "", reason: str = "",
    **data: Any,
) -> AuditEvent:
    """An unsaved audit event (same fields as ``record_event``), for ``append_events``."""
    return AuditEvent(
        entity=entity, entity_id=str(entity_id), actor=actor, from_status=from_status, to_status=to_status,
        reason=reason, data=data,
    )


def append_events(events: list[AuditEvent]) -> None:
    """Append many audit events in one INSERT (batch phases, intake). ``bulk_create`` sends no
    ``post_save``, so each is logged as a state-change line here, once the transaction commits,
    exactly as ``record_event``'s are."""
    if not events:
        return
    AuditEvent.objects.bulk_create(events)
    from django.db import transaction

    from profitshare.logging import log_state_change

    def log() -> None:
        for e in events:
            log_state_change(e.entity, e.entity_id, actor=e.actor, from_status=e.from_status,
                             to_status=e.to_status, reason=e.reason, **(e.data or {}))

    transaction.on_commit(log)
