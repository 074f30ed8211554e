"""A federation on loopback for the beacon network, statistics and access routing tests: a hub
and three nodes (BE, NL, FI) served in threads, joined, approved and trusting each other, each
with the metadata tests' 20-person cohort released and a small VCF of its own indexed, and
helpers for extra members (a slow one, a failing one, one that stops).

Each node's VCF has the same sites with carriers of its own, by sample number 1..20 (EPI-01..),
so that sums across the federation are visible. The cohort's sexes cycle female, male, female,
unknown (so 1, 3, 5, ... are female; 2, 6, 10, ... male; 4, 8, ... unknown), one population.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from federation_support import join_request as registry_join_request
from federation_support import (
    make_node,
    node_server,
    published,
    summary,
    wait_for,
    with_hub,
)
from sqlalchemy import select

from genofed import db
from genofed.access import requests as access_service
from genofed.access.tokens import issue_token
from genofed.beacon.index import load_variants
from genofed.config import Settings, load_settings
from genofed.db.models import HubNode
from genofed.federation import catalogue, registry
from genofed.federation.hub import approve_node, init_hub, remove_node
from genofed.federation.hub_app import create_hub_app
from genofed.federation.node_sync import node_id
from genofed.metadata import service
from genofed.metadata.accessions import allocate
from genofed.node.server import free_socket, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "beacon"))  # api_support
from api_support import BeaconSchemas, set_security
from api_support import grant as add_grant

__all__ = ["BeaconSchemas"]  # the Beacon v2 schemas, offline, for the tests of this folder

TIMEOUT = 2.0  # the test hub's per-node timeout, seconds
MARGIN = 1.5  # what a loaded 2-core machine may add to it
SAMPLES = 20
# chr1:1001 A>G, as a Beacon query (0-based start) and as /stats/allele_frequency takes it
VARIANT = {
    "assemblyId": "GRCh38",
    "referenceName": "1",
    "start": 1000,
    "referenceBases": "A",
    "alternateBases": "G",
}
# chrom, 1-based pos, ref, alt, {country: (carriers, homozygous)}
SITES: list[tuple[str, int, str, str, dict[str, tuple[set[int], set[int]]]]] = [
    ("chr1", 1001, "A", "G", {
        "BE": (set(range(1, 13)), set(range(1, 7))),  # 12 carriers, 6 homozygous
        "NL": (set(range(1, 9)), set()),  # 8 carriers
        "FI": ({1, 2, 3}, set()),  # 3: below every threshold
    }),
    # female 1,3,5,7,9; male 2,6,10,14,18; unknown 4: one small cell among large ones
    ("chr1", 3001, "AT", "A", {"BE": ({1, 3, 5, 7, 9, 2, 6, 10, 14, 18, 4}, set())}),
    ("chr2", 5001, "G", "GA", {"NL": ({2, 3, 4}, set())}),
]  # fmt: skip
CONTIGS = {"chr1": 248956422, "chr2": 242193529}
COUNTRIES = ("BE", "NL", "FI")


def node_vcf(country: str) -> bytes:
    """The node's VCF: every site, with the node's carriers (0/0 elsewhere)."""
    names = [f"EPI-{n:02d}" for n in range(1, SAMPLES + 1)]
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={name},length={length}>" for name, length in CONTIGS.items()]
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                            "FORMAT", *names]))  # fmt: skip
    for chrom, pos, ref, alt, by_node in SITES:
        carriers, hom = by_node.get(country, (set(), set()))
        calls = [
            "1/1" if n in hom else "0/1" if n in carriers else "0/0" for n in range(1, SAMPLES + 1)
        ]
        lines.append("\t".join([chrom, str(pos), ".", ref, alt, ".", "PASS", ".", "GT", *calls]))
    return ("\n".join(lines) + "\n").encode()


def release_cohort(settings: Settings) -> str:
    """The metadata tests' cohort stored at this node (files with the node's accessions) and
    its dataset released; the dataset's accession."""
    from metadata_support import SUBMITTER, CohortFiles, cohort

    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            files = [
                db.ArchiveFile(
                    submitter=SUBMITTER,
                    inbox_path=f"{SUBMITTER}/upload-{number}.c4gh",
                    state=db.FileState.READY,
                    accession=str(allocate(session, settings.country, "file")),
                )
                for number in range(2 * SAMPLES + 2)
            ]
            session.add_all(files)
            session.flush()
            names = [str(file.accession) for file in files]
            sheets = cohort(CohortFiles(names[: 2 * SAMPLES], names[2 * SAMPLES :]))
            service.submit_metadata(session, settings.country, SUBMITTER, sheets)
        with db.session_scope(db.for_writing(engine)) as session:
            released = service.release_dataset(session, settings.country, "EPI-BE-WGS")
            return str(released.accession)
    finally:
        engine.dispose()


def index_node_vcf(settings: Settings, dataset: str) -> None:
    """The node's VCF loaded into its dataset's index, columns matched to the cohort's samples."""
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            samples = {
                str(sample.alias): str(sample.accession)
                for sample in session.scalars(
                    select(db.MetadataObject).where(db.MetadataObject.kind == db.ObjectKind.SAMPLE)
                )
            }

        def match(session: Any, names: Any) -> dict[str, str]:
            return {name: samples[name] for name in names if name in samples}

        load_variants(
            engine,
            dataset,
            "vcf-of-the-test",
            io.BytesIO(node_vcf(settings.country)),
            name=f"{settings.country}.vcf",
            assembly="GRCh38",
            match_samples=match,
        )
    finally:
        engine.dispose()


def set_level(settings: Settings, dataset: str, level: str, **knobs: Any) -> None:
    engine = db.make_engine(settings.database_url)
    try:
        set_security(engine, dataset, level, **knobs)
    finally:
        engine.dispose()


def grant(settings: Settings, subject: str, dataset: str) -> None:
    engine = db.make_engine(settings.database_url)
    try:
        add_grant(engine, subject, dataset)
    finally:
        engine.dispose()


def seat_on_dac(settings: Settings, subject: str, dac: str = "UZL-DAC") -> None:
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(db.for_writing(engine)) as session:
            access_service.add_member(session, settings.country, "operator", dac, subject)
    finally:
        engine.dispose()


# -- the federation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    country: str
    url: str
    settings: Settings  # as served: its public URL, its issuer, its trusted issuers
    dataset: str

    @property
    def id(self) -> str:
        return node_id(self.settings)

    def bearer(self, user: str, *roles: str) -> dict[str, str]:
        """Headers with a token this node issued (its audience: this node)."""
        token = issue_token(self.settings, user, list(roles or ["requester"]))
        return {"Authorization": f"Bearer {token}"}


@dataclass
class Network:
    hub_url: str
    hub: Settings
    nodes: dict[str, Node] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)

    def subject(self, country: str, user: str) -> str:
        """How the other members know ``user`` of the node of ``country``."""
        return f"{user}@{self.nodes[country].id}"


def make_hub(folder: Path) -> Settings:
    made = init_hub(folder, name="Test federation")
    hub = {
        "name": "Test federation",
        "late_after_seconds": 60,  # heartbeats never decide who is asked in these tests
        "down_after_seconds": 120,
        "beacon_timeout_seconds": TIMEOUT,
    }
    return load_settings(made.config_file, hub=hub)


@contextmanager
def federation(folder: Path, levels: dict[str, str]) -> Iterator[Network]:
    """The hub and the three nodes, served, approved and trusting each other. ``levels``: each
    node's beacon security level for its dataset (budgets large: these tests are not about
    them)."""
    with ExitStack() as stack:
        sock = free_socket()
        hub = _with_port(make_hub(folder / "hub"), sock.getsockname()[1])
        hub_url = stack.enter_context(serving(create_hub_app(hub), sock))
        network = Network(hub_url, hub, stack=stack)
        for country in COUNTRIES:
            network.nodes[country] = start_node(network, folder / country, country, levels)
        for node in network.nodes.values():
            approve_node(hub, node.id, "operator")
        for node in network.nodes.values():
            wait_for(lambda n=node: _trusts_others(network, n), what=f"{node.country}'s trust")
        wait_for(lambda: _published(hub_url), what="the catalogue")
        for node in network.nodes.values():  # the first beacon answer loads the ontologies
            httpx.get(f"{node.url}/beacon/g_variants", params=VARIANT, timeout=60)
        yield network


def _with_port(settings: Settings, port: int) -> Settings:
    config = settings.home / "genofed.toml"
    return load_settings(config, http={"port": port}, hub=settings.hub.model_dump())


def start_node(network: Network, folder: Path, country: str, levels: dict[str, str]) -> Node:
    """A node with the cohort released and its VCF indexed, served and joined to the hub."""
    settings = make_node(folder, country)
    dataset = release_cohort(settings)
    index_node_vcf(settings, dataset)
    set_level(settings, dataset, levels.get(country, "controlled"), budget_bits=1000.0)
    url, served = network.stack.enter_context(node_server(with_hub(settings, network.hub_url)))
    wait_for(lambda: _registered(network, node_id(served)), what=f"{country}'s join")
    return Node(country, url, served, dataset)


def _registered(network: Network, member: str) -> bool:
    engine = db.make_engine(network.hub.database_url)
    try:
        with db.session_scope(engine) as session:
            return session.get(HubNode, member) is not None
    finally:
        engine.dispose()


def _trusts_others(network: Network, node: Node) -> bool:
    trusted = {issuer.issuer for issuer in node.settings.tokens.trusted_issuers}
    others = {other.settings.tokens.issuer for other in network.nodes.values() if other != node}
    return others <= trusted


def _published(hub_url: str) -> bool:
    found = httpx.get(f"{hub_url}/catalogue/search", timeout=10).json()
    return bool(found["total"] == len(COUNTRIES))


# -- members that are not real nodes ------------------------------------------------------------


@contextmanager
def fake_member(
    network: Network, country: str, app: FastAPI, datasets: tuple[str, ...] = ()
) -> Iterator[str]:
    """``app`` served and registered at the hub as an approved member (with ``datasets`` in the
    catalogue); removed from the hub afterwards. Yields its node id."""
    member = f"org.genofed.node.{country.lower()}"
    with serving(app) as url:
        engine = db.make_engine(network.hub.database_url)
        try:
            with db.session_scope(db.for_writing(engine)) as session:
                joining = registry_join_request(member, country).model_copy(update={"url": url})
                node, _ = registry.join(session, joining)
                registry.approve(session, node.id, "operator")
                catalogue.publish(session, node, [published(summary(d)) for d in datasets])
        finally:
            engine.dispose()
        try:
            yield member
        finally:
            remove_node(network.hub, member, "operator")


@contextmanager
def extra_node(
    network: Network, folder: Path, country: str, level: str
) -> Iterator[tuple[Node, Callable[[], None]]]:
    """A fourth real node, joined and approved while inside, with what stops its server (the
    hub still counts it a member until it is removed, afterwards)."""
    with ExitStack() as own:
        spare = Network(network.hub_url, network.hub, stack=own)
        node = start_node(spare, folder, country, {country: level})
        approve_node(network.hub, node.id, "operator")
        wait_for(lambda: _trusts_others(network, node), what=f"{country}'s trust")
        try:
            yield node, own.close
        finally:
            own.close()
            remove_node(network.hub, node.id, "operator")
