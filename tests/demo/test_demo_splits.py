"""The demo's splits on their own: the referral links recorded through the API (and what a link
the API refuses does), the referrers' and the treasury's USDC token accounts opened on the local
node, and the platform fee ``run_product`` gives the demo's processes."""

from __future__ import annotations

import pytest
from solders.keypair import Keypair

from profitshare.demo import splits
from profitshare.demo.clients import ApiError, IntakeClient, NodeClient, NodeError
from profitshare.management.commands.run_product import Command as RunProduct
from profitshare.models import Referral
from quantumvault.startup import split_settings

INTAKE_SECRET = "demo-splits-intake-secret"
TOKEN_ACCOUNT_RENT = 2_039_280
FEE = 5_000


@pytest.fixture
def node(localnet):
    client = NodeClient(localnet.url)
    yield client
    client.close()


def test_open_accounts_opens_every_referrers_but_kais_and_the_treasurys(localnet, node):
    seed = 7301
    payer = Keypair()
    localnet.rpc("requestAirdrop", str(payer.pubkey()), 1_000_000_000)
    treasury = splits.treasury(seed)
    assert splits.open_accounts(seed, node, payer, treasury) == 4
    for label in ("rhea", "ines", "bao"):
        assert node.usdc_balance(splits.wallet(seed, label)) == 0, label
    assert node.usdc_balance(treasury) == 0
    assert node.usdc_balance(splits.wallet(seed, "kai")) is None
    # the payer paid four rents and four fees, nobody else
    assert node.lamports(str(payer.pubkey())) == 1_000_000_000 - 4 * (TOKEN_ACCOUNT_RENT + FEE)
    assert splits.open_accounts(seed, node, payer, treasury) == 0  # a re-run opens nothing


def test_open_accounts_without_a_treasury_opens_only_the_referrers(localnet, node):
    seed = 7302
    payer = Keypair()
    localnet.rpc("requestAirdrop", str(payer.pubkey()), 100_000_000)
    assert splits.open_accounts(seed, node, payer, None) == 3
    assert node.usdc_balance(splits.treasury(seed)) is None


def test_open_accounts_with_a_payer_without_sol_is_a_node_error(node):
    seed = 7303
    with pytest.raises(NodeError):
        splits.open_accounts(seed, node, Keypair(), None)
    assert node.usdc_balance(splits.wallet(seed, "rhea")) is None


@pytest.fixture
def api(live_server, settings):
    settings.QV_INTAKE_SECRET = INTAKE_SECRET
    client = IntakeClient(live_server.url, INTAKE_SECRET)
    yield client
    client.close()


@pytest.mark.django_db(transaction=True)
def test_link_referrals_records_the_chain_once(api):
    seed = 7304
    said: list[str] = []
    assert splits.link_referrals(seed, api, said.append) == 4
    ada = splits.wallet(seed, "ada")
    chain = [splits.wallet(seed, label) for label in ("rhea", "ines", "bao")]
    assert api.get(f"/referrals/{ada}")["chain"] == chain
    assert splits.link_referrals(seed, api, said.append) == 0  # 200: already recorded
    assert Referral.objects.count() == 4 and said == []


@pytest.mark.django_db(transaction=True)
def test_a_wallet_with_another_referrer_keeps_it_and_the_demo_says_so(api):
    seed = 7305
    ada, stranger = splits.wallet(seed, "ada"), str(Keypair().pubkey())
    api.post("/referrals", {"wallet": ada, "referrer_wallet": stranger})
    said: list[str] = []
    assert splits.link_referrals(seed, api, said.append) == 3
    assert len(said) == 1 and said[0].startswith("[referrals] rhea -> ada not recorded: HTTP 409")
    assert api.get(f"/referrals/{ada}")["chain"] == [stranger]
    assert Referral.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_link_referrals_raises_what_is_not_a_conflict(live_server, settings):
    settings.QV_INTAKE_SECRET = INTAKE_SECRET
    wrong = IntakeClient(live_server.url, "not-the-intake-secret")
    try:
        with pytest.raises(ApiError) as refused:
            splits.link_referrals(7306, wrong, lambda line: None)
    finally:
        wrong.close()
    assert refused.value.status == 401
    assert not Referral.objects.exists()


def test_run_product_gives_the_demo_a_platform_fee_only_when_none_is_configured():
    seed = 7307
    env = splits.platform_env({}, seed, (500, 200, 100))
    assert env == {"QV_PLATFORM_FEE_BPS": "100", "QV_PLATFORM_TREASURY": splits.treasury(seed)}
    # start-up accepts it, as every process of make run parses it
    assert split_settings(None, env["QV_PLATFORM_FEE_BPS"], env["QV_PLATFORM_TREASURY"]) == (
        (500, 200, 100), 100, splits.treasury(seed))
    assert splits.platform_env({"QV_PLATFORM_FEE_BPS": "0"}, seed, (500, 200, 100)) == {}
    assert splits.platform_env({"QV_PLATFORM_TREASURY": str(Keypair().pubkey())}, seed, (500, 200, 100)) == {}
    assert splits.platform_env({}, seed, (9_000, 800, 100)) == {}  # no room left beside the referral rates


def test_the_run_product_banner_names_the_referrers_and_the_fee():
    seed = 7308
    banner = RunProduct()._demo_banner(8000, seed, splits.platform_settings(seed))
    assert f"referrer   rhea       {splits.wallet(seed, 'rhea')}  (refers ada; /earnings/)" in banner
    assert f"referrer   kai        {splits.wallet(seed, 'kai')}  (refers dara; /earnings/)" in banner
    assert f"platform fee 100 bps to {splits.treasury(seed)}" in banner
    assert "platform fee 0 bps to (no treasury)" in RunProduct()._demo_banner(8000, seed, {})
