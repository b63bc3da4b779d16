"""Real processes for deployment tests: the local node, ``qcluster`` and a web server, each
``manage.py``/gunicorn in its own process group against the pytest-django test database.

``ProductProcesses`` starts them with one environment (``DATABASE_URL`` naming the test
database, so rows the test commits are what they see) and stops every group it started:
SIGTERM, a bounded wait, then SIGKILL — no orphans.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from profitshare.management.processes import stop_process_groups, wait_until_answering

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]
INTAKE_SECRET = "deploy-intake-secret"
ADMIN_SECRET = "deploy-admin-secret"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_of_test() -> str:
    """``postgres://`` URL of the database this test runs on (pytest-django's test database)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class ProductProcesses:
    """Processes of one test, logging to ``log_dir``; ``env`` is what every child gets."""

    def __init__(self, log_dir: Path, **env: str) -> None:
        from django_q.conf import Conf

        self.log_dir = log_dir
        # django-q2 signs queued tasks with the secret key: the children must share this
        # process's (a development key needs DEBUG on in the children's settings)
        secret_key = Conf.SECRET_KEY
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_of_test(),
            "QV_DEBUG": "1" if secret_key.startswith("dev-only") else "0",
            "QV_SECRET_KEY": secret_key,
            "QV_INTAKE_SECRET": INTAKE_SECRET,
            "QV_ADMIN_SECRET": ADMIN_SECRET,
            "QV_KEY_ENCRYPTION_KEYS": ",".join(settings.QV_KEY_ENCRYPTION_KEYS),
            "QV_LOG_FORMAT": "plain",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("QV_DEMO", None)
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        """Start ``command`` in its own session; output goes to ``{log_dir}/{name}.log``."""
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.children.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        """What the child ``name`` printed so far."""
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def start_node(self, *, slot_ms: int = 100) -> str:
        """A local node on a free port (``manage.py localnet``); returns its URL once healthy.
        ``SOLANA_RPC_URLS`` of later children points at it."""
        port = free_port()
        self.start("localnet", [*MANAGE, "localnet", "--port", str(port), "--slot-ms", str(slot_ms)])
        url = f"http://127.0.0.1:{port}"
        self.wait_http(f"{url}/health", "localnet")
        self.env["SOLANA_RPC_URLS"] = url
        return url

    def start_web(self, *, workers: int = 2) -> str:
        """gunicorn serving ``quantumvault.wsgi`` on a free port; returns its URL once the API
        answers."""
        port = free_port()
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.start("web", [gunicorn, "quantumvault.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers), "--timeout", "60"])
        url = f"http://127.0.0.1:{port}"
        self.wait_http(f"{url}/api/v1/openapi.json", "web")
        return url

    def start_qcluster(self, name: str) -> subprocess.Popen:
        """One ``manage.py qcluster`` (its broker: Redis when ``REDIS_URL`` is in ``env``)."""
        return self.start(name, [*MANAGE, "qcluster"])

    def wait_http(self, url: str, name: str, timeout: float = 60.0) -> None:
        """Wait until ``url`` answers below 500; fails with the child's log when it died."""
        proc = dict(self.children)[name]
        if wait_until_answering(url, timeout=timeout, alive=lambda: proc.poll() is None):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}")
        raise RuntimeError(f"{name} did not answer {url} within {timeout:.0f} s:\n{self.log(name)[-3000:]}")

    def stop(self, grace: float = 10.0) -> None:
        """Stop every child (group leaders first, SIGKILL what is left after ``grace`` s)."""
        stop_process_groups(self.children, grace=grace)
        self.children.clear()
