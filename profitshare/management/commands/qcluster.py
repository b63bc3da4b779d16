"""``python manage.py qcluster``: django-q2's cluster, stoppable by any SIGTERM within 10 s.

django-q2's own ``qcluster`` stops cleanly (about a second) when only its leader gets SIGTERM,
but a SIGTERM to its whole process group (what ``kill -- -PGID``, many supervisors and a shell's
Ctrl-C do) kills its sentinel process mid-way and leaves the leader "stopping" forever with a
zombie child. This command (it shadows django-q2's: ``profitshare`` comes first in
``INSTALLED_APPS``) is a small supervisor:

* it runs django-q2's command in a child process in a session of its own, so a signal to the
  supervisor's process group reaches the supervisor alone;
* on SIGTERM or SIGINT it sends SIGTERM to the cluster's leader only (its clean stop), waits up
  to ``QV_Q_STOP_GRACE_SECONDS`` (8), then SIGKILLs the cluster's whole session and reaps it;
  it exits 0 after a requested stop, or with the cluster's exit status if the cluster ended;
* the cluster watches its supervisor: if the supervisor disappears (SIGKILL), the cluster stops
  itself, so nothing is orphaned.

``--run-once`` and ``--name`` are django-q2's options, passed on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.management.commands.qcluster import Command as DjangoQCommand

CHILD_FLAG = "--supervised-child"


def _stop_when_orphaned(supervisor_pid: int) -> None:
    """In the cluster's leader: SIGTERM ourselves (django-q2's clean stop) once the supervisor
    that started us is gone."""

    def watch() -> None:
        while os.getppid() == supervisor_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="qv-supervisor-watch", daemon=True).start()


class Command(BaseCommand):
    help = "Start a django-q2 cluster under a supervisor that stops it within seconds on any SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--run-once", action="store_true", dest="run_once", default=False)
        parser.add_argument("-n", "--name", dest="cluster_name", default=None)
        parser.add_argument(CHILD_FLAG, type=int, dest="supervisor_pid", default=None, help="internal")

    def handle(self, *args, **options):
        if options["supervisor_pid"]:
            _stop_when_orphaned(options["supervisor_pid"])
            return DjangoQCommand().handle(run_once=options["run_once"], cluster_name=options["cluster_name"])
        return self._supervise(options)

    def _supervise(self, options) -> None:
        command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster", CHILD_FLAG, str(os.getpid())]
        if options["run_once"]:
            command.append("--run-once")
        if options["cluster_name"]:
            command += ["--name", options["cluster_name"]]
        stop_requested = threading.Event()

        def request_stop(signum, frame):
            stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        cluster = subprocess.Popen(command, start_new_session=True)
        while cluster.poll() is None and not stop_requested.wait(0.2):
            pass
        if cluster.poll() is None:
            cluster.send_signal(signal.SIGTERM)
            try:
                cluster.wait(timeout=settings.QV_Q_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"qcluster did not stop within {settings.QV_Q_STOP_GRACE_SECONDS} s: killed")
        try:
            os.killpg(cluster.pid, signal.SIGKILL)  # whatever is left of its session
        except ProcessLookupError:
            pass
        cluster.wait()
        if not stop_requested.is_set() and cluster.returncode:
            raise SystemExit(cluster.returncode)
