"""The demo's story: a hub and three national nodes, each person with the real ``genofed``.

1. The hub starts; three nodes (Belgium, Finland, Sweden) start, join it and are approved.
2. Each node's operator creates accounts; each node's submitter uploads a cohort's VCF (encrypted
   on the way), the pipeline archives it, and the submitter describes and releases it under the
   node's DAC and policy; the node indexes it for its beacon and publishes it to the hub.
3. A researcher searches the catalogue, asks the beacon network, applies for a dataset held
   abroad, that node's DAC approves, and the researcher downloads and verifies it.
4. The audit log proves every access.
5. Labs in two countries share SARS-CoV-2 genomes: their nodes check, align and QC them, the
   curators release them, the records replicate to the hub, and the researcher asks the whole
   federation how common a mutation is, then downloads genomes with the labs' credits and cites
   them as a snapshot set. The federation keeps serving until Ctrl-C (unless ``--check``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from genofed import db
from genofed.access.tokens import issue_token
from genofed.cli.common import err_console as console
from genofed.config import Settings, load_settings
from genofed.demo.cohorts import Cohort, write_cohort
from genofed.demo.processes import GENOFED, Service, free_port, set_http
from genofed.node.client import NodeClient
from genofed.node.directory import init_node
from genofed.pathogen.organisms import load_organism
from genofed.pathogen.synthetic import outbreak, write_submission

PASSPHRASE = "demo-passphrase"
PASSWORD = "demo-password-1"
NODES = [("BE", "Belgian node"), ("FI", "Finnish node"), ("SE", "Swedish node")]
WAIT_S = 120.0
SAMPLES = 40
GENOMES = 120  # per pathogen lab
ORGANISM = "sars-cov-2"


class StepFailed(SystemExit):
    """A step of the story did not do what it should: the message says which and why."""


@dataclass(frozen=True)
class Person:
    """Someone running ``genofed`` on their own machine, with their own stored logins."""

    name: str
    folder: Path

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        node_config: Path | None = None,
        token: str | None = None,
    ) -> str:
        """``genofed ARGS`` as this person (on a node's machine when ``node_config``; with a
        bearer token from elsewhere when ``token``)."""
        environment = {
            **os.environ,
            "GENOFED_CREDENTIALS": str(self.folder / "credentials.json"),
            "GENOFED_STATE_DIR": str(self.folder / "uploads"),
            "C4GH_PASSPHRASE": PASSPHRASE,
        }
        for name in ("GENOFED_TOKEN", "GENOFED_NODE", "GENOFED_CONFIG"):
            environment.pop(name, None)
        if node_config is not None:
            environment["GENOFED_CONFIG"] = str(node_config)
        if token is not None:
            environment["GENOFED_TOKEN"] = token
        self.folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(GENOFED), *args],
            env=environment,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shown = " ".join(args[:2])
            raise StepFailed(f"'genofed {shown}' as {self.name} failed: {result.stderr.strip()}")
        return result.stdout

    def login(self, url: str) -> None:
        self.run("login", "--node", url, "--user", self.name, "--password-stdin", stdin=PASSWORD)


@dataclass
class Node:
    country: str
    name: str
    settings: Settings
    service: Service
    cohort: Cohort | None = None
    dataset: str = ""
    dac: str = ""

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def config(self) -> Path:
        return self.service.config


def run_story(workdir: Path, size_mib: float, *, check: bool) -> None:
    """Play the story; with ``check``, exit at the end instead of serving until Ctrl-C."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    started = time.perf_counter()
    people = workdir / "people"
    operator, researcher = Person("olivia", people / "olivia"), Person("bob", people / "bob")
    with ExitStack() as services:
        hub = start_hub(workdir / "hub", services)
        nodes = [start_node(workdir, country, name, hub, services) for country, name in NODES]
        create_accounts(nodes, operator, researcher)
        for node in nodes:
            submit_cohort(node, workdir, size_mib, operator)
        wait_for_catalogue(hub, len(nodes))
        search_catalogue(hub, researcher)
        ask_beacons(hub, nodes[0], researcher)
        home, abroad = nodes[0], nodes[1]
        apply_across_borders(hub, home, nodes[1:], researcher)
        download_and_verify(home, abroad, researcher)
        prove_audit(abroad, operator)
        labs = nodes[:2]
        released = sum(share_genomes(node, workdir) for node in labs)
        ask_federation_about_a_mutation(hub, released, researcher)
        download_with_credits(home, researcher)
        console.print(f"\n[bold green]demo complete[/] in {time.perf_counter() - started:.0f} s")
        show_where(hub, nodes, workdir)
        if not check:
            serve_until_interrupted()


# -- the federation comes up --------------------------------------------------------------------


def step(title: str, detail: str) -> None:
    console.print(f"\n[bold cyan]{title}[/] [dim]({detail})[/]")


def say(text: str) -> None:
    console.print(f"   {escape(text)}")


def start_hub(folder: Path, services: ExitStack) -> Service:
    step("1. The federation hub starts", "genofed hub init; genofed hub serve")
    port = free_port()
    Person("hub-operator", folder.parent / "people" / "hub-operator").run(
        "hub", "init", str(folder), "--name", "European genome federation", "--port", str(port)
    )
    hub = Service("hub", "hub", folder / "genofed.toml", f"http://127.0.0.1:{port}")
    hub.start()
    services.callback(hub.stop)
    hub.wait_ready()
    say(f"hub at {hub.url}")
    return hub


def start_node(workdir: Path, country: str, name: str, hub: Service, services: ExitStack) -> Node:
    step(f"2. The {name} starts and joins", "genofed node init; node join; hub approve")
    made = init_node(workdir / f"node-{country}", name=name, country=country)
    url = set_http(made.config_file, free_port())
    operator = Person("operator", workdir / "people" / f"operator-{country}")
    operator.run("node", "join", hub.url, node_config=made.config_file)
    _fast_sync(made.config_file)
    service = Service(name, "node", made.config_file, url)
    service.start()
    services.callback(service.stop)
    service.wait_ready()
    Person("hub-operator", workdir / "people" / "hub-operator").run(
        "hub", "approve", country, "--by", "hub-operator", node_config=hub.config
    )
    say(f"{name} at {url}, approved by the hub")
    return Node(country, name, load_settings(made.config_file), service)


def _fast_sync(config_file: Path) -> None:
    """Heartbeats, catalogue publication and the beacon index's sweep every second or two, so
    the story need not wait (the defaults suit a production node)."""
    import tomllib

    import tomli_w

    config = tomllib.loads(config_file.read_text())
    config.setdefault("federation", {})["sync_seconds"] = 2.0
    config.setdefault("beacon", {})["index_every_seconds"] = 1.0
    config_file.write_text(tomli_w.dumps(config))


def create_accounts(nodes: list[Node], operator: Person, researcher: Person) -> None:
    step("3. Each node's operator creates accounts", "genofed user add, with roles")
    for node in nodes:
        code = node.country.lower()
        accounts = [
            ("olivia", "operator"),
            (f"alice-{code}", "submitter"),
            (f"dac-{code}", "dac_member"),
            (f"curator-{code}", "curator"),
        ]
        if node is nodes[0]:  # the researcher's home node; the other members trust its tokens
            accounts.append(("bob", "requester"))
        for user, role in accounts:
            operator.run(
                "user", "add", user, "--role", role, "--password-stdin",
                stdin=PASSWORD, node_config=node.config,
            )  # fmt: skip
        say(f"{node.country}: " + ", ".join(f"{user} ({role})" for user, role in accounts))


# -- each node archives and publishes a cohort ---------------------------------------------------


def submit_cohort(node: Node, workdir: Path, size_mib: float, operator: Person) -> None:
    code = node.country.lower()
    step(f"4. {node.name}: a cohort is archived and released", "upload, pipeline, metadata, index")
    submitter = Person(f"alice-{code}", workdir / "people" / f"alice-{code}")
    cohort = write_cohort(
        submitter.folder,
        node.country,
        samples=SAMPLES,
        size_mib=size_mib,
        seed=len(code) + ord(code[0]),
    )
    node.cohort = cohort
    submitter.login(node.url)
    submitter.run("submit", "upload", str(cohort.vcf), "--node", node.url)
    accession = wait_until_ready(node)
    say(f"{cohort.vcf.name}: archived as {accession}")
    document = submitter.folder / "metadata.json"
    document.write_text(json.dumps(cohort.metadata(accession), indent=2))
    submitter.run(
        "metadata", "submit", str(document), "--user", submitter.name, node_config=node.config
    )
    node.dataset, node.dac = _accessions(node.settings, submitter.name)
    submitter.run("dataset", "release", node.dataset, node_config=node.config)
    _wait(lambda: _indexed(node), f"{node.name}'s beacon index")
    operator.run(
        "beacon", "configure", node.dataset, "--level", "registered", node_config=node.config
    )
    operator.login(node.url)
    operator.run("dac", "members", "add", node.dac, f"dac-{code}", "--node", node.url)
    say(
        f"dataset {node.dataset} released; the node indexed it for its beacon by itself "
        f"(level: registered); DAC {node.dac}"
    )


def wait_until_ready(node: Node) -> str:
    """The accession of the node's one file, once the pipeline has made it ready."""
    settings = node.settings
    token = issue_token(settings, f"alice-{node.country.lower()}", ["submitter"])
    client = NodeClient.connect(node.url, token)
    try:
        record = _wait(lambda: _ready_file(client), f"{node.name}'s pipeline")
    finally:
        client.close()
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            stored = session.get(db.ArchiveFile, record["id"])
            assert stored is not None and stored.accession
            return stored.accession
    finally:
        engine.dispose()


def _ready_file(client: NodeClient) -> dict[str, Any] | None:
    files = client.files()
    for record in files:
        if record["state"] == "error":
            raise StepFailed(f"ingestion failed: {record.get('error')}")
    return next((record for record in files if record["state"] == "ready"), None)


def _indexed(node: Node) -> bool:
    engine = db.make_engine(node.settings.database_url)
    try:
        with db.session_scope(engine) as session:
            loaded = session.scalars(
                select(db.BeaconSource).where(
                    db.BeaconSource.dataset_accession == node.dataset,
                    db.BeaconSource.alleles > 0,
                )
            ).first()
            return loaded is not None
    finally:
        engine.dispose()


def _accessions(settings: Settings, submitter: str) -> tuple[str, str]:
    engine = db.make_engine(settings.database_url)
    try:
        with db.session_scope(engine) as session:
            found = {
                obj.kind: str(obj.accession)
                for obj in session.scalars(
                    select(db.MetadataObject).where(db.MetadataObject.submitter == submitter)
                )
            }
    finally:
        engine.dispose()
    return found[db.ObjectKind.DATASET], found[db.ObjectKind.DAC]


def _wait(probe: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise StepFailed(f"{what}: nothing after {timeout:.0f} s")


# -- the researcher's story ---------------------------------------------------------------------


def wait_for_catalogue(hub: Service, expected: int) -> None:
    step("5. The nodes publish to the hub's catalogue", "public metadata only, signed calls")

    def published() -> int:
        answer = httpx.get(f"{hub.url}/catalogue/search", timeout=10).json()
        total = int(answer.get("total", 0))
        return total if total >= expected else 0

    say(f"{_wait(published, 'the hub catalogue')} datasets searchable at the hub")


def search_catalogue(hub: Service, researcher: Person) -> None:
    step("6. A researcher searches the catalogue", "genofed search, phenotype with descendants")
    found = researcher.run("search", "epilepsy", "--phenotype", "HP:0001250", "--hub", hub.url)
    for line in found.strip().splitlines():
        say(line)


def ask_beacons(hub: Service, home: Node, researcher: Person) -> None:
    step(
        "7. The researcher asks the federation's beacon network",
        "one query at the hub, each node's privacy guard applied, chr22:16.05-16.15 Mb",
    )
    researcher.login(home.url)
    token = _stored_token(researcher, home.url)  # issued by the home node, trusted by the others
    answer = httpx.post(
        f"{hub.url}/beacon/g_variants",
        json={
            "meta": {"apiVersion": "v2.0.1"},
            "query": {
                "requestParameters": {
                    "assemblyId": "GRCh38",
                    "referenceName": "22",
                    "start": [16_050_000],
                    "end": [16_150_000],
                },
                "requestedGranularity": "count",
            },
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = answer.json()
    if answer.status_code != 200:
        raise StepFailed(f"the beacon network answered {answer.status_code}: {body}")
    table = Table("node", "status", "ms")
    for node in body["info"]["nodes"]:
        table.add_row(node["country"], node["status"], str(node["ms"]))
    console.print(table)
    summary = body["responseSummary"]
    say(
        f"federation: exists {summary['exists']}, {summary.get('numTotalResults', 0)} "
        f"individuals carry a variant there (granularity {body['meta']['returnedGranularity']})"
    )


def _stored_token(person: Person, url: str) -> str:
    stored = json.loads((person.folder / "credentials.json").read_text())
    return str(stored["nodes"][url]["token"])


def apply_across_borders(hub: Service, home: Node, abroad: list[Node], researcher: Person) -> None:
    names = " and ".join(node.country for node in abroad)
    step(f"8. The researcher applies once at the hub for {names}'s datasets", "one purpose")
    parts = researcher.run(
        "federation", "request", *(node.dataset for node in abroad),
        "--title", "Variants in early-onset epilepsy", "--permission", "HMB",
        "--modifier", "NPU", "--days", "30", "--hub", hub.url, "--node", home.url,
    )  # fmt: skip
    for line in parts.strip().splitlines():
        say(f"part sent: {line}")
    node = abroad[0]
    member = Person(f"dac-{node.country.lower()}", researcher.folder.parent / f"dac-{node.country}")
    member.login(node.url)
    listed = member.run("dac", "list", "--node", node.url).strip().splitlines()
    item = listed[-1].split("\t")[0]
    grant = member.run("dac", "approve", item, "--comment", "approved", "--node", node.url).strip()
    say(f"{member.name} ({node.country}) approved: grant {grant}, valid 30 days")
    status = researcher.run("federation", "status", "--hub", hub.url, "--node", home.url)
    for line in status.strip().splitlines():
        say(line)


def download_and_verify(home: Node, node: Node, researcher: Person) -> None:
    step(
        f"9. The researcher downloads from {node.country}, the node that holds the data",
        "with the home node's token, sealed for their key, verified",
    )
    assert node.cohort is not None
    from genofed import crypt4gh

    key = researcher.folder / "bob.sec"
    if not key.exists():
        crypt4gh.write_keypair(key, researcher.folder / "bob.pub", PASSPHRASE)
    out = researcher.folder / f"downloads-{node.country}"
    report = researcher.run(
        "download", node.dataset, "--key", str(key), "--out", str(out), "--node", node.url,
        token=_stored_token(researcher, home.url),
    )  # fmt: skip
    for line in report.strip().splitlines():
        say(line)
    (received,) = [p for p in out.iterdir() if not p.name.startswith(".")]
    if _sha256(received) != _sha256(node.cohort.vcf):
        raise StepFailed("the downloaded file differs from the submitted one")
    say("identical to the file the submitter uploaded")


def prove_audit(node: Node, operator: Person) -> None:
    step(f"10. {node.name}'s audit log", "genofed audit verify; genofed audit show")
    head = operator.run("audit", "verify", node_config=node.config).strip()
    say(f"hash chain intact, head {head[:16]}…")
    shown = operator.run(
        "audit", "show", "--user", "bob@org.genofed.node.be", "--limit", "5",
        node_config=node.config,
    )  # fmt: skip
    for line in shown.strip().splitlines():
        say(line[:160])


# -- pathogen sharing ---------------------------------------------------------------------------


def share_genomes(node: Node, workdir: Path) -> int:
    """A lab submits an outbreak's genomes; the node's curator releases the ones without errors.
    Returns how many were released."""
    code = node.country.lower()
    step(
        f"11. {node.name}: a lab shares {GENOMES} SARS-CoV-2 genomes",
        "genofed pathogen submit; the node aligns, calls mutations and QCs; curate approve",
    )
    lab = Person(f"alice-{code}", workdir / "people" / f"alice-{code}")
    samples = outbreak(load_organism(ORGANISM), node.country, GENOMES, seed=len(code))
    fasta, sheet = write_submission(samples, lab.folder / "genomes")
    lab.login(node.url)
    stored = lab.run("pathogen", "submit", "--organism", ORGANISM, str(fasta), str(sheet))
    say(f"{len(stored.splitlines())} genomes stored and processed, e.g. {stored.split()[1]}")
    curator = Person(f"curator-{code}", workdir / "people" / f"curator-{code}")
    curator.login(node.url)
    queue = [line.split("\t") for line in curator.run("pathogen", "curate", "list").splitlines()]
    releasable = [entry[0] for entry in queue if entry[2] != "errors"]
    chosen = curator.folder / "approve.txt"
    chosen.write_text("\n".join(releasable) + "\n")
    curator.run("pathogen", "curate", "approve", "--from-file", str(chosen))
    held = len(queue) - len(releasable)
    say(f"{curator.name} released {len(releasable)}; {held} with QC errors held back")
    return len(releasable)


def ask_federation_about_a_mutation(hub: Service, released: int, researcher: Person) -> None:
    step(
        "12. The researcher asks the whole federation about S:E484K",
        "records replicated to the hub; genofed pathogen query --hub (LAPIS)",
    )

    def replicated() -> int:
        table = researcher.run("pathogen", "query", "aggregated", "--hub", hub.url)
        count = int(table.splitlines()[1])
        return count if count >= released else 0

    say(f"{_wait(replicated, 'replication to the hub')} genomes at the hub, from two nodes")
    by_country = researcher.run(
        "pathogen", "query", "aggregated", "aminoAcidMutations=S:E484K",
        "collectionDateFrom=2021-03-01", "fields=country", "--hub", hub.url,
    )  # fmt: skip
    for line in by_country.strip().splitlines():
        say(line)
    clades = researcher.run(
        "pathogen", "query", "aggregated", "fields=clade", "orderBy=clade", "--hub", hub.url
    )
    say("genomes per clade (Nextstrain, by signature mutations):")
    for line in clades.strip().splitlines()[1:]:
        say(f"  {line}")
    common = researcher.run(
        "pathogen", "query", "amino-acid-mutations", "minProportion=0.4", "--hub", hub.url
    )
    say("amino-acid changes in at least 40 % of the federation's genomes:")
    for line in common.strip().splitlines()[:8]:
        say(f"  {line}")


def download_with_credits(home: Node, researcher: Person) -> None:
    step(
        f"13. The researcher downloads genomes from {home.country} and cites them",
        "terms accepted; FASTA + acknowledgements; a snapshot set for the paper",
    )
    researcher.login(home.url)
    researcher.run("pathogen", "terms", "accept", "--node", home.url)
    details = researcher.run(
        "pathogen", "query", "details", "aminoAcidMutations=S:E484K", "fields=accessionVersion",
        "limit=5", "--node", home.url,
    )  # fmt: skip
    chosen = details.strip().splitlines()[1:]
    out = researcher.folder / "genomes"
    researcher.run("pathogen", "download", *chosen, "--out", str(out), "--node", home.url)
    credits = (out / "acknowledgements.tsv").read_text().splitlines()
    say(f"{len(chosen)} genomes in {out}, with {len(credits) - 1} acknowledgement rows, e.g.:")
    say(f"  {credits[1][:150]}")
    snapshot = researcher.run(
        "pathogen", "snapshot", "create", *chosen,
        "--title", "E484K in Belgium, 2021", "--node", home.url,
    )  # fmt: skip
    say(f"snapshot set to cite: {snapshot.strip().splitlines()[0]}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def show_where(hub: Service, nodes: list[Node], workdir: Path) -> None:
    console.print(
        f"\nhub: {hub.url}  (catalogue: {hub.url}/catalogue/search; pathogen queries over the "
        f"federation: {hub.url}/pathogen/lapis/{ORGANISM}/sample/aggregated)"
    )
    for node in nodes:
        console.print(
            f"{node.name}: portal {node.url}/portal  beacon {node.url}/beacon  "
            f"pathogen queries {node.url}/pathogen/lapis/{ORGANISM}/sample/aggregated"
        )
    console.print(
        f"users (password {PASSWORD}): olivia (operator, every node), bob (requester, BE; "
        "trusted by FI and SE through the hub), alice-be/fi/se (submitters), dac-be/fi/se "
        "(DAC members), curator-be/fi/se (pathogen curators)"
    )
    console.print(f"everything is in {workdir}")


@contextmanager
def _interrupted() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        console.print("\nstopping the federation")


def serve_until_interrupted() -> None:
    console.print("[bold]serving until Ctrl-C[/]")
    with _interrupted():
        while True:
            time.sleep(3600)
