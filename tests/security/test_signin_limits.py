"""The sign-in challenge is rate-limited per client, expired nonces are pruned by a schedule, and
the API docs are off in production unless a setting turns them on (assets vendored)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from solders.keypair import Keypair

from profitshare.models import SiwsNonce
from profitshare.services import siws
from profitshare.tasks import prune_sign_in_nonces_task

pytestmark = pytest.mark.django_db


def test_challenges_beyond_the_rate_are_429_and_store_nothing(client, settings):
    settings.QV_SIGNIN_CHALLENGE_RATE = "5/m"
    address = str(Keypair().pubkey())
    answers = [client.post("/signin/challenge/", {"address": address}).status_code for _ in range(8)]
    assert answers == [200] * 5 + [429] * 3
    assert SiwsNonce.objects.count() == 5
    refused = client.post("/signin/challenge/", {"address": address})
    assert refused["Retry-After"] == "60" and "Too many sign-in requests" in refused.content.decode()


def test_the_limit_is_per_client(client, settings):
    settings.QV_SIGNIN_CHALLENGE_RATE = "2/m"
    address = str(Keypair().pubkey())
    for _ in range(2):
        assert client.post("/signin/challenge/", {"address": address}, REMOTE_ADDR="10.0.0.1").status_code == 200
    assert client.post("/signin/challenge/", {"address": address}, REMOTE_ADDR="10.0.0.1").status_code == 429
    assert client.post("/signin/challenge/", {"address": address}, REMOTE_ADDR="10.0.0.2").status_code == 200


def test_expired_nonces_are_pruned_by_the_schedule():
    now = timezone.now()
    address = str(Keypair().pubkey())
    old = siws.issue_challenge(address=address, domain="testserver", uri="http://testserver/", now=now - timedelta(minutes=10))
    fresh = siws.issue_challenge(address=address, domain="testserver", uri="http://testserver/", now=now)
    assert prune_sign_in_nonces_task() == 1
    assert list(SiwsNonce.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert old.pk != fresh.pk
    call_command("setup_schedules", verbosity=0)
    schedule = Schedule.objects.get(name="qv-siws-prune")
    assert schedule.func == "profitshare.tasks.prune_sign_in_nonces_task"


DOCS_PROBE = (
    "from django.test import Client;"
    "r = Client().get('/api/v1/docs', secure=True, HTTP_HOST='localhost');"
    "print(r.status_code, b'cdn' in r.content.lower(), b'/static/ninja/swagger-ui-bundle.js' in r.content)"
)


def _docs(**env):
    import subprocess

    from tests.security.test_startup import MANAGE, ROOT, clean_env

    result = subprocess.run([*MANAGE, "shell", "--no-imports", "-c", DOCS_PROBE],
                            env=clean_env(DATABASE_URL="sqlite:///:memory:", **env), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_api_docs_are_off_in_production():
    assert _docs()[0] == "404"


def test_api_docs_on_by_setting_serve_vendored_assets():
    assert _docs(QV_API_DOCS="1") == ["200", "False", "True"]
