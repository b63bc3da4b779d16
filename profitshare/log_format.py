"""Structured logs: one JSON object per line (one per state change, no key material).

``JsonFormatter`` renders a record as ``{"ts", "level", "logger", "message", ...extra}``; state
changes are logged with ``log_state_change`` so every one carries the same keys (entity, id,
from, to, reason, amounts in base units, signature). Keys that could hold key material
(``secret``, ``keypair``, ``private``, ``seed``, ``encrypted``) are never written.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_FORBIDDEN = ("secret", "keypair", "private", "seed", "encrypted", "raw_transaction")

state_logger = logging.getLogger("profitshare.state")


def _safe(key: str) -> bool:
    lowered = key.lower()
    return not any(word in lowered for word in _FORBIDDEN)


class JsonFormatter(logging.Formatter):
    """A ``logging.Formatter`` writing one JSON object per line. Extra attributes of the record
    (``logger.info(..., extra={...})``) become top-level keys, except forbidden ones (key
    material); values that are not JSON types are written with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and _safe(key):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def log_state_change(
    entity: str, entity_id: Any, *, actor: str, from_status: str = "", to_status: str = "",
    reason: str = "", **data: Any,
) -> None:
    """Write one INFO line on the ``profitshare.state`` logger for a state change: ``entity``,
    ``entity_id``, ``actor``, ``from``, ``to``, ``reason`` and ``data`` (amounts in USDC base
    units, signatures, close ids). Keys naming key material are dropped."""
    fields = {k: v for k, v in data.items() if _safe(k)}
    if from_status or to_status:
        message, args = "%s %s: %s -> %s", (entity, entity_id, from_status or "-", to_status or "-")
    else:  # a fact without a status change (PnL settled, funds withdrawn): say which
        message, args = "%s %s: %s", (entity, entity_id, reason or "updated")
    state_logger.info(
        message, *args,
        extra={"entity": entity, "entity_id": str(entity_id), "actor": actor, "from": from_status,
               "to": to_status, "reason": reason, "data": fields},
    )


def log_audit_event(sender, instance, created: bool, **kwargs) -> None:
    """``post_save`` receiver of ``AuditEvent`` (connected in ``ProfitShareConfig.ready``): log
    an event saved one by one (``record_event``) as a state-change line once its transaction
    commits. Events written in bulk go through ``audit.append_events``, which logs them itself."""
    if not created:
        return
    transaction.on_commit(lambda: log_state_change(
        instance.entity, instance.entity_id, actor=instance.actor, from_status=instance.from_status,
        to_status=instance.to_status, reason=instance.reason, **(instance.data or {}),
    ))
