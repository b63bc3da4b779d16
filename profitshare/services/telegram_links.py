"""Linking a creator's Telegram chat to their wallet, and their notice choices (docs/design.md,
"Notices before changes apply").

A signed-in creator asks for a one-time code on their dashboard (``issue_link_code``) and
sends it to the product's bot (``/start <code>``, or the ``t.me/<bot>?start=<code>`` link,
which sends exactly that). ``read_bot_updates`` (the notifications schedule, every minute)
reads the bot's updates with the Bot API's ``getUpdates``, from the stored offset: a valid
code links the chat it came from to the code's wallet (``CreatorWallet.telegram_chat_id``) and
is spent; the chat is told either way. Nobody types a chat id. ``set_notices`` stores which
notices the creator gets; ``unlink`` forgets the chat.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from profitshare.models import CreatorNotices, CreatorWallet, TelegramLinkCode, TelegramUpdateOffset
from profitshare.services.audit import record_event
from profitshare.services.errors import InvalidInput, NotFound
from profitshare.services.notifications import enqueue

logger = logging.getLogger(__name__)
CODE_BYTES = 9  # 12 URL-safe characters: a start parameter Telegram accepts (1-64 of A-Za-z0-9_-)
NOTICE_KINDS = ("payouts", "debts", "delinquency")


def _creator(address: str) -> CreatorWallet:
    creator = CreatorWallet.objects.filter(address=address).first()
    if creator is None:
        raise NotFound("creator", address)
    return creator


def issue_link_code(address: str, *, now=None) -> TelegramLinkCode:
    """A new one-time code for the creator wallet ``address``, valid for
    ``QV_TELEGRAM_LINK_CODE_MINUTES``; earlier unused codes stop working. Raises ``NotFound``
    for a wallet that is not a creator."""
    now = now or timezone.now()
    with transaction.atomic():
        creator = _creator(address)
        TelegramLinkCode.objects.filter(creator=creator, used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        code = TelegramLinkCode.objects.create(
            creator=creator, code=secrets.token_urlsafe(CODE_BYTES),
            expires_at=now + timedelta(minutes=settings.QV_TELEGRAM_LINK_CODE_MINUTES),
        )
        record_event("creator", address, actor=f"creator:{address}", reason="telegram link code issued",
                     expires_at=code.expires_at.isoformat())
    return code


def set_notices(address: str, **choices: bool) -> CreatorNotices:
    """Store which notices the creator gets: any of ``payouts``, ``debts``, ``delinquency``
    (booleans; the others keep their value). Raises ``InvalidInput`` for another name or a
    non-boolean, ``NotFound`` for an unknown creator; nothing changes then."""
    for name, value in choices.items():
        if name not in NOTICE_KINDS:
            raise InvalidInput(name, f"not a notice kind (one of {', '.join(NOTICE_KINDS)})")
        if not isinstance(value, bool):
            raise InvalidInput(name, "must be true or false")
    with transaction.atomic():
        creator = _creator(address)
        notices, _ = CreatorNotices.objects.select_for_update().get_or_create(creator=creator)
        for name, value in choices.items():
            setattr(notices, name, value)
        notices.save()
        record_event("creator", address, actor=f"creator:{address}", reason="notice choices saved",
                     **{name: getattr(notices, name) for name in NOTICE_KINDS})
    return notices


def unlink(address: str) -> None:
    """Forget the creator's Telegram chat (no notice is sent there any more). ``NotFound`` for
    an unknown creator."""
    with transaction.atomic():
        creator = _creator(address)
        CreatorWallet.objects.filter(pk=creator.pk).update(telegram_chat_id="")
        record_event("creator", address, actor=f"creator:{address}", reason="telegram chat unlinked")


@dataclass(frozen=True)
class UpdateCounts:
    """What one ``read_bot_updates`` did: ``updates`` read, chats ``linked``, codes ``refused``."""

    updates: int = 0
    linked: int = 0
    refused: int = 0


def _start_code(message: dict) -> str | None:
    text = (message.get("text") or "").strip()
    if not text.startswith("/start"):
        return None
    parts = text.split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


def _link(code_text: str, chat_id: str, now) -> bool:
    code = (
        TelegramLinkCode.objects.select_for_update().select_related("creator")
        .filter(code=code_text, used_at__isnull=True, expires_at__gt=now).first()
    ) if code_text else None
    if code is None:
        enqueue(chat_id, "That code is unknown, used or expired. Get a new one on your QuantumVault creator dashboard.")
        return False
    code.used_at, code.chat_id = now, chat_id
    code.save(update_fields=["used_at", "chat_id"])
    CreatorWallet.objects.filter(pk=code.creator_id).update(telegram_chat_id=chat_id)
    CreatorNotices.objects.get_or_create(creator_id=code.creator_id)
    address = code.creator.address
    record_event("creator", address, actor="telegram", reason="telegram chat linked", chat_id=chat_id)
    enqueue(chat_id, f"Linked to creator wallet {address[:4]}…{address[-4:]}. Choose your notices on the dashboard.")
    return True


def read_bot_updates(*, client: httpx.Client | None = None, now=None) -> UpdateCounts:
    """Read the bot's new updates (``getUpdates`` from the stored offset, no long polling) and
    link the chats that sent a valid ``/start <code>``; the offset moves past what was read in
    the same transaction, so an update is handled once even with several workers (the offset
    row is locked meanwhile). Without ``QV_TELEGRAM_BOT_TOKEN`` nothing is read. Raises
    nothing for HTTP trouble (logged; the next run reads the same updates again)."""
    if not settings.QV_TELEGRAM_BOT_TOKEN:
        return UpdateCounts()
    now = now or timezone.now()
    url = f"{settings.QV_TELEGRAM_API_URL.rstrip('/')}/bot{settings.QV_TELEGRAM_BOT_TOKEN}/getUpdates"
    with transaction.atomic():
        offset, _ = TelegramUpdateOffset.objects.select_for_update().get_or_create(pk=1)
        try:
            http = client or httpx.Client(timeout=10)
            try:
                body = http.post(url, json={"offset": offset.offset, "timeout": 0, "allowed_updates": ["message"]}).json()
            finally:
                if client is None:
                    http.close()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("telegram getUpdates failed: %s", exc)
            return UpdateCounts()
        if not body.get("ok"):
            logger.warning("telegram getUpdates refused: %s", body.get("description"))
            return UpdateCounts()
        updates = body.get("result") or []
        linked = refused = 0
        for update in updates:
            message = update.get("message") or {}
            code = _start_code(message)
            chat = (message.get("chat") or {}).get("id")
            if code is None or chat is None:
                continue
            if _link(code, str(chat), now):
                linked += 1
            else:
                refused += 1
        if updates:
            offset.offset = max(int(u["update_id"]) for u in updates) + 1
            offset.save(update_fields=["offset", "updated_at"])
    return UpdateCounts(len(updates), linked, refused)
