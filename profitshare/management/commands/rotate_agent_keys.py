"""``python manage.py rotate_agent_keys``: re-encrypt agent wallet keys under the newest key.

Key roll-over: prepend a new Fernet key to ``QV_KEY_ENCRYPTION_KEYS``, run this command, then
remove the old key (see :mod:`profitshare.chain.keys`).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.management.base import BaseCommand, CommandError

from profitshare.chain import keys


def rotate_ciphertexts(ciphertexts: Iterable[bytes | bytearray | memoryview | str]) -> list[bytes]:
    """Re-encrypt each ciphertext under the newest key; returns the new tokens in input order.

    All or nothing: every input is rotated before anything is returned, and the first invalid
    one raises ``keys.InvalidCiphertext`` (``keys.KeyEncryptionNotConfigured`` if no keys).
    """
    return [keys.rotate(c) for c in ciphertexts]


def rotate_stored_agent_keys() -> int:
    """Rotate every stored agent wallet key; return how many were rotated.

    TODO(engine issue): wire to the ``profitshare.models.AgentWallet`` model once it exists: in
    one transaction, ``select_for_update()`` the wallets, pass their encrypted-key field through
    :func:`rotate_ciphertexts`, and save them back (``update_fields`` on that field only). Until
    then there is nothing stored, so nothing is rotated.
    """
    return len(rotate_ciphertexts([]))


class Command(BaseCommand):
    help = "Re-encrypt all agent wallet keys under the newest key in QV_KEY_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            keys.ensure_configured()
            count = rotate_stored_agent_keys()
        except keys.KeyEncryptionNotConfigured as exc:
            raise CommandError(str(exc)) from None
        except keys.InvalidCiphertext as exc:
            raise CommandError(f"rotation aborted, nothing saved: {exc}") from None
        self.stdout.write(f"Rotated {count} agent wallet key(s) to the newest key.")
