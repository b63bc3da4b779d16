"""The demo sign-in exists only when the demo is on, DEBUG is on and the client is on this machine
(loopback)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from solders.keypair import Keypair

from profitshare.demo import splits
from profitshare.demo.wallets import CREATOR, keypair
from profitshare.models import CreatorWallet, SiwsNonce
from profitshare.services.referrals import link_referral


@pytest.fixture
def demo_off(settings):
    settings.QV_DEMO = False  # the default
    return settings


@pytest.mark.django_db
def test_demo_pages_are_404_when_the_demo_is_off(client, demo_off):
    address = str(keypair(1, CREATOR, "ada").pubkey())
    CreatorWallet.objects.create(address=address)
    assert client.get("/demo/").status_code == 404
    assert client.post("/demo/", {"address": address}).status_code == 404
    assert "qv_wallet" not in client.session
    assert not SiwsNonce.objects.exists()


@pytest.mark.django_db
def test_demo_off_by_setting_even_with_the_environment(client, settings, monkeypatch):
    monkeypatch.setenv("QV_DEMO", "1")
    settings.QV_DEMO = False
    assert client.get("/demo/").status_code == 404


@pytest.mark.django_db
def test_demo_on_refuses_a_wallet_that_is_not_a_demo_wallet(client, settings):
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, 1, True
    stranger = str(Keypair().pubkey())
    CreatorWallet.objects.create(address=stranger)
    assert client.post("/demo/", {"address": stranger}).status_code == 404
    assert "qv_wallet" not in client.session


@pytest.mark.django_db
def test_demo_on_signs_in_a_demo_creator_through_siws(client, settings):
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, 1, True
    address = str(keypair(1, CREATOR, "ada").pubkey())
    CreatorWallet.objects.create(address=address)
    assert "Sign in as ada" in client.get("/demo/").content.decode()
    response = client.post("/demo/", {"address": address})
    assert response.status_code == 302 and response["Location"] == "/creator/"
    assert client.session["qv_wallet"] == address
    assert SiwsNonce.objects.get(address=address).used_at is not None


@pytest.mark.django_db
def test_demo_admin_opens_the_console_only_with_the_demo_on(client, settings, demo_off):
    assert client.post("/demo/", {"admin": "1"}).status_code == 404
    assert client.get("/console/").status_code == 302  # to the admin login
    settings.QV_DEMO, settings.DEBUG = True, True
    response = client.post("/demo/", {"admin": "1"})
    assert response.status_code == 302 and response["Location"] == "/console/"
    assert client.get("/console/").status_code == 200
    user = get_user_model().objects.get(username="demo-admin")
    assert user.is_staff and not user.has_usable_password()


@pytest.mark.django_db
def test_demo_is_404_with_debug_off_even_when_on(client, settings):
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, 1, False
    address = str(keypair(1, CREATOR, "ada").pubkey())
    CreatorWallet.objects.create(address=address)
    assert client.get("/demo/").status_code == 404
    assert client.post("/demo/", {"address": address}).status_code == 404
    assert client.post("/demo/", {"admin": "1"}).status_code == 404
    assert "qv_wallet" not in client.session and "_auth_user_id" not in client.session
    assert not SiwsNonce.objects.exists()
    assert not get_user_model().objects.filter(username="demo-admin").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("remote_addr", ["203.0.113.7", "10.0.0.2", "2001:db8::1", ""])
def test_demo_answers_loopback_clients_only(client, settings, remote_addr):
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, 1, True
    address = str(keypair(1, CREATOR, "ada").pubkey())
    CreatorWallet.objects.create(address=address)
    assert client.get("/demo/", REMOTE_ADDR=remote_addr).status_code == 404
    assert client.post("/demo/", {"address": address}, REMOTE_ADDR=remote_addr).status_code == 404
    assert client.post("/demo/", {"admin": "1"}, REMOTE_ADDR=remote_addr).status_code == 404
    assert "qv_wallet" not in client.session and "_auth_user_id" not in client.session
    assert not SiwsNonce.objects.exists()
    assert client.get("/demo/", REMOTE_ADDR="::1").status_code == 200


@pytest.mark.django_db
def test_demo_on_signs_in_a_referrer_to_its_earnings_once_its_link_is_recorded(client, settings):
    settings.QV_DEMO, settings.QV_DEMO_SEED, settings.DEBUG = True, 1, True
    rhea, ada = splits.wallet(1, "rhea"), splits.wallet(1, "ada")
    assert client.post("/demo/", {"address": rhea}).status_code == 404  # not a referrer yet
    link_referral(ada, rhea, actor="test")
    page = client.get("/demo/").content.decode()
    assert "Sign in as rhea" in page and "refers ada" in page and "rhea referred ada" in page
    assert "Sign in as kai" not in page  # kai's link is not recorded
    response = client.post("/demo/", {"address": rhea})
    assert response.status_code == 302 and response["Location"] == "/earnings/"
    assert client.session["qv_wallet"] == rhea
    assert SiwsNonce.objects.get(address=rhea).used_at is not None
    assert client.get("/earnings/").status_code == 200
