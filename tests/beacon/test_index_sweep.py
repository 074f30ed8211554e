"""The sweep of the node's embedded pipeline indexes released datasets by itself, once; a
dataset with a bad file is reported and left alone, without stopping the others."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from index_support import (
    archive_file,
    attach,
    make_node,
    random_records,
    released_dataset,
    vcf_text,
    write_vcf,
)
from sqlalchemy import Engine

from genofed import db
from genofed.beacon.index import pending_datasets
from genofed.beacon.sweep import sweep_forever, sweep_once
from genofed.config import Settings
from genofed.node.directory import node_secret_key


@pytest.fixture
def settings(tmp_path: Path, db_engine: Engine) -> Settings:
    made = make_node(tmp_path / "node")
    return made.model_copy(
        update={"database_url": db_engine.url.render_as_string(hide_password=False)}
    )


def _release(engine: Engine, settings: Settings, alias: str, data: bytes) -> str:
    with db.session_scope(engine) as session:
        dataset = released_dataset(session, settings, alias)
        attach(session, dataset, archive_file(session, settings, data, f"{alias}.vcf.gz"))
        return str(dataset.accession)


def _vcf(tmp_path: Path, seed: int) -> bytes:
    records = random_records(random.Random(seed), 4, 30, chroms=("1",))
    text = vcf_text(records, ["A", "B", "C", "D"])
    return write_vcf(tmp_path / f"s{seed}.vcf.gz", text, "bgzf", index=False).read_bytes()


def test_a_sweep_indexes_what_was_released_and_skips_what_failed(
    settings: Settings, db_engine: Engine, tmp_path: Path
) -> None:
    good = _release(db_engine, settings, "good", _vcf(tmp_path, 1))
    bad = _release(db_engine, settings, "bad", b"not a vcf at all")
    keys = [node_secret_key(settings)]
    failed: set[str] = set()

    assert sweep_once(db_engine, settings, keys, failed) == [good]
    assert failed == {bad}
    with db.session_scope(db_engine) as session:
        assert good not in pending_datasets(session)
    assert sweep_once(db_engine, settings, keys, failed) == []  # nothing new, bad not retried


def test_the_sweep_runs_until_stopped(
    settings: Settings, db_engine: Engine, tmp_path: Path
) -> None:
    settings.beacon.index_every_seconds = 0.05
    keys = [node_secret_key(settings)]

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        task = asyncio.create_task(sweep_forever(db_engine, settings, keys, stop))
        accession = await asyncio.to_thread(
            _release, db_engine, settings, "later", _vcf(tmp_path, 2)
        )
        for _ in range(200):  # released while the sweep runs: picked up on a later round
            await asyncio.sleep(0.05)
            with db.session_scope(db_engine) as session:
                if accession not in pending_datasets(session):
                    break
        stop.set()
        await asyncio.wait_for(task, 5)
        with db.session_scope(db_engine) as session:
            return pending_datasets(session)

    assert asyncio.run(scenario()) == []
