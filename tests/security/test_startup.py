"""Safe by default: DEBUG is off unless ``QV_DEBUG=1``, and with DEBUG off every entry point (web,
qcluster, management commands) refuses to start on a missing or weak secret, or with the demo on,
with one line naming the variable. Each case runs real processes with a clean environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

STRONG = {
    "QV_SECRET_KEY": "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz",
    "QV_INTAKE_SECRET": "intake-" + "i" * 32,
    "QV_ADMIN_SECRET": "admin-" + "a" * 32,
    "QV_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def clean_env(**overrides: str | None) -> dict:
    """This process's environment without any QV_ setting (nor the browser tests'
    DJANGO_ALLOW_ASYNC_UNSAFE), plus production secrets and ``overrides`` (``None`` removes a
    variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QV_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DATABASE_URL": os.environ.get("DATABASE_URL", "sqlite:///:memory:"), **STRONG})
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(command: list[str], env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def refusal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


CASES = [
    ({"QV_SECRET_KEY": None}, "QV_SECRET_KEY is required"),
    ({"QV_SECRET_KEY": "short-but-random-0123456789"}, "QV_SECRET_KEY is too weak"),
    ({"QV_SECRET_KEY": "a" * 60}, "QV_SECRET_KEY is too weak"),
    ({"QV_INTAKE_SECRET": None}, "QV_INTAKE_SECRET is required"),
    ({"QV_INTAKE_SECRET": " " * 40}, "QV_INTAKE_SECRET is required"),
    ({"QV_INTAKE_SECRET": "dev-intake-secret"}, "QV_INTAKE_SECRET is too short"),
    ({"QV_ADMIN_SECRET": None}, "QV_ADMIN_SECRET is required"),
    ({"QV_ADMIN_SECRET": "x" * 31}, "QV_ADMIN_SECRET is too short"),
    ({"QV_ADMIN_SECRET": STRONG["QV_INTAKE_SECRET"]}, "QV_ADMIN_SECRET must differ from QV_INTAKE_SECRET"),
    ({"QV_KEY_ENCRYPTION_KEYS": None}, "QV_KEY_ENCRYPTION_KEYS is required"),
    ({"QV_KEY_ENCRYPTION_KEYS": "not-a-fernet-key"}, "QV_KEY_ENCRYPTION_KEYS: key 1 is not a valid Fernet key"),
    ({"QV_KEY_ENCRYPTION_KEYS": STRONG["QV_KEY_ENCRYPTION_KEYS"] + ",bad"}, "key 2 is not a valid Fernet key"),
    ({"QV_DEMO": "1"}, "QV_DEMO=1 needs QV_DEBUG=1"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[c[1] for c in CASES])
def test_a_management_command_refuses_to_start_with_one_line(overrides, message):
    result = run([*MANAGE, "check"], clean_env(**overrides))
    assert result.returncode == 3, result.stderr
    lines = refusal_lines(result.stderr)
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    for secret in STRONG.values():
        assert secret not in result.stderr


def test_debug_is_off_unless_qv_debug_is_1():
    """No QV_DEBUG at all: production rules apply (the dev defaults are not used)."""
    result = run([*MANAGE, "check"], clean_env(QV_SECRET_KEY=None, QV_INTAKE_SECRET=None))
    assert result.returncode == 3 and "QV_SECRET_KEY is required" in result.stderr
    result = run([*MANAGE, "check"], clean_env(QV_DEBUG="0", QV_INTAKE_SECRET=None))
    assert result.returncode == 3 and "QV_INTAKE_SECRET is required" in result.stderr


def test_strong_settings_start_and_debug_is_off():
    probe = "from django.conf import settings; print(settings.DEBUG, settings.QV_INTAKE_SECRET == 'dev-intake-secret')"
    result = run([*MANAGE, "shell", "--no-imports", "-c", probe], clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_development_defaults_only_with_qv_debug_1():
    probe = "from django.conf import settings; print(settings.DEBUG, settings.QV_INTAKE_SECRET)"
    env = clean_env(QV_DEBUG="1", QV_SECRET_KEY=None, QV_INTAKE_SECRET=None, QV_ADMIN_SECRET=None,
                    QV_KEY_ENCRYPTION_KEYS=None)
    result = run([*MANAGE, "shell", "--no-imports", "-c", probe], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "dev-intake-secret"]


def test_qcluster_refuses_to_start_without_key_encryption_keys():
    """The key an agent wallet is encrypted with is checked before the cluster starts (it used
    to boot, pass ``check`` and ``/healthz``, and fail on the first ``POST /subscriptions``)."""
    result = run([*MANAGE, "qcluster"], clean_env(QV_KEY_ENCRYPTION_KEYS=None), timeout=30)
    assert result.returncode == 3
    assert refusal_lines(result.stderr) == [
        "quantumvault: refusing to start: QV_KEY_ENCRYPTION_KEYS is required when QV_DEBUG is off "
        "(comma-separated Fernet keys)"
    ]


def test_gunicorn_refuses_to_start_and_does_not_respawn_workers():
    """Exit status 3 is gunicorn's "worker failed to boot": the master stops (within the
    timeout) instead of respawning workers forever."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run([GUNICORN, "quantumvault.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
                 clean_env(QV_ADMIN_SECRET=None), timeout=30)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("quantumvault:")]
    assert ours and set(ours) == {"quantumvault: refusing to start: QV_ADMIN_SECRET is required when QV_DEBUG is off"}, result.stderr
    # each worker prints the one line; no traceback comes from the settings (gunicorn's master
    # may print its own when two workers fail to boot at once)
    assert "settings.py" not in result.stderr and "startup.py" not in result.stderr


def test_run_product_refuses_the_demo_without_debug():
    result = run([*MANAGE, "run_product"], clean_env())
    assert result.returncode != 0
    assert "the demo market needs QV_DEBUG=1" in result.stderr
