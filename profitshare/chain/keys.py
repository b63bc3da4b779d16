"""Agent wallet keypairs, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

Keys: Django setting ``QV_KEY_ENCRYPTION_KEYS``, a list of Fernet keys (url-safe base64 of 32
bytes), **newest first**. Encryption always uses the first key; decryption tries each in turn
(``cryptography.fernet.MultiFernet``), so a new key is rolled in by prepending it, running
``manage.py rotate_agent_keys``, then dropping the old key. Generate a key with::

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

No keys configured:

* ``DEBUG`` on: a development key is derived deterministically from ``SECRET_KEY`` (HKDF-SHA256,
  fixed salt/info below) and a warning is logged once. Ciphertexts made this way decrypt only
  while ``SECRET_KEY`` stays the same; they are not meant to protect anything real.
* ``DEBUG`` off: :class:`KeyEncryptionNotConfigured` (no silent fallback in production).

Plaintext = the 64-byte Solana keypair (``bytes(Keypair)``: 32-byte secret seed + 32-byte
public key). Ciphertext = the Fernet token (ASCII bytes).

Key material hygiene: nothing here logs or formats key material or ciphertexts, error messages
carry none, and functions holding secrets are marked ``sensitive_variables`` so Django's error
reports hide their locals. Beware: ``repr()`` and ``str()`` of a ``solders`` ``Keypair`` DO show the
secret (repr prints the secret key bytes, str is the base58 of all 64 bytes); log
``kp.pubkey()`` only, never the keypair.
"""

from __future__ import annotations

import base64
import logging
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables
from solders.keypair import Keypair

__all__ = [
    "GENERATE_KEY_COMMAND",
    "InvalidCiphertext",
    "KeyEncryptionNotConfigured",
    "decrypt_keypair",
    "ensure_configured",
    "encrypt_keypair",
    "generate_agent_keypair",
    "rotate",
]

logger = logging.getLogger(__name__)

GENERATE_KEY_COMMAND = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
_DEV_KEY_SALT = b"quantumvault/agent-keys/dev"
_DEV_KEY_INFO = b"Fernet key for agent wallet keypairs, DEBUG only, derived from SECRET_KEY"
_KEYPAIR_LEN = 64
_TOKEN_RE = re.compile(rb"[A-Za-z0-9_-]+={0,2}")


class KeyEncryptionNotConfigured(ImproperlyConfigured):
    """``QV_KEY_ENCRYPTION_KEYS`` is empty (outside DEBUG) or holds an invalid Fernet key."""


class InvalidCiphertext(ValueError):
    """A ciphertext that no configured key authenticates (tampered, truncated, wrong key) or
    whose plaintext is not a 64-byte Solana keypair."""


def _configured_keys() -> tuple[str, ...]:
    raw = getattr(settings, "QV_KEY_ENCRYPTION_KEYS", None) or ()
    if isinstance(raw, str | bytes):
        raw = raw.decode() if isinstance(raw, bytes) else raw
        raw = raw.split(",")
    return tuple(k.decode() if isinstance(k, bytes) else str(k) for k in raw if str(k).strip())


@sensitive_variables()
def _dev_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_DEV_KEY_SALT, info=_DEV_KEY_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


@lru_cache(maxsize=8)
@sensitive_variables()
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for i, key in enumerate(keys):
        try:
            fernets.append(Fernet(key.strip()))
        except (ValueError, TypeError):
            raise KeyEncryptionNotConfigured(
                f"QV_KEY_ENCRYPTION_KEYS[{i}] is not a valid Fernet key (url-safe base64 of "
                f"32 bytes). Generate one with: {GENERATE_KEY_COMMAND}"
            ) from None
    return MultiFernet(fernets)


_warned_dev_key = False


@sensitive_variables()
def _fernet() -> MultiFernet:
    """The MultiFernet for the current settings (keys newest first).

    Raises KeyEncryptionNotConfigured (no keys outside DEBUG, or an invalid key).
    """
    global _warned_dev_key
    keys = _configured_keys()
    if keys:
        return _multi_fernet(keys)
    if not settings.DEBUG:
        raise KeyEncryptionNotConfigured(
            "QV_KEY_ENCRYPTION_KEYS is empty: agent wallet keys cannot be encrypted. Set it to a "
            f"comma-separated list of Fernet keys, newest first. Generate one with: "
            f"{GENERATE_KEY_COMMAND}"
        )
    if not _warned_dev_key:
        logger.warning(
            "QV_KEY_ENCRYPTION_KEYS is empty and DEBUG is on: agent wallet keys are encrypted "
            "with a development key derived from SECRET_KEY. Do not use this for real funds."
        )
        _warned_dev_key = True
    return _multi_fernet((_dev_key(settings.SECRET_KEY).decode(),))


def ensure_configured() -> None:
    """Raise ``KeyEncryptionNotConfigured`` unless keys are usable under the current settings.

    With no keys in DEBUG this succeeds (development key, with the warning).
    """
    _fernet()


def _as_token(ciphertext: bytes | bytearray | memoryview | str) -> bytes:
    """The token as bytes; only url-safe base64 characters are accepted (Fernet's alphabet).

    Fernet's own base64 decoding skips foreign characters; refusing them keeps one stored form.
    """
    if isinstance(ciphertext, str):
        if not ciphertext.isascii():
            raise InvalidCiphertext("agent key ciphertext is not ASCII (not a Fernet token)")
        token = ciphertext.encode("ascii")
    elif isinstance(ciphertext, bytes | bytearray | memoryview):
        token = bytes(ciphertext)
    else:
        raise TypeError(f"ciphertext must be bytes or str, got {type(ciphertext).__name__}")
    if not _TOKEN_RE.fullmatch(token):
        raise InvalidCiphertext("agent key ciphertext is not a url-safe base64 Fernet token")
    return token


@sensitive_variables()
def encrypt_keypair(keypair: Keypair) -> bytes:
    """Encrypt ``keypair`` (its 64 bytes) under the newest key; returns the Fernet token (ASCII).

    Raises ``KeyEncryptionNotConfigured``; ``TypeError`` if ``keypair`` is not a ``Keypair``.
    """
    if not isinstance(keypair, Keypair):
        raise TypeError(f"expected a solders Keypair, got {type(keypair).__name__}")
    return _fernet().encrypt(bytes(keypair))


@sensitive_variables()
def decrypt_keypair(ciphertext: bytes | bytearray | memoryview | str) -> Keypair:
    """Decrypt a token from :func:`encrypt_keypair` with any configured key.

    Raises ``InvalidCiphertext`` (tampered, truncated, unknown key, not a keypair),
    ``KeyEncryptionNotConfigured``. Never put the result in logs: its repr shows the secret.
    """
    fernet = _fernet()
    try:
        plaintext = fernet.decrypt(_as_token(ciphertext))
    except InvalidToken:
        raise InvalidCiphertext(
            "agent key ciphertext is invalid: tampered with, truncated, or encrypted under a "
            "key that is not in QV_KEY_ENCRYPTION_KEYS"
        ) from None
    if len(plaintext) != _KEYPAIR_LEN:
        raise InvalidCiphertext(
            f"decrypted agent key has {len(plaintext)} bytes, expected {_KEYPAIR_LEN}"
        )
    try:
        keypair = Keypair.from_bytes(plaintext)
    except ValueError:
        raise InvalidCiphertext("decrypted agent key is not a valid ed25519 keypair") from None
    if bytes(keypair.pubkey()) != plaintext[32:]:
        raise InvalidCiphertext("decrypted agent key: public key does not match the secret")
    return keypair


@sensitive_variables()
def generate_agent_keypair() -> tuple[Keypair, bytes]:
    """Create a new random agent wallet keypair and return ``(keypair, ciphertext)``.

    Raises ``KeyEncryptionNotConfigured`` (before any key is generated or returned).
    """
    _fernet()
    keypair = Keypair()
    return keypair, encrypt_keypair(keypair)


@sensitive_variables()
def rotate(ciphertext: bytes | bytearray | memoryview | str) -> bytes:
    """Re-encrypt ``ciphertext`` under the newest key (first of ``QV_KEY_ENCRYPTION_KEYS``).

    The token is first authenticated and checked to hold a keypair. Raises
    ``InvalidCiphertext`` and ``KeyEncryptionNotConfigured`` like :func:`decrypt_keypair`.
    """
    decrypt_keypair(ciphertext)
    return _fernet().rotate(_as_token(ciphertext))
