"""Pathogen records replicated from nodes to the hub: the hub's merge rules, the node's pushes
from the hub's cursor, refusals, and queries over the whole federation at the hub."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from federation_support import add_hub_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from genofed.db import for_writing, session_scope
from genofed.db.models import HubNode, HubPathogenRecord
from genofed.federation import pathogen_hub
from genofed.federation.pathogen_hub import Replicated, Replication, ReplicationRefused
from genofed.metadata.accessions import check_character
from genofed.pathogen.analysis import GOOD, Analysis, Qc
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.record import OPEN, PathogenRecord

SARS = load_organism("sars-cov-2")
BE, FI = "org.genofed.node.be", "org.genofed.node.fi"


def accession(country: str, number: int) -> str:
    body = f"GF{country}V{number:011d}"
    return body + check_character(body)


def analysis(substitutions: tuple[str, ...] = ("C241T",)) -> Analysis:
    return Analysis(
        organism="sars-cov-2",
        length=29_903,
        alignment_start=1,
        alignment_end=29_903,
        substitutions=substitutions,
        deletions=(),
        insertions=(),
        missing=(),
        ambiguous=(),
        aa_substitutions=(),
        aa_deletions=(),
        aa_insertions=(),
        frameshifts=(),
        stop_codons=(),
        qc=Qc(GOOD, 0.0, ()),
    )


def record(
    country: str,
    number: int,
    version: int = 1,
    *,
    revoked: bool = False,
    substitutions: tuple[str, ...] = ("C241T",),
    collected: str = "2025-01-15",
) -> PathogenRecord:
    return PathogenRecord(
        accession=accession(country, number),
        version=version,
        organism="sars-cov-2",
        node=country,
        metadata={
            "virus_name": f"hCoV-19/{country}/{number}/2025",
            "collection_date": collected,
            "location": f"Europe / {country} / Capital",
        },
        analysis=analysis(substitutions),
        data_use_terms=OPEN,
        restricted_until=None,
        released_at=datetime(2025, 2, 1, tzinfo=UTC),
        revoked=revoked,
    )


def genome(seed: int) -> str:
    """The reference with a few substitutions and its ends trimmed, as a consensus genome."""
    rng = random.Random(seed)
    bases = list(SARS.reference)
    for position in rng.sample(range(len(bases)), 20):
        bases[position] = rng.choice("ACGT".replace(bases[position], ""))
    return "".join(bases[rng.randrange(60) : len(bases) - rng.randrange(60)])


def batch(
    records: list[PathogenRecord],
    *,
    after: int = 0,
    through: int | None = None,
    sequences: bool = False,
) -> Replication:
    return Replication(
        organism="sars-cov-2",
        reference=pathogen_hub.reference_digest(SARS),
        after=after,
        through=len(records) + after if through is None else through,
        records=[
            Replicated(
                record=item.to_json(),
                sequence=pathogen_hub.encode(SARS, genome(i)) if sequences else None,
            )
            for i, item in enumerate(records)
        ],
    )


# -- the hub's merge rules, without HTTP ----------------------------------------------------------


@pytest.fixture
def hub_db(db_engine: Engine) -> Iterator[Engine]:
    """A hub database with the BE and FI nodes approved."""
    with session_scope(for_writing(db_engine)) as session:
        add_hub_node(session, BE, "BE")
        add_hub_node(session, FI, "FI")
    yield db_engine


def _apply(engine: Engine, node_id: str, pushed: Replication) -> dict[str, object]:
    with session_scope(for_writing(engine)) as session:
        node = session.get(HubNode, node_id)
        assert node is not None
        return pathogen_hub.apply(session, node, pushed)


def _held(engine: Engine) -> dict[str, tuple[int, bool]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                HubPathogenRecord.accession, HubPathogenRecord.version, HubPathogenRecord.revoked
            )
        ).all()
    return {name: (version, revoked) for name, version, revoked in rows}


def test_new_versions_replace_and_revocations_stick(hub_db: Engine) -> None:
    first = [record("BE", n) for n in range(1, 4)]
    assert _apply(hub_db, BE, batch(first))["applied"] == {
        "created": 3,
        "updated": 0,
        "revoked": 0,
        "unchanged": 0,
        "stale": 0,
    }
    later = [record("BE", 1, 2), record("BE", 2, revoked=True), record("BE", 3)]
    result = _apply(hub_db, BE, batch(later, after=3, through=6))
    assert result["applied"] == {
        "created": 0,
        "updated": 1,
        "revoked": 1,
        "unchanged": 1,
        "stale": 0,
    }
    assert result["cursor"] == 6
    # a resend of the first batch changes nothing: older version, revocation kept
    again = _apply(hub_db, BE, batch(first))
    assert again["applied"]["stale"] == 1 and again["applied"]["unchanged"] == 2
    assert again["cursor"] == 6
    assert _held(hub_db) == {
        accession("BE", 1): (2, False),
        accession("BE", 2): (1, True),
        accession("BE", 3): (1, False),
    }


def test_the_cursor_moves_only_from_where_the_hub_is(hub_db: Engine) -> None:
    assert _apply(hub_db, BE, batch([record("BE", 1)], after=0, through=5))["cursor"] == 5
    # a batch that follows a cursor the hub never reached leaves it (the node goes back)
    assert _apply(hub_db, BE, batch([record("BE", 2)], after=9, through=12))["cursor"] == 5
    assert _apply(hub_db, BE, batch([record("BE", 3)], after=5, through=7))["cursor"] == 7
    with session_scope(hub_db) as session:
        assert pathogen_hub.state(session, BE) == {"cursor": 7}
        assert pathogen_hub.state(session, FI) == {"cursor": 0}


def test_sequences_are_packed_against_the_reference(hub_db: Engine) -> None:
    _apply(hub_db, BE, batch([record("BE", 1)], sequences=True))
    with session_scope(hub_db) as session:
        row = session.get(HubPathogenRecord, accession("BE", 1))
        assert row is not None and row.sequence is not None
        assert pathogen_hub.unpack(SARS, row.sequence) == genome(0)
        assert len(row.sequence) < 1_000  # ~30 kb of genome


@pytest.mark.parametrize(
    ("pushed", "why"),
    [
        (record("FI", 1), "not a record of node org.genofed.node.be"),
        (
            PathogenRecord.from_json({**record("BE", 1).to_json(), "node": "FI"}),
            "not a record of node",
        ),
        (
            PathogenRecord.from_json(
                {**record("BE", 1).to_json(), "accession": accession("BE", 1)[:-1] + "0"}
                if accession("BE", 1)[-1] != "0"
                else {**record("BE", 1).to_json(), "accession": accession("BE", 1)[:-1] + "1"}
            ),
            "not a record of node",
        ),
    ],
    ids=["other country", "record names another node", "wrong check character"],
)
def test_a_node_pushes_only_its_own_records(
    hub_db: Engine, pushed: PathogenRecord, why: str
) -> None:
    with pytest.raises(ReplicationRefused, match=why) as refused:
        _apply(hub_db, BE, batch([record("BE", 5), pushed]))
    assert refused.value.status == 403
    assert _held(hub_db) == {}  # refused whole


def test_an_accession_held_from_one_node_stays_its_own(hub_db: Engine) -> None:
    """Two nodes claiming one country (an operator's mistake): the first keeps its records."""
    with session_scope(for_writing(hub_db)) as session:
        add_hub_node(session, "org.example.impostor", "BE")
    _apply(hub_db, BE, batch([record("BE", 1)]))
    with pytest.raises(ReplicationRefused, match=r"was replicated by node org\.genofed\.node\.be"):
        _apply(hub_db, "org.example.impostor", batch([record("BE", 1, 2)]))
    with session_scope(hub_db) as session:
        assert session.get(HubNode, "org.example.impostor") is not None
    assert _held(hub_db) == {accession("BE", 1): (1, False)}


def test_malformed_records_are_refused(hub_db: Engine) -> None:
    broken = batch([record("BE", 1)])
    broken.records[0].record.pop("analysis")
    with pytest.raises(ReplicationRefused, match="record 0 of the batch is malformed") as refused:
        _apply(hub_db, BE, broken)
    assert refused.value.status == 422


def test_an_unknown_reference_is_kept_and_said(hub_db: Engine) -> None:
    other = batch([record("BE", 1)]).model_copy(update={"reference": "0" * 64})
    result = _apply(hub_db, BE, other)
    assert "reference is not the hub's" in str(result["unqueryable"])
    assert _held(hub_db) == {accession("BE", 1): (1, False)}


# Any order and any repetition of the same pushes leaves the same rows (the node may resend
# anything at any time).
_CHANGES = st.lists(
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.booleans()), min_size=1, max_size=12
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=_CHANGES, seed=st.integers(0, 2**32 - 1))
def test_merge_is_order_free(
    hub_db: Engine, changes: list[tuple[int, int, bool]], seed: int
) -> None:
    pushes = [
        record("BE", number, version, revoked=revoked) for number, version, revoked in changes
    ]
    expected: dict[str, tuple[int, bool]] = {}
    for item in pushes:
        expected[item.accession] = max(
            expected.get(item.accession, (0, False)), (item.version, item.revoked)
        )
    shuffled = pushes + random.Random(seed).sample(pushes, len(pushes))
    random.Random(seed + 1).shuffle(shuffled)
    with session_scope(for_writing(hub_db)) as session:
        session.execute(HubPathogenRecord.__table__.delete())
    for item in shuffled:
        _apply(hub_db, BE, batch([item]))
    assert _held(hub_db) == expected


def test_restricted_terms_travel(hub_db: Engine) -> None:
    restricted = PathogenRecord.from_json(
        {
            **record("BE", 1).to_json(),
            "data_use_terms": "restricted",
            "restricted_until": "2026-06-01",
        }
    )
    _apply(hub_db, BE, batch([restricted]))
    with session_scope(hub_db) as session:
        row = session.get(HubPathogenRecord, accession("BE", 1))
        assert row is not None
        assert PathogenRecord.from_json(row.record).restricted_until == date(2026, 6, 1)
