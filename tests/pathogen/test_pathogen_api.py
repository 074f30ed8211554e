"""The node's /pathogen routes: roles, batches and their problems, curation, terms-guarded
downloads with acknowledgements, snapshot sets, revisions and host-sample links, over HTTP."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from records_support import quick_analyser, samples
from sqlalchemy import select

from genofed import db
from genofed.access.tokens import issue_token
from genofed.config import Settings, load_settings
from genofed.db import AuditEntry, Grant, MetadataObject, ObjectKind, ObjectStatus
from genofed.metadata.accessions import check_character
from genofed.node.app import create_app
from genofed.node.directory import init_node
from genofed.pathogen.processing import process_pending
from genofed.pathogen.synthetic import SyntheticSample, write_submission

LAB, OTHER_LAB, CURATOR, READER = "lab-be", "lab-nl", "ann-curator", "rita-reader"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    made = init_node(tmp_path / "node", name="Test node", country="BE")
    return load_settings(made.config_file, embedded_workers=False)


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def auth(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings, user, list(roles or ['requester']))}"}


def files(folder: Path, batch: list[SyntheticSample]) -> dict[str, Any]:
    fasta, sheet = write_submission(batch, folder)
    return {
        "sequences": (fasta.name, fasta.read_bytes()),
        "metadata": (sheet.name, sheet.read_bytes()),
    }


def post_batch(
    http: TestClient,
    settings: Settings,
    folder: Path,
    batch: list[SyntheticSample],
    user: str = LAB,
    role: str = "submitter",
    **form: str,
) -> Any:
    return http.post(
        "/pathogen/submissions",
        data={"organism": "sars-cov-2", **form},
        files=files(folder, batch),
        headers=auth(settings, user, role),
    )


def process(http: TestClient) -> int:
    engine = http.app.state.node.engine  # type: ignore[attr-defined]
    return process_pending(engine, analyse=quick_analyser)


def release(
    http: TestClient, settings: Settings, folder: Path, count: int, seed: int = 1, **form: str
) -> list[str]:
    response = post_batch(http, settings, folder, samples(count, seed=seed), **form)
    assert response.status_code == 201, response.text
    process(http)
    names = list(response.json()["accessions"].values())
    for name in names:
        approved = http.post(
            f"/pathogen/records/{name}/approve", headers=auth(settings, CURATOR, "curator")
        )
        assert approved.status_code == 200, approved.text
    return names


def test_organisms_are_listed_and_operators_add_theirs(
    http: TestClient, settings: Settings
) -> None:
    listed = http.get("/pathogen/organisms").json()["organisms"]
    assert [o["name"] for o in listed] == ["sars-cov-2", "flu-h3n2-ha"]
    assert "S" in listed[0]["genes"] and "collection_date" in listed[0]["required"]
    data = resources.files("genofed.pathogen") / "data"
    upload = {
        "reference": ("ha.fasta", (data / "flu-h3n2-ha.fasta").read_bytes()),
        "annotation": ("ha.gff3", (data / "flu-h3n2-ha.gff3").read_bytes()),
    }
    form = {"name": "flu-h3n2-ha-local", "earliest_date": "1968-01-01"}
    refused = http.post(
        "/pathogen/organisms", data=form, files=upload, headers=auth(settings, LAB, "submitter")
    )
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]
    added = http.post(
        "/pathogen/organisms", data=form, files=upload, headers=auth(settings, "op", "operator")
    )
    assert added.status_code == 201, added.text
    again = http.post(
        "/pathogen/organisms", data=form, files=upload, headers=auth(settings, "op", "operator")
    )
    assert again.status_code == 409
    broken = {**upload, "annotation": ("bad.gff3", b"not\ta\tgff3\n")}
    bad = http.post(
        "/pathogen/organisms",
        data={**form, "name": "broken"},
        files=broken,
        headers=auth(settings, "op", "operator"),
    )
    assert bad.status_code == 400 and "GFF3 has 9" in bad.json()["detail"]
    names = [o["name"] for o in http.get("/pathogen/organisms").json()["organisms"]]
    assert names == ["sars-cov-2", "flu-h3n2-ha", "flu-h3n2-ha-local"]


def test_a_batch_is_stored_processed_and_followed(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    response = post_batch(http, settings, tmp_path, samples(3))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["problems"] == [] and len(body["accessions"]) == 3
    status = http.get(
        f"/pathogen/submissions/{body['submission_id']}", headers=auth(settings, LAB, "submitter")
    )
    assert status.json()["counts"] == {"received": 3}
    hidden = http.get(
        f"/pathogen/submissions/{body['submission_id']}",
        headers=auth(settings, OTHER_LAB, "submitter"),
    )
    assert hidden.status_code == 404
    assert process(http) == 3
    status = http.get(
        f"/pathogen/submissions/{body['submission_id']}", headers=auth(settings, LAB, "submitter")
    )
    assert status.json()["counts"] == {"processed:ok": 3}


def test_bad_batches_are_refused_precisely(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    batch = samples(2)
    batch[1].metadata["location"] = "Belgium"
    refused = post_batch(http, settings, tmp_path / "a", batch)
    assert refused.status_code == 422
    body = refused.json()
    assert "nothing was stored" in body["detail"] and body["accessions"] == {}
    [problem] = body["problems"]
    assert (problem["line"], problem["record"], problem["field"]) == (
        3,
        batch[1].sequence_id,
        "location",
    )
    taken = post_batch(http, settings, tmp_path / "b", batch, accept_valid="true")
    assert taken.status_code == 201 and list(taken.json()["accessions"]) == [batch[0].sequence_id]
    duplicate = post_batch(http, settings, tmp_path / "c", batch[:1])
    assert duplicate.status_code == 422 and "earlier" in duplicate.json()["problems"][0]["problem"]

    junk = http.post(
        "/pathogen/submissions",
        data={"organism": "sars-cov-2"},
        files={"sequences": ("s.fasta", b"\x00\x01 not fasta"), "metadata": ("m.tsv", b"")},
        headers=auth(settings, LAB, "submitter"),
    )
    assert junk.status_code == 422 and junk.json()["problems"]
    unknown = post_batch(http, settings, tmp_path / "d", samples(1, seed=5), organism="sars-cov-3")
    assert unknown.status_code == 404 and "sars-cov-2" in unknown.json()["detail"]
    far = (date.today() + timedelta(days=400)).isoformat()
    too_far = post_batch(
        http,
        settings,
        tmp_path / "e",
        samples(1, seed=5),
        data_use_terms="restricted",
        restricted_until=far,
    )
    assert too_far.status_code == 400 and "more than a year" in too_far.json()["detail"]
    past = post_batch(
        http,
        settings,
        tmp_path / "f",
        samples(1, seed=5),
        data_use_terms="restricted",
        restricted_until="2020-01-01",
    )
    assert past.status_code == 400 and "not after today" in past.json()["detail"]
    reader = post_batch(
        http, settings, tmp_path / "g", samples(1, seed=5), user=READER, role="requester"
    )
    assert reader.status_code == 403
    nobody = http.post(
        "/pathogen/submissions",
        data={"organism": "sars-cov-2"},
        files=files(tmp_path / "h", samples(1, seed=5)),
    )
    assert nobody.status_code == 401
    assert process(http) == 1  # only the valid part of the second batch was ever stored


def test_curation_needs_curators_and_holds_back_errors(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    batch = samples(2)
    batch[1] = SyntheticSample(batch[1].sequence_id, "B.1", "ACGT" * 10, batch[1].metadata)
    names = list(post_batch(http, settings, tmp_path, batch).json()["accessions"].values())
    process(http)
    curator = auth(settings, CURATOR, "curator")
    assert (
        http.get("/pathogen/curation", headers=auth(settings, LAB, "submitter")).status_code == 403
    )
    queue = http.get("/pathogen/curation", headers=curator).json()["entries"]
    assert [(e["accession_version"], e["outcome"]) for e in queue] == [
        (names[0], "ok"),
        (names[1], "errors"),
    ]
    assert (
        queue[0]["analysis"]["aa_substitutions"] == ["S:D614G"]
        and queue[0]["qc"]["status"] == "good"
    )
    assert (
        http.get(f"/pathogen/records/{names[0]}", headers=auth(settings, READER)).status_code == 404
    )
    lab_refused = http.post(
        f"/pathogen/records/{names[0]}/approve", headers=auth(settings, LAB, "submitter")
    )
    assert lab_refused.status_code == 403
    erroneous = http.post(f"/pathogen/records/{names[1]}/approve", headers=curator)
    assert erroneous.status_code == 409 and "cannot be approved" in erroneous.json()["detail"]
    rejected = http.post(
        f"/pathogen/records/{names[1]}/reject", json={"reason": "no alignment"}, headers=curator
    )
    assert rejected.json()["state"] == "rejected"
    approved = http.post(f"/pathogen/records/{names[0]}/approve", headers=curator)
    assert approved.json()["state"] == "released"
    public = http.get(f"/pathogen/records/{names[0]}", headers=auth(settings, READER)).json()
    assert public["state"] == "released" and public["virus_name"] == batch[0].metadata["virus_name"]
    assert not {"history", "submitter", "sequence_id"} & set(public)
    own = http.get(f"/pathogen/records/{names[0]}", headers=auth(settings, LAB, "submitter")).json()
    assert [h["state"] for h in own["history"]][-2:] == ["approved", "released"]
    bad = http.get("/pathogen/records/GFBEV0000000000", headers=auth(settings, READER))
    assert bad.status_code == 400


def test_downloads_need_terms_and_carry_acknowledgements(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    names = release(http, settings, tmp_path / "open", 2)
    until = (date.today() + timedelta(days=60)).isoformat()
    restricted = release(
        http,
        settings,
        tmp_path / "restricted",
        1,
        seed=2,
        data_use_terms="restricted",
        restricted_until=until,
    )
    reader = auth(settings, READER)
    anonymous = http.post("/pathogen/download", json={"accessions": names})
    assert anonymous.status_code == 401
    refused = http.post("/pathogen/download", json={"accessions": names}, headers=reader)
    assert refused.status_code == 403 and "terms" in refused.json()["detail"]
    assert http.get("/pathogen/terms").json()["terms"]["open"]
    assert http.post("/pathogen/terms/accept", json={"terms": "open"}, headers=reader).json()[
        "accepted"
    ] == ["open"]
    response = http.post("/pathogen/download", json={"accessions": names}, headers=reader)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    fasta = archive.read("sequences.fasta").decode()
    assert [line[1:] for line in fasta.splitlines() if line.startswith(">")] == names
    assert fasta.splitlines()[1] == samples(2)[0].sequence
    table = archive.read("acknowledgements.tsv").decode().splitlines()
    assert table[0].startswith("accession_version\tvirus_name\toriginating_lab")
    assert [row.split("\t")[0] for row in table[1:]] == names
    held = http.post("/pathogen/download", json={"accessions": names + restricted}, headers=reader)
    assert held.status_code == 403 and "restricted" in held.json()["detail"]
    http.post("/pathogen/terms/accept", json={"terms": "restricted"}, headers=reader)
    plain = http.post(
        "/pathogen/download", json={"accessions": restricted, "format": "fasta"}, headers=reader
    )
    assert plain.status_code == 200 and plain.text.startswith(f">{restricted[0]}\n")
    with db.session_scope(http.app.state.node.engine) as session:  # type: ignore[attr-defined]
        audited = session.execute(
            select(AuditEntry.outcome, AuditEntry.detail).where(
                AuditEntry.action == "pathogen.download"
            )
        ).all()
    assert [(row.outcome, row.detail["count"]) for row in audited] == [
        ("denied", 2),
        ("allowed", 2),
        ("denied", 3),
        ("allowed", 1),
    ]
    acks = http.get(
        "/pathogen/acknowledgements", params={"accessions": ",".join(names), "format": "json"}
    )
    assert [a["accession_version"] for a in acks.json()["acknowledgements"]] == names


def test_snapshot_sets_over_http(http: TestClient, settings: Settings, tmp_path: Path) -> None:
    names = release(http, settings, tmp_path, 2)
    created = http.post(
        "/pathogen/snapshots",
        json={"title": "Our paper", "accessions": names},
        headers=auth(settings, READER),
    )
    assert created.status_code == 201
    identifier = created.json()["identifier"]
    shown = http.get(f"/pathogen/snapshots/{identifier}").json()
    assert shown["members"] == sorted(names) and shown["size"] == 2
    tsv = http.get(f"/pathogen/snapshots/{identifier}", params={"format": "tsv"})
    assert tsv.headers["content-type"].startswith("text/tab-separated-values")
    assert len(tsv.text.splitlines()) == 3
    missing = http.post(
        "/pathogen/snapshots",
        json={"title": "t", "accessions": [names[0].replace(".1", ".2")]},
        headers=auth(settings, READER),
    )
    assert missing.status_code == 404


def test_revise_and_revoke_over_http(http: TestClient, settings: Settings, tmp_path: Path) -> None:
    [name] = release(http, settings, tmp_path / "v1", 1)
    accession = name.split(".")[0]
    fixed = samples(1)
    fixed[0].metadata["host"] = "Homo sapiens"
    revised = http.post(
        f"/pathogen/records/{accession}/revise",
        files=files(tmp_path / "v2", fixed),
        headers=auth(settings, LAB, "submitter"),
    )
    assert revised.status_code == 201, revised.text
    assert list(revised.json()["accessions"].values()) == [f"{accession}.2"]
    process(http)
    http.post(f"/pathogen/records/{accession}/approve", headers=auth(settings, CURATOR, "curator"))
    latest = http.get(f"/pathogen/records/{accession}", headers=auth(settings, READER)).json()
    assert (latest["version"], latest["metadata"]["host"]) == (2, "Homo sapiens")
    other = http.post(
        f"/pathogen/records/{accession}/revoke",
        json={"reason": "x"},
        headers=auth(settings, OTHER_LAB, "submitter"),
    )
    assert other.status_code == 403
    revoked = http.post(
        f"/pathogen/records/{accession}/revoke",
        json={"reason": "wrong sample"},
        headers=auth(settings, LAB, "submitter"),
    )
    assert revoked.json()["state"] == "revoked"
    again = http.post(
        f"/pathogen/records/{accession}/revoke",
        json={"reason": "again"},
        headers=auth(settings, CURATOR, "curator"),
    )
    assert again.status_code == 409


def test_the_host_link_is_shown_only_to_approved_users(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    [name] = release(http, settings, tmp_path, 1)
    engine = http.app.state.node.engine  # type: ignore[attr-defined]
    with db.session_scope(engine) as session:
        accessions = {}
        for kind, body in (
            (ObjectKind.SAMPLE, "GFBEN00000000009"),
            (ObjectKind.DATASET, "GFBED00000000009"),
        ):
            accessions[kind] = body + check_character(body)
            session.add(
                MetadataObject(
                    kind=kind,
                    accession=accessions[kind],
                    alias=kind.value,
                    submitter="h",
                    status=ObjectStatus.RELEASED,
                )
            )
        session.flush()
        sample_id, dataset_id = (
            session.scalar(
                select(MetadataObject.id).where(MetadataObject.accession == accessions[k])
            )
            for k in (ObjectKind.SAMPLE, ObjectKind.DATASET)
        )
        session.add(db.MetadataLink(source_id=dataset_id, target_id=sample_id, relation="samples"))
        session.add(
            Grant(
                subject="approved",
                dataset_accession=accessions[ObjectKind.DATASET],
                granted_by="dac",
                expires_at=datetime.now(UTC) + timedelta(days=10),
            )
        )
    link = {"sample": accessions[ObjectKind.SAMPLE], "dataset": accessions[ObjectKind.DATASET]}
    refused = http.post(
        f"/pathogen/records/{name}/host-link", json=link, headers=auth(settings, READER)
    )
    assert refused.status_code == 403
    linked = http.post(
        f"/pathogen/records/{name}/host-link", json=link, headers=auth(settings, LAB, "submitter")
    )
    assert linked.status_code == 200, linked.text
    seen = http.get(f"/pathogen/records/{name}", headers=auth(settings, "approved")).json()
    assert (seen["host_sample"], seen["host_dataset"]) == (link["sample"], link["dataset"])
    unseen = http.get(f"/pathogen/records/{name}", headers=auth(settings, READER)).json()
    assert "host_sample" not in unseen and "host_dataset" not in unseen


def test_lapis_on_the_node_follows_releases_and_revocations(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    batch = samples(4, seed=3)
    response = post_batch(http, settings, tmp_path, batch)
    names = list(response.json()["accessions"].values())
    engine = http.app.state.node.engine  # type: ignore[attr-defined]
    assert process_pending(engine, workers=1) == 4  # the real aligner
    curator = auth(settings, CURATOR, "curator")
    for name in names:
        assert http.post(f"/pathogen/records/{name}/approve", headers=curator).status_code == 200
    lapis = "/pathogen/lapis/sars-cov-2"
    everything = http.get(f"{lapis}/sample/aggregated")
    assert everything.json()["data"] == [{"count": 4}]
    assert int(everything.headers["Lapis-Data-Version"]) > 0
    ancestral = http.get(f"{lapis}/sample/aggregated", params={"nucleotideMutations": "C241T"})
    assert ancestral.json()["data"] == [{"count": 4}]  # every synthetic lineage carries it
    http.post(f"/pathogen/records/{names[0]}/revoke", json={"reason": "swap"}, headers=curator)
    assert http.get(f"{lapis}/sample/aggregated").json()["data"] == [{"count": 3}]
    assert http.get("/pathogen/lapis/sars-cov-9/sample/aggregated").status_code == 404

    fasta = f"{lapis}/sample/unalignedNucleotideSequences"
    assert http.get(fasta).status_code == 401
    assert http.get(fasta, headers=auth(settings, READER)).status_code == 403
    http.post("/pathogen/terms/accept", json={"terms": "open"}, headers=auth(settings, READER))
    unaligned = http.get(fasta, headers=auth(settings, READER))
    assert unaligned.status_code == 200
    by_name = dict(
        zip(unaligned.text.splitlines()[::2], unaligned.text.splitlines()[1::2], strict=True)
    )
    assert by_name == {f">{n}": s.sequence for n, s in zip(names[1:], batch[1:], strict=True)}
    aligned = http.get(f"{lapis}/sample/alignedNucleotideSequences", headers=auth(settings, READER))
    assert {len(line) for line in aligned.text.splitlines()[1::2]} == {29903}


def test_the_real_aligner_finds_the_lineages_mutations(
    http: TestClient, settings: Settings, tmp_path: Path
) -> None:
    batch = samples(40, seed=4)
    post_batch(http, settings, tmp_path, batch)
    engine = http.app.state.node.engine  # type: ignore[attr-defined]
    assert process_pending(engine, workers=1) == 40
    queue = http.get("/pathogen/curation", headers=auth(settings, CURATOR, "curator")).json()
    by_virus = {e["virus_name"]: e for e in queue["entries"]}
    spike = {"20I": "S:N501Y", "20H": "S:E484K", "20A": "S:D614G"}
    checked = 0
    for sample in batch:
        entry = by_virus[sample.metadata["virus_name"]]
        assert entry["outcome"] in ("ok", "warnings"), entry["qc"]
        assert "C241T" in entry["analysis"]["substitutions"]
        assert entry["analysis"]["clade"] == sample.lineage  # lineages are shipped clades
        if sample.lineage in spike:
            assert spike[sample.lineage] in entry["analysis"]["aa_substitutions"]
            checked += 1
    assert checked


def test_the_node_processes_what_it_receives(tmp_path: Path) -> None:
    made = init_node(tmp_path / "node", name="Test node", country="BE")
    settings = load_settings(made.config_file, embedded_workers=True)
    with TestClient(create_app(settings)) as client:
        response = post_batch(client, settings, tmp_path / "batch", samples(3, seed=6))
        batch = response.json()["submission_id"]
        headers = auth(settings, LAB, "submitter")

        def counts() -> dict[str, int]:
            found: dict[str, int] = client.get(
                f"/pathogen/submissions/{batch}", headers=headers
            ).json()["counts"]
            return found

        for _ in range(1200):  # polled while the node's processing thread works
            if counts() == {"processed:ok": 3}:
                break
            time.sleep(0.05)
        assert counts() == {"processed:ok": 3}
