"""Pathogen records replicated from nodes to the hub: the hub's merge rules, the node's pushes
from the hub's cursor, refusals, and queries over the whole federation at the hub."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from federation_support import (
    add_hub_node,
    hub_server,
    join_request,
    make_hub,
    make_node,
    node_server,
    wait_for,
    with_hub,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from genofed.access.tokens import issue_token
from genofed.config import Settings
from genofed.db import for_writing, make_engine, session_scope
from genofed.db.models import AuditEntry, HubNode, HubPathogenCursor, HubPathogenRecord
from genofed.federation import pathogen_hub, pathogen_replication, registry
from genofed.federation.hub import approve_node
from genofed.federation.node_sync import hub_client
from genofed.federation.pathogen_hub import Replicated, Replication, ReplicationRefused
from genofed.federation.signing import SignedAuth, public_key_text
from genofed.metadata.accessions import check_character
from genofed.pathogen import acknowledgements, curation
from genofed.pathogen.analysis import GOOD, Analysis, Qc
from genofed.pathogen.entries import by_accession_version
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.processing import process_pending
from genofed.pathogen.record import OPEN, RESTRICTED, PathogenRecord
from genofed.pathogen.store import PathogenStore, SampleFilter
from genofed.pathogen.submissions import revise, submit_batch
from genofed.pathogen.synthetic import outbreak, write_submission
from genofed.pathogen.terms import Terms
from genofed.pathogen.variant_query import parse_variant_query

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


def test_an_unknown_reference_or_organism_is_kept_and_said(hub_db: Engine) -> None:
    other = batch([record("BE", 1)]).model_copy(update={"reference": "0" * 64})
    result = _apply(hub_db, BE, other)
    assert "reference is not the hub's" in str(result["unqueryable"])
    data = record("BE", 2).to_json()
    data["organism"] = data["analysis"]["organism"] = "mpox"
    mpox = Replication(
        organism="mpox", reference="1" * 64, after=1, through=2, records=[Replicated(record=data)]
    )
    result = _apply(hub_db, BE, mpox)
    assert "does not know the organism 'mpox'" in str(result["unqueryable"])
    assert result["cursor"] == 2  # kept: the node goes on with its other records
    assert _held(hub_db) == {accession("BE", 1): (1, False), accession("BE", 2): (1, False)}
    records = pathogen_hub.FederationRecords(hub_db)
    assert records.refresh() == 2
    assert records.store("mpox") is None
    store = records.store("sars-cov-2")
    assert store is not None and len(store) == 0  # a reference other than the hub's


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


# -- two nodes and a hub on loopback ------------------------------------------------------------


def _release_outbreak(
    settings: Settings, count: int, seed: int = 1, terms: Terms = Terms()
) -> list[str]:
    """A synthetic outbreak submitted, processed and released on the node; its accessions."""
    engine = make_engine(settings.database_url)
    try:
        samples = outbreak(SARS, settings.country, count, seed=seed)
        fasta, sheet = write_submission(samples, settings.home / f"batch-{seed}")
        with session_scope(for_writing(engine)) as session:
            outcome = submit_batch(
                session,
                country=settings.country,
                submitter="lab",
                organism=SARS,
                fasta=fasta,
                sheet=sheet,
                terms=terms,
            )
        assert outcome.stored, outcome.problems
        process_pending(engine, workers=1)
        accessions = [name.split(".")[0] for name in outcome.accessions.values()]
        with session_scope(for_writing(engine)) as session:
            for name in accessions:
                curation.approve(session, name, "curator")
        return accessions
    finally:
        engine.dispose()


def _hub_rows(hub_settings: Settings) -> dict[str, tuple[int, bool]]:
    engine = make_engine(hub_settings.database_url)
    try:
        return _held(engine)
    finally:
        engine.dispose()


LAPIS = "/pathogen/lapis/sars-cov-2"


def _lapis(hub_url: str, endpoint: str, **params: object) -> list[dict[str, object]]:
    response = httpx.get(f"{hub_url}{LAPIS}/sample/{endpoint}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Lapis-Data-Version"]
    data: list[dict[str, object]] = response.json()["data"]
    return data


def _count(url: str, **params: object) -> int:
    """The aggregated count a node or the hub answers."""
    [row] = _lapis(url, "aggregated", **params)
    return int(str(row["count"]))


def _revise(settings: Settings, name: str, seed: int) -> None:
    """The submitter sends a corrected record; it is processed and released as version 2."""
    engine = make_engine(settings.database_url)
    try:
        [sample] = outbreak(SARS, settings.country, 1, seed=seed)
        fasta, sheet = write_submission([sample], settings.home / f"revision-{seed}")
        with session_scope(for_writing(engine)) as session:
            outcome = revise(
                session,
                accession=name,
                submitter="lab",
                organism=SARS,
                fasta=fasta,
                sheet=sheet,
                today=date(2025, 6, 1),
            )
        assert outcome.stored, outcome.problems
        process_pending(engine, workers=1)
        with session_scope(for_writing(engine)) as session:
            curation.approve(session, name, "curator")
    finally:
        engine.dispose()


def _revoke(settings: Settings, name: str) -> None:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(for_writing(engine)) as session:
            curation.revoke(session, name, "curator", "contaminated sample", curator=True)
    finally:
        engine.dispose()


def test_two_nodes_replicate_and_the_hub_answers_for_both(tmp_path: Path) -> None:
    hub_settings = make_hub(tmp_path / "hub")
    be, fi = make_node(tmp_path / "be", "BE"), make_node(tmp_path / "fi", "FI")
    be_records, fi_records = _release_outbreak(be, 6), _release_outbreak(fi, 4)
    with (
        hub_server(hub_settings) as (hub_url, hub_served),
        node_server(with_hub(be, hub_url)) as (be_url, be_served),
        node_server(with_hub(fi, hub_url)) as (fi_url, fi_served),
    ):
        for country in ("BE", "FI"):
            wait_for(lambda c=country: _registered(hub_served, c), what=f"{country} joining")
            approve_node(hub_served, country, "operator")
        wait_for(lambda: len(_hub_rows(hub_served)) == 10, what="the replication")
        wait_for(lambda: _count(hub_url) == 10, what="the hub's store")
        wait_for(lambda: _count(be_url) + _count(fi_url) == 10, what="the nodes' stores")

        # the hub answers what the two nodes answer together
        counts = {}
        variants = (
            None,
            "C241T",
            "A23063T",
            "A23063T & !C22995A",
            "[2-of: A23063T, C22995A, S:E484K]",
        )
        for variant in variants:
            params = {"variantQuery": variant} if variant else {}
            counts[variant] = _count(hub_url, **params)
            assert counts[variant] == _count(be_url, **params) + _count(fi_url, **params)
        assert (
            0 < counts["A23063T & !C22995A"] < counts["A23063T"] < counts[None]
        )  # they tell apart
        by_country = {
            row["country"]: row["count"] for row in _lapis(hub_url, "aggregated", fields="country")
        }
        assert by_country == {"Belgium": 6, "Finland": 4}
        assert {row["node"] for row in _lapis(hub_url, "details", fields="node")} == {"BE", "FI"}

        # a new version replaces the old one; a revocation is kept, flagged, out of queries
        _revise(be_served, be_records[0], seed=7)
        _revoke(fi_served, fi_records[0])
        wait_for(
            lambda: (
                _hub_rows(hub_served)[be_records[0]] == (2, False)
                and _hub_rows(hub_served)[fi_records[0]] == (1, True)
            ),
            what="the new version and the revocation",
        )
        # the hub's store catches up a moment after its rows (and may read the two apart)
        wait_for(
            lambda: (
                _count(hub_url) == 9 and _count(hub_url, accessionVersion=f"{be_records[0]}.2") == 1
            ),
            what="the revocation and the new version in queries",
        )
        assert _count(hub_url, includeRevoked="true") == 10
        assert _count(hub_url, accessionVersion=f"{be_records[0]}.1") == 0
        wait_for(lambda: _count(fi_url) == 3, what="the node's own store")
        assert _count(hub_url, node="FI") == 3

        # a node resending everything (its whole history) changes nothing at the hub
        before = _hub_rows(hub_served)
        engine = make_engine(be_served.database_url)
        with hub_client(with_hub(be_served, hub_url)) as client:
            again = pathogen_replication.replicate(engine, client, {"cursor": 0})
        engine.dispose()
        assert again.records == 7  # six releases and the revision
        assert _hub_rows(hub_served) == before
        assert _count(hub_url) == 9

        # a hub that lost the node's records (restored from an old backup) gets them again
        hub_engine = make_engine(hub_served.database_url)
        with session_scope(for_writing(hub_engine)) as session:
            session.execute(delete(HubPathogenRecord).where(HubPathogenRecord.node_id == BE))
            session.execute(delete(HubPathogenCursor).where(HubPathogenCursor.node_id == BE))
        hub_engine.dispose()
        wait_for(lambda: _hub_rows(hub_served) == before, what="the records sent again")


def _registered(hub_settings: Settings, country: str) -> bool:
    engine = make_engine(hub_settings.database_url)
    try:
        with session_scope(engine) as session:
            return session.scalar(select(HubNode).where(HubNode.country == country)) is not None
    finally:
        engine.dispose()


Keys = dict[str, Ed25519PrivateKey]

# -- refusals over HTTP -------------------------------------------------------------------------


@pytest.fixture
def hub_with_members(
    tmp_path: Path,
) -> Iterator[tuple[str, Settings, dict[str, Ed25519PrivateKey]]]:
    """A served hub with BE and FI approved and XX pending, each with a key the test holds."""
    keys = {node: Ed25519PrivateKey.generate() for node in (BE, FI, "org.genofed.node.xx")}
    with hub_server(make_hub(tmp_path / "hub")) as (hub_url, served):
        engine = make_engine(served.database_url)
        with session_scope(for_writing(engine)) as session:
            for node_id, key in keys.items():
                country = node_id[-2:].upper()
                registry.join(session, join_request(node_id, country, public_key_text(key)))
                if country != "XX":
                    registry.approve(session, node_id, "operator")
        engine.dispose()
        yield hub_url, served, keys


def _push(hub_url: str, key: Ed25519PrivateKey, keyid: str, pushed: Replication) -> httpx.Response:
    with httpx.Client(auth=SignedAuth(key, keyid), timeout=30) as client:
        return client.post(
            f"{hub_url}{pathogen_hub.REPLICATE_PATH}",
            content=pushed.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )


def _refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["X-Refusal-Reason"] == code
    detail: str = response.json()["detail"]
    return detail


def test_forged_unsigned_and_foreign_pushes_are_refused(
    hub_with_members: tuple[str, Settings, Keys],
) -> None:
    hub_url, served, keys = hub_with_members
    belgian = batch([record("BE", 1), record("BE", 2)], sequences=True)
    body = belgian.model_dump_json()

    unsigned = httpx.post(f"{hub_url}{pathogen_hub.REPLICATE_PATH}", content=body)
    _refused(unsigned, 401, "unsigned")
    forged = _push(hub_url, Ed25519PrivateKey.generate(), BE, belgian)  # BE's name, not its key
    _refused(forged, 401, "bad_signature")
    foreign = _push(hub_url, keys[FI], FI, belgian)  # FI's own key, BE's records
    assert "is not a record of node org.genofed.node.fi" in _refused(foreign, 403, "forbidden")
    pending = _push(hub_url, keys["org.genofed.node.xx"], "org.genofed.node.xx", belgian)
    assert "approves it first" in _refused(pending, 403, "forbidden")
    assert _hub_rows(served) == {}

    with httpx.Client(timeout=30) as plain:  # the same signed call twice: the second is refused
        request = plain.build_request(
            "POST",
            f"{hub_url}{pathogen_hub.REPLICATE_PATH}",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        signed = next(SignedAuth(keys[BE], BE).auth_flow(request))
        accepted = plain.send(signed)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["applied"]["created"] == 2
        _refused(plain.send(signed), 401, "replay")
    # sent again, freshly signed (a node resending): accepted, nothing changes
    again = _push(hub_url, keys[BE], BE, belgian)
    assert again.json()["applied"] == {**accepted.json()["applied"], "created": 0, "unchanged": 2}
    assert _hub_rows(served) == {accession("BE", 1): (1, False), accession("BE", 2): (1, False)}

    engine = make_engine(served.database_url)
    with session_scope(engine) as session:
        audited = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.outcome).order_by(AuditEntry.seq)
        ).all()
    engine.dispose()
    assert (FI, "federation.refused.forbidden", "denied") in audited
    assert [row for row in audited if row[1] == "pathogen.replicate"] == [
        (BE, "pathogen.replicate", "allowed"),
        (BE, "pathogen.replicate", "allowed"),
    ]


# -- downloads at the hub -----------------------------------------------------------------------


def test_members_download_sequences_after_accepting_the_terms(tmp_path: Path) -> None:
    hub_settings = make_hub(tmp_path / "hub")
    be = make_node(tmp_path / "be", "BE")
    released = _release_outbreak(be, 3)
    until = date.today() + timedelta(days=100)
    [restricted] = _release_outbreak(be, 1, seed=2, terms=Terms(RESTRICTED, until))
    with (
        hub_server(hub_settings) as (hub_url, hub_served),
        node_server(with_hub(be, hub_url)) as (_, be_served),
    ):
        wait_for(lambda: _registered(hub_served, "BE"), what="the join")
        approve_node(hub_served, "BE", "operator")
        wait_for(lambda: _count(hub_url) == 4, what="the replication")
        assert _count(hub_url, dataUseTerms="restricted") == 1
        name = f"{released[0]}.1"
        fasta = f"{hub_url}{LAPIS}/sample/unalignedNucleotideSequences"
        token = issue_token(be_served, "alice", ["requester"])
        bearer = {"Authorization": f"Bearer {token}"}

        assert httpx.get(fasta, params={"accessionVersion": name}).status_code == 401
        stranger = httpx.get(
            fasta, params={"accessionVersion": name}, headers={"Authorization": "Bearer x.y.z"}
        )
        assert stranger.status_code == 401
        refused = httpx.get(fasta, params={"accessionVersion": name}, headers=bearer)
        assert refused.status_code == 403 and "has not accepted" in refused.text
        accepted = httpx.post(f"{hub_url}/pathogen/terms/accept", headers=bearer, json={})
        assert accepted.json() == {"subject": f"alice@{BE}", "accepted": ["open"]}

        got = httpx.get(fasta, params={"accessionVersion": name}, headers=bearer, timeout=30)
        assert got.status_code == 200, got.text
        engine = make_engine(be_served.database_url)
        with session_scope(engine) as session:  # what the node itself gives
            [(_, expected)] = list(curation.sequences(session, [name]))
            credit = acknowledgements.table(by_accession_version(session, [name]))
        engine.dispose()
        assert got.text == f">{name}\n{expected}\n"

        # restricted records need the restricted-use terms accepted too
        everything = httpx.get(fasta, headers=bearer, timeout=30)
        assert everything.status_code == 403 and "restricted use" in everything.text
        only_open = httpx.get(fasta, params={"dataUseTerms": "open"}, headers=bearer, timeout=30)
        assert only_open.text.count(">") == 3
        posted = httpx.post(fasta, json={"dataUseTerms": "open"}, headers=bearer, timeout=30)
        assert posted.text == only_open.text
        httpx.post(f"{hub_url}/pathogen/terms/accept", headers=bearer, json={"terms": "restricted"})
        everything = httpx.get(fasta, headers=bearer, timeout=30)
        assert everything.status_code == 200 and f">{restricted}.1" in everything.text

        organisms = httpx.get(f"{hub_url}/pathogen/organisms").json()["organisms"]
        assert {o["name"]: o["records"] for o in organisms} == {"sars-cov-2": 4, "flu-h3n2-ha": 0}
        unknown = httpx.get(f"{hub_url}/pathogen/lapis/ebola/sample/aggregated")
        assert unknown.status_code == 404 and "choose one of sars-cov-2" in unknown.text

        thanks = httpx.get(
            f"{hub_url}/pathogen/acknowledgements",
            params={"accessions": name, "format": "json"},
        ).json()["acknowledgements"]
        assert thanks == credit

        # a citable set of records (any node's), then one of them revoked
        wanted = {"title": "Spike changes in Belgium", "accessions": [name, restricted]}
        snapshots = f"{hub_url}/pathogen/snapshots"
        assert httpx.post(snapshots, json=wanted).status_code == 401
        unknown = {**wanted, "accessions": [name, accession("BE", 999)]}
        assert httpx.post(snapshots, json=unknown, headers=bearer).status_code == 404
        made = httpx.post(snapshots, json=wanted, headers=bearer)
        assert made.status_code == 201, made.text
        cited = made.json()
        assert cited["identifier"].startswith("GFXFE")
        assert cited["members"] == sorted([name, f"{restricted}.1"])
        assert cited["created_by"] == f"alice@{BE}"
        assert [row["accession_version"] for row in cited["acknowledgements"]] == cited["members"]
        _revoke(be_served, released[0])
        shown = f"{snapshots}/{cited['identifier']}"
        wait_for(lambda: httpx.get(shown).json()["revoked_since"] == [name], what="the revocation")
        assert httpx.get(shown).json()["members"] == cited["members"]  # frozen
        unheard = "GFXFE00000000999" + check_character("GFXFE00000000999")
        assert httpx.get(f"{snapshots}/{unheard}").status_code == 404
        assert httpx.get(f"{snapshots}/{cited['identifier'][:-1]}0").status_code == 400


def test_a_hub_ahead_of_the_node_is_said(tmp_path: Path) -> None:
    """A node whose database was replaced under the same identity: the hub's cursor is past
    anything the node has, so nothing new would ever be sent; the node says so instead."""
    node = make_node(tmp_path / "be", "BE")
    _release_outbreak(node, 1)
    engine = make_engine(node.database_url)
    unused = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    try:
        with pytest.raises(pathogen_replication.ReplicationError, match="database replaced"):
            pathogen_replication.replicate(engine, unused, {"cursor": 99})
        assert pathogen_replication.replicate(engine, unused, None).records == 0
    finally:
        engine.dispose()


def test_the_query_stores_follow_the_rows(hub_db: Engine) -> None:
    """New rows are read incrementally; a node removed (its rows with it) rebuilds the stores."""
    records = pathogen_hub.FederationRecords(hub_db)
    _apply(hub_db, BE, batch([record("BE", n) for n in (1, 2, 3)]))
    _apply(hub_db, FI, batch([record("FI", 1, substitutions=("A23403G",))]))
    assert records.refresh() == 4
    store = records.store("sars-cov-2")
    assert store is not None and len(store) == 4
    _apply(hub_db, BE, batch([record("BE", 2, revoked=True), record("BE", 4)], after=3, through=5))
    assert records.refresh() == 2  # only what changed
    assert len(store) == 4  # one revoked, one new
    assert _count_in(store, "A23403G") == 1
    with session_scope(for_writing(hub_db)) as session:
        registry.remove(session, FI)
    assert records.refresh() == 4  # everything left, read again
    rebuilt = records.store("sars-cov-2")
    assert rebuilt is not None and len(rebuilt) == 3
    assert _count_in(rebuilt, "A23403G") == 0


def _count_in(store: PathogenStore, variant: str) -> int:
    [row] = store.aggregated(SampleFilter(variant=parse_variant_query(variant))).data
    return int(row["count"])
