"""Agent key encryption at rest (profitshare.chain.keys) and the rotate_agent_keys command.

No database needed.
"""

import io
import logging

import base58
import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import override_settings
from solders.keypair import Keypair

from profitshare.chain import keys
from profitshare.management.commands.rotate_agent_keys import rotate_ciphertexts

K1 = Fernet.generate_key().decode()
K2 = Fernet.generate_key().decode()


def _secret_forms(kp: Keypair) -> list[bytes]:
    raw = bytes(kp)
    return [raw[:32], raw, base58.b58encode(raw), str(list(raw[:32])).encode()]


@override_settings(QV_KEY_ENCRYPTION_KEYS=[K1])
def test_round_trip_and_no_plaintext_in_ciphertext():
    kp, ciphertext = keys.generate_agent_keypair()
    assert isinstance(ciphertext, bytes)
    for form in _secret_forms(kp):
        assert form not in ciphertext
    back = keys.decrypt_keypair(ciphertext)
    assert back.pubkey() == kp.pubkey()
    assert bytes(back) == bytes(kp)
    # accepted input shapes: bytes, str, memoryview (DB BinaryField)
    assert keys.decrypt_keypair(ciphertext.decode()).pubkey() == kp.pubkey()
    assert keys.decrypt_keypair(memoryview(ciphertext)).pubkey() == kp.pubkey()
    other = Keypair()
    assert keys.decrypt_keypair(keys.encrypt_keypair(other)).pubkey() == other.pubkey()
    # fresh IV each time
    assert keys.encrypt_keypair(other) != keys.encrypt_keypair(other)


def test_rotation():
    kp = Keypair()
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K1]):
        old = keys.encrypt_keypair(kp)
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K2, K1]):
        assert keys.decrypt_keypair(old).pubkey() == kp.pubkey()  # old key still decrypts
        new = keys.rotate(old)
        assert new != old
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K2]):  # new key alone
        assert bytes(keys.decrypt_keypair(new)) == bytes(kp)
        with pytest.raises(keys.InvalidCiphertext):
            keys.decrypt_keypair(old)
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K1]), pytest.raises(keys.InvalidCiphertext):
        keys.decrypt_keypair(new)


def test_settings_as_comma_separated_string():
    kp = Keypair()
    with override_settings(QV_KEY_ENCRYPTION_KEYS=f"{K2},{K1}"):
        ciphertext = keys.encrypt_keypair(kp)
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K2]):
        assert keys.decrypt_keypair(ciphertext).pubkey() == kp.pubkey()


@override_settings(QV_KEY_ENCRYPTION_KEYS=[K1])
@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + (b"A" if c[-1:] != b"A" else b"B"),  # last char of HMAC
        lambda c: c[:20] + (b"x" if c[20:21] != b"x" else b"y") + c[21:],  # inside IV/ciphertext
        lambda c: c[:-10],  # truncated
        lambda c: b"",
        lambda c: b"not a token at all",
        lambda c: "é" + c.decode(),  # non-ASCII str
        lambda c: b"!" + c,  # characters Fernet's base64 decoder would silently skip
        lambda c: c.decode() + "\n",
    ],
)
def test_tampering_is_invalid_ciphertext(tamper):
    kp = Keypair()
    ciphertext = keys.encrypt_keypair(kp)
    with pytest.raises(keys.InvalidCiphertext) as err:
        keys.decrypt_keypair(tamper(ciphertext))
    with pytest.raises(keys.InvalidCiphertext):
        keys.rotate(tamper(ciphertext))
    for form in _secret_forms(kp):
        assert form.decode("latin-1") not in str(err.value)
    assert ciphertext.decode() not in str(err.value)


@override_settings(QV_KEY_ENCRYPTION_KEYS=[K1])
def test_valid_token_that_is_not_a_keypair():
    with pytest.raises(keys.InvalidCiphertext, match="expected 64"):
        keys.decrypt_keypair(Fernet(K1).encrypt(b"short"))
    mismatched = bytes(Keypair())[:32] + bytes(Keypair().pubkey())
    with pytest.raises(keys.InvalidCiphertext):
        keys.decrypt_keypair(Fernet(K1).encrypt(mismatched))


@override_settings(QV_KEY_ENCRYPTION_KEYS=[], DEBUG=False)
def test_not_configured_outside_debug():
    with pytest.raises(keys.KeyEncryptionNotConfigured) as err:
        keys.generate_agent_keypair()
    assert "Fernet.generate_key()" in str(err.value)
    assert "QV_KEY_ENCRYPTION_KEYS" in str(err.value)
    with pytest.raises(keys.KeyEncryptionNotConfigured):
        keys.encrypt_keypair(Keypair())
    with pytest.raises(keys.KeyEncryptionNotConfigured):
        keys.decrypt_keypair(b"gAAAA")
    with pytest.raises(keys.KeyEncryptionNotConfigured):
        keys.ensure_configured()


@override_settings(QV_KEY_ENCRYPTION_KEYS=["not-a-fernet-key"], DEBUG=False)
def test_invalid_configured_key_is_reported_without_echoing_it():
    with pytest.raises(keys.KeyEncryptionNotConfigured) as err:
        keys.encrypt_keypair(Keypair())
    assert "QV_KEY_ENCRYPTION_KEYS[0]" in str(err.value)
    assert "not-a-fernet-key" not in str(err.value)


def test_debug_dev_key_is_deterministic_from_secret_key(caplog, monkeypatch):
    monkeypatch.setattr(keys, "_warned_dev_key", False)
    kp = Keypair()
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[], DEBUG=True, SECRET_KEY="s1" * 30):
        with caplog.at_level(logging.WARNING, logger="profitshare.chain.keys"):
            ciphertext = keys.encrypt_keypair(kp)
        assert "development key" in caplog.text
        assert "s1s1" not in caplog.text
        assert keys.decrypt_keypair(ciphertext).pubkey() == kp.pubkey()
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[], DEBUG=True, SECRET_KEY="s1" * 30):
        assert keys.decrypt_keypair(ciphertext).pubkey() == kp.pubkey()  # same derivation
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[], DEBUG=True, SECRET_KEY="s2" * 30):
        with pytest.raises(keys.InvalidCiphertext):
            keys.decrypt_keypair(ciphertext)
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K1]), pytest.raises(keys.InvalidCiphertext):
        keys.decrypt_keypair(ciphertext)  # the dev key is not used once real keys exist


def test_solders_keypair_repr_and_str_expose_the_secret():
    """Why keys.py never formats a Keypair: solders' repr/str are NOT pubkey-only."""
    kp = Keypair()
    assert str(list(bytes(kp)[:32]))[1:-1] in repr(kp)
    assert str(kp) == base58.b58encode(bytes(kp)).decode()
    assert str(kp.pubkey()) in str(kp.pubkey())  # the pubkey is the safe thing to log


def test_rotate_ciphertexts_function():
    pairs = [Keypair() for _ in range(3)]
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K1]):
        old = [keys.encrypt_keypair(kp) for kp in pairs]
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K2, K1]):
        new = rotate_ciphertexts(iter(old))
        with pytest.raises(keys.InvalidCiphertext):
            rotate_ciphertexts([old[0], b"garbage"])
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K2]):
        assert [keys.decrypt_keypair(c).pubkey() for c in new] == [kp.pubkey() for kp in pairs]


def test_rotate_agent_keys_command():
    out = io.StringIO()
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[K2, K1]):
        call_command("rotate_agent_keys", stdout=out)
    assert "Rotated 0 agent wallet key(s)" in out.getvalue()
    with override_settings(QV_KEY_ENCRYPTION_KEYS=[], DEBUG=False):
        with pytest.raises(CommandError, match="Fernet.generate_key"):
            call_command("rotate_agent_keys", stdout=io.StringIO())


@override_settings(QV_KEY_ENCRYPTION_KEYS=[K1], DEBUG=False)
def test_django_error_reports_hide_key_material():
    import sys

    from django.views.debug import ExceptionReporter

    kp = Keypair()
    token = keys.encrypt_keypair(kp)
    bad = token[:-2] + (b"AA" if token[-2:] != b"AA" else b"BB")
    try:
        keys.decrypt_keypair(bad)
    except keys.InvalidCiphertext:
        data = ExceptionReporter(None, *sys.exc_info()).get_traceback_data()
    frames = {f["function"]: dict(f["vars"]) for f in data["frames"]}
    hidden = "'********************'"
    assert frames["decrypt_keypair"] == {"ciphertext": hidden, "fernet": hidden}
    assert frames["sensitive_variables_wrapper"]["func_args"] == hidden
    # the same frame without the decorator would show the token:
    try:
        keys.decrypt_keypair.__wrapped__(bad)
    except keys.InvalidCiphertext:
        data = ExceptionReporter(None, *sys.exc_info()).get_traceback_data()
    plain = {f["function"]: dict(f["vars"]) for f in data["frames"]}
    assert plain["decrypt_keypair"]["ciphertext"] != hidden
