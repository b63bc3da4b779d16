"""Sign-In With Solana: the message carries domain, nonce, issued-at and expiry; the server
verifies the ed25519 signature with solders; a nonce is fresh and single-use; the development
sign-in exists only with DEBUG on."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from solders.keypair import Keypair

from profitshare.models import SiwsNonce
from profitshare.services import siws
from profitshare.services.errors import InvalidInput
from profitshare.views.common import SESSION_WALLET

pytestmark = pytest.mark.django_db


def challenge(client, keypair, host="testserver"):
    """Ask for a message to sign; returns (nonce, message text)."""
    response = client.post("/signin/challenge/", {"address": str(keypair.pubkey())}, HTTP_HOST=host)
    assert response.status_code == 200
    nonce = re.search(r'name="nonce" value="([^"]+)"', response.content.decode()).group(1)
    return nonce, response.context["message"]


def test_message_has_domain_nonce_issued_at_and_expiry(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair)
    lines = message.split("\n")
    assert lines[0] == "testserver wants you to sign in with your Solana account:"
    assert lines[1] == str(keypair.pubkey())
    assert f"Nonce: {nonce}" in lines
    assert "URI: http://testserver/" in lines
    issued = next(line for line in lines if line.startswith("Issued At: "))
    expires = next(line for line in lines if line.startswith("Expiration Time: "))
    assert re.fullmatch(r"Issued At: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", issued)
    assert re.fullmatch(r"Expiration Time: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", expires)
    assert len(nonce) >= 32


def test_a_real_signature_signs_the_session_in_and_the_nonce_is_single_use(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair)
    signature = str(keypair.sign_message(message.encode()))
    response = client.post("/signin/verify/", {"nonce": nonce, "signature": signature, "next": "/creator/"})
    assert response.status_code == 302 and response["Location"] == "/creator/"
    assert client.session[SESSION_WALLET] == str(keypair.pubkey())
    assert SiwsNonce.objects.get(nonce=nonce).used_at is not None
    # the same signed message again: refused
    other = type(client)()
    replay = other.post("/signin/verify/", {"nonce": nonce, "signature": signature})
    assert replay.status_code == 400 and "already used" in replay.content.decode()
    assert SESSION_WALLET not in other.session


def test_a_signature_by_another_key_is_refused_and_burns_the_nonce(client):
    keypair, impostor = Keypair(), Keypair()
    nonce, message = challenge(client, keypair)
    forged = str(impostor.sign_message(message.encode()))
    response = client.post("/signin/verify/", {"nonce": nonce, "signature": forged})
    assert response.status_code == 400 and "does not match" in response.content.decode()
    assert SESSION_WALLET not in client.session
    genuine = str(keypair.sign_message(message.encode()))
    assert client.post("/signin/verify/", {"nonce": nonce, "signature": genuine}).status_code == 400


def test_a_signature_of_another_message_is_refused(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair)
    tampered = message.replace("testserver", "evil.example")
    response = client.post("/signin/verify/", {"nonce": nonce, "signature": str(keypair.sign_message(tampered.encode()))})
    assert response.status_code == 400
    assert SESSION_WALLET not in client.session


def test_an_expired_nonce_is_refused(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair)
    later = timezone.now() + siws.NONCE_TTL + timedelta(seconds=1)
    with pytest.raises(InvalidInput, match="expired"):
        siws.verify_sign_in(
            nonce=nonce, signature=str(keypair.sign_message(message.encode())), domain="testserver", now=later
        )


def test_a_nonce_issued_for_another_domain_is_refused(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair, host="localhost")
    assert message.startswith("localhost wants you")
    response = client.post(
        "/signin/verify/", {"nonce": nonce, "signature": str(keypair.sign_message(message.encode()))},
        HTTP_HOST="testserver",
    )
    assert response.status_code == 400 and "another site" in response.content.decode()


@pytest.mark.parametrize("address", ["", "not-an-address", "0" * 44, "1111"])
def test_a_bad_address_gets_no_nonce(client, address):
    response = client.post("/signin/challenge/", {"address": address})
    assert response.status_code == 400
    assert SiwsNonce.objects.count() == 0


@pytest.mark.parametrize("signature", ["", "xyz", "1" * 20])
def test_a_malformed_signature_is_a_clear_error(client, signature):
    nonce, _ = challenge(client, Keypair())
    response = client.post("/signin/verify/", {"nonce": nonce, "signature": signature})
    assert response.status_code == 400 and "signature" in response.content.decode()


def test_next_must_stay_on_this_site(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair)
    response = client.post(
        "/signin/verify/",
        {"nonce": nonce, "signature": str(keypair.sign_message(message.encode())), "next": "https://evil.example/"},
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_development_sign_in_is_a_404_with_debug_off(client, settings):
    settings.DEBUG = False
    address = str(Keypair().pubkey())
    assert client.get("/signin/dev/").status_code == 404
    assert client.post("/signin/dev/", {"address": address}).status_code == 404
    assert SESSION_WALLET not in client.session
    assert "Development sign-in" not in client.get("/signin/").content.decode()


def test_development_sign_in_works_with_debug_on(client, settings):
    settings.DEBUG = True
    address = str(Keypair().pubkey())
    assert "Development sign-in" in client.get("/signin/").content.decode()
    response = client.post("/signin/dev/", {"address": address, "next": "/subscriber/"})
    assert response.status_code == 302 and response["Location"] == "/subscriber/"
    assert client.session[SESSION_WALLET] == address


def test_sign_out_forgets_the_wallet(client):
    keypair = Keypair()
    nonce, message = challenge(client, keypair)
    client.post("/signin/verify/", {"nonce": nonce, "signature": str(keypair.sign_message(message.encode()))})
    assert client.post("/signout/").status_code == 302
    assert SESSION_WALLET not in client.session
    assert client.get("/creator/").status_code == 302


@pytest.mark.parametrize("remote_addr", ["203.0.113.7", "192.168.1.20"])
def test_development_sign_in_is_a_404_for_remote_clients_even_with_debug_on(client, settings, remote_addr):
    settings.DEBUG = True
    address = str(Keypair().pubkey())
    response = client.post("/signin/dev/", {"address": address}, REMOTE_ADDR=remote_addr)
    assert response.status_code == 404
    assert SESSION_WALLET not in client.session


def test_the_development_sign_in_form_is_offered_to_loopback_clients_only(client, settings):
    settings.DEBUG = True
    assert "Development sign-in" in client.get("/signin/").content.decode()
    assert "Development sign-in" not in client.get("/signin/", REMOTE_ADDR="203.0.113.7").content.decode()
