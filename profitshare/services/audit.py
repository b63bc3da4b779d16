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
