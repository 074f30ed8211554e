"""Workers killed at any moment (SIGKILL, mid-file) and restarted finish every file exactly once."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import Node
from genofed import db
from genofed.archive.stages import archive_key

GENOFED = Path(sys.executable).parent / "genofed"
S = db.FileState


def _running_jobs(node: Node) -> int:
    with db.session_scope(node.engine) as session:
        query = select(func.count()).select_from(db.Job).where(db.Job.state == db.JobState.RUNNING)
        return int(session.scalar(query) or 0)


def _wait_until_busy(node: Node, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _running_jobs(node):
            return True
        time.sleep(0.01)
    return False


def _states(node: Node, ids: list[str]) -> list[S]:
    return [node.file(file_id).state for file_id in ids]


@pytest.mark.slow
def test_killed_workers_finish_every_file_exactly_once(node: Node, tmp_path: Path) -> None:
    plains = [os.urandom(48 * 1024 * 1024 + n) for n in range(3)]
    ids = [node.upload(node.encrypt(plain), chunk=8 << 20) for plain in plains]
    env = {
        **os.environ,
        "GENOFED_CONFIG": str(node.settings.home / "genofed.toml"),
        "GENOFED_QUEUE_LEASE_SECONDS": "1",  # a killed worker's message is free again soon
        # every kill counts as an attempt; allow more kills than the default five per message
        "GENOFED_QUEUE_MAX_ATTEMPTS": "20",
    }
    rng = random.Random(20261124)
    kills_mid_message = 0
    for _ in range(8):
        if all(state == S.READY for state in _states(node, ids)):
            break
        worker = subprocess.Popen(
            [GENOFED, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        busy = _wait_until_busy(node, timeout=20)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere inside the stage
        busy = busy and _running_jobs(node) > 0
        worker.kill()  # SIGKILL: no chance to clean up
        worker.wait()
        kills_mid_message += busy
    finisher = subprocess.run(
        [GENOFED, "worker", "--until-idle", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finisher.returncode == 0, finisher.stderr
    assert kills_mid_message >= 2, "the workers were never killed while processing a message"

    files = [node.file(file_id) for file_id in ids]
    for plain, file in zip(plains, files, strict=True):
        assert file.state == S.READY, (file.state, file.error)
        assert file.decrypted_sha256 == hashlib.sha256(plain).hexdigest()
        # no event was recorded twice (no state entered twice, no second accession), whatever
        # was repeated after a kill
        entered = Counter((event.state, event.detail) for event in file.events)
        assert max(entered.values()) == 1, entered
    # one accession per file, none lost to a kill
    with db.session_scope(node.engine) as session:
        counter = session.get(db.AccessionCounter, "file")
        assert counter is not None and counter.next_value == len(ids) + 1
        jobs = Counter(state for (state,) in session.execute(select(db.Job.state)))
    assert set(jobs) == {db.JobState.DONE}, jobs
    # no orphan object: exactly one body per file in archive and backup; the inbox is empty
    expected = sorted(archive_key(file_id) for file_id in ids)
    assert sorted(node.pipeline.archive.list()) == expected
    assert sorted(node.pipeline.backup.list()) == expected
    assert list(node.pipeline.inbox.list()) == []
    # and no temp file of a write killed midway: the restarted worker swept them
    for store in (node.pipeline.inbox, node.pipeline.archive, node.pipeline.backup):
        assert list((store.root / ".genofed-tmp").glob("*")) == []  # type: ignore[attr-defined]
