"""HTTP hardening: a Content-Security-Policy of this origin only (and templates that need no
inline script), HSTS / Secure cookies with DEBUG off, ``Cache-Control: no-store`` on signed-in
pages, and ``manage.py check --deploy`` clean under production settings."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from solders.keypair import Keypair

from tests.pages.conftest import sign_in_as
from tests.security.test_startup import MANAGE, ROOT, clean_env

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.django_db
def test_pages_carry_a_self_only_content_security_policy(client):
    policy = client.get("/signin/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_templates_have_no_inline_script_or_handler():
    """Every script is a static file (``<script src=...>``) or a JSON data block."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offenders.append((template.name, tag))
        offenders += [(template.name, m) for m in re.findall(r"\son[a-z]+\s*=", text)]
        offenders += [(template.name, m) for m in re.findall(r"hx-on[:-]|javascript:|\sstyle\s*=|<style\b", text)]
    assert offenders == []


@pytest.mark.django_db
def test_signed_in_pages_are_not_stored(client):
    assert "no-store" not in client.get("/signin/").get("Cache-Control", "")
    sign_in_as(client, str(Keypair().pubkey()))
    for path in ("/creator/", "/subscriber/", "/"):
        response = client.get(path)
        assert "no-store" in response["Cache-Control"], path
        assert "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_staff_pages_are_not_stored(client):
    get_user_model().objects.create_user("ops", "ops@example.com", "pw-for-tests", is_staff=True)
    assert client.login(username="ops", password="pw-for-tests")
    assert "no-store" in client.get("/console/")["Cache-Control"]


def test_check_deploy_is_clean_under_production_settings():
    result = subprocess.run([*MANAGE, "check", "--deploy", "--fail-level", "WARNING"], env=clean_env(),
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_production_sends_hsts_and_secure_cookies():
    probe = (
        "from django.test import Client; from django.conf import settings as s;"
        "r = Client().get('/signin/', secure=True, HTTP_HOST='localhost');"
        "print(r.status_code, r.get('Strict-Transport-Security'), s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " Client().get('/signin/', HTTP_HOST='localhost').status_code, Client().get('/healthz', HTTP_HOST='localhost').status_code != 301)"
    )
    env = clean_env(DATABASE_URL="sqlite:///:memory:")
    result = subprocess.run([*MANAGE, "shell", "--no-imports", "-c", probe], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    status, *hsts, session_secure, csrf_secure, plain_status, healthz_not_redirected = result.stdout.split()
    assert status == "200"
    assert " ".join(hsts) == "max-age=31536000; includeSubDomains"
    assert (session_secure, csrf_secure) == ("True", "True")
    assert plain_status == "301"  # plain HTTP is redirected to HTTPS
    assert healthz_not_redirected == "True"


def test_the_proxy_tls_header_comes_from_settings():
    probe = "from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER)"
    env = clean_env(QV_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https")
    result = subprocess.run([*MANAGE, "shell", "--no-imports", "-c", probe], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", result.stderr
