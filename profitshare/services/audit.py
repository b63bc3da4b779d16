"""Writing the append-only audit trail (docs/design.md, "Append-only history")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from profitshare.db.bulk import insert_rows
from profitshare.log_format import log_state_change
from profitshare.models import AuditEvent

ENGINE = "engine"
RESOLVER = "resolver"
PLATFORM = "api:platform"
_COLUMNS = ("entity", "entity_id", "actor", "from_status", "to_status", "reason", "data", "created_at")


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


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An audit event not written yet (same fields as ``AuditEvent``), for ``append_events``."""

    entity: str
    entity_id: str
    actor: str
    from_status: str = ""
    to_status: str = ""
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def event(
    entity: str, entity_id: Any, *, actor: str, from_status: str = "", to_status: str = "", reason: str = "",
    **data: Any,
) -> PendingEvent:
    """An unsaved audit event (same arguments as ``record_event``), for ``append_events``."""
    return PendingEvent(entity, str(entity_id), actor, from_status, to_status, reason, data)


def append_events(events: list[PendingEvent]) -> None:
    """Append many audit events in one statement (batch phases, intake; see ``db.bulk``), all
    stamped with the same ``created_at``. Each is logged as a state-change line once the
    transaction commits, exactly as ``record_event``'s are. Raises ``TypeError`` if a ``data``
    value is not JSON-serialisable (nothing is written)."""
    if not events:
        return
    now = timezone.now()
    insert_rows(AuditEvent, _COLUMNS, [
        (e.entity, e.entity_id, e.actor, e.from_status, e.to_status, e.reason, e.data, now) for e in events
    ])

    def log() -> None:
        for e in events:
            log_state_change(e.entity, e.entity_id, actor=e.actor, from_status=e.from_status,
                             to_status=e.to_status, reason=e.reason, **e.data)

    transaction.on_commit(log)
