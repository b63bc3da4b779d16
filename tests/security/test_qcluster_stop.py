"""``manage.py qcluster`` stops within 10 s and leaves no process behind, whether SIGTERM goes to
its leader (``kill PID``) or to its whole process group (``kill -- -PGID``), and stops itself
when its supervisor is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.processes import MANAGE, ROOT, database_url_of_test

pytestmark = pytest.mark.django_db(transaction=True)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc's children lists)."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_cluster(tmp_path) -> tuple[subprocess.Popen, set[int]]:
    env = {**os.environ, "DATABASE_URL": database_url_of_test(), "QV_LOG_FORMAT": "plain", "QV_Q_WORKERS": "2"}
    env.pop("REDIS_URL", None)
    log = open(tmp_path / "qcluster.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([*MANAGE, "qcluster"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"running." in (tmp_path / "qcluster.log").read_bytes():
            break
        time.sleep(0.2)
    else:
        raise AssertionError((tmp_path / "qcluster.log").read_text())
    tree = descendants(proc.pid)
    assert len(tree) >= 5, tree  # cluster leader, sentinel, 2 workers, monitor, pusher
    return proc, tree


def stop_and_measure(proc: subprocess.Popen, tree: set[int], send) -> float:
    started = time.monotonic()
    send()
    try:
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 2
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in tree if alive(pid)], "processes left behind"
    return elapsed


def test_sigterm_to_the_leader_stops_everything_within_10_s(tmp_path):
    proc, tree = start_cluster(tmp_path)
    elapsed = stop_and_measure(proc, tree, lambda: proc.send_signal(signal.SIGTERM))
    assert proc.returncode == 0 and elapsed < 10, elapsed


def test_sigterm_to_the_whole_process_group_stops_everything_within_10_s(tmp_path):
    proc, tree = start_cluster(tmp_path)
    elapsed = stop_and_measure(proc, tree, lambda: os.killpg(proc.pid, signal.SIGTERM))
    assert proc.returncode == 0 and elapsed < 10, elapsed


def test_the_cluster_stops_itself_when_its_supervisor_is_killed(tmp_path):
    proc, tree = start_cluster(tmp_path)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [pid for pid in tree if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
