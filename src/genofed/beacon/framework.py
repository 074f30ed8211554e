"""The Beacon v2 framework answers: who this beacon is, what it serves, and where.

``/`` and ``/info`` (beaconInfoResponse), ``/service-info`` (GA4GH service-info, type
``org.ga4gh:beacon``), ``/configuration``, ``/map`` and ``/entry_types``. They describe the node,
never its data, so they need no session and no caller. The beacon's id is
``org.genofed.<country>.beacon``: one beacon per national node, told apart in a beacon network.

The node's ``[beacon]`` settings (:class:`BeaconSettings`) are read by :func:`beacon_settings`;
until the node's Settings carry them, the defaults hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genofed import __version__
from genofed.beacon.requests import API_VERSION

if TYPE_CHECKING:
    from genofed.beacon.entities import EntryType
    from genofed.config import BeaconSettings, Settings

SPEC = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main"
MODEL = f"{SPEC}/models/json/beacon-v2-default-model"
SECURITY_LEVELS = ("PUBLIC", "REGISTERED", "CONTROLLED")


def beacon_settings(settings: Settings) -> BeaconSettings:
    """The node's beacon settings, with OBO files resolved against the node's home."""
    chosen = settings.beacon
    files = [path if path.is_absolute() else settings.home / path for path in chosen.obo_files]
    return chosen.model_copy(update={"obo_files": files})


def beacon_id(settings: Settings) -> str:
    return f"org.genofed.{settings.country.lower()}.beacon"


def base_url(settings: Settings) -> str:
    """Where the beacon's routes are, as clients reach them."""
    return f"{settings.http.public_url.rstrip('/')}/beacon"


# -- entry types --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryTypeSpec:
    """One entry type: its route, its default schema, and the folder of that schema in the
    specification (``models/json/beacon-v2-default-model/<folder>``)."""

    id: EntryType
    path: str
    name: str
    folder: str
    term: tuple[str, str]
    description: str
    collection_of: tuple[EntryType, ...] = ()

    @property
    def schema_id(self) -> str:
        singular = {"genomicVariant": "variant"}.get(self.id, self.id)
        return f"ga4gh-beacon-{singular}-v2.0.0"

    def returned_schema(self) -> dict[str, str]:
        return {"entityType": self.id, "schema": self.schema_id}

    def definition(self) -> dict[str, Any]:
        defined: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "ontologyTermForThisType": {"id": self.term[0], "label": self.term[1]},
            "partOfSpecification": "Beacon v2.0.0",
            "description": self.description,
            "defaultSchema": {
                "id": self.schema_id,
                "name": f"Default schema for {self.name.lower()}",
                "referenceToSchemaDefinition": f"{MODEL}/{self.folder}/defaultSchema.json",
                "schemaVersion": "v2.0.0",
            },
            "additionallySupportedSchemas": [],
            "nonFilteredQueriesAllowed": self.id != "genomicVariant",
        }
        if self.collection_of:
            defined["aCollectionOf"] = [
                {"id": member, "name": ENTRY_TYPES[member].name} for member in self.collection_of
            ]
        return defined


_SPECS = (
    EntryTypeSpec(
        "genomicVariant",
        "g_variants",
        "Genomic Variants",
        "genomicVariations",
        ("ENSGLOSSARY:0000092", "Variant"),
        "Alleles of the variant files loaded into the beacon's index, per dataset.",
    ),
    EntryTypeSpec(
        "individual",
        "individuals",
        "Individuals",
        "individuals",
        ("NCIT:C25190", "Person"),
        "A person: the samples of one subject, with sex, phenotypes and diseases.",
    ),
    EntryTypeSpec(
        "biosample",
        "biosamples",
        "Biological Samples",
        "biosamples",
        ("NCIT:C70699", "Biospecimen"),
        "A sample of an individual, as submitted to the node.",
    ),
    EntryTypeSpec(
        "run",
        "runs",
        "Sequencing runs",
        "runs",
        ("NCIT:C148088", "Sequencing run"),
        "A sequencing run of a sample, with its experiment's library and platform.",
    ),
    EntryTypeSpec(
        "analysis",
        "analyses",
        "Bioinformatics analyses",
        "analyses",
        ("edam:operation_2945", "Analysis"),
        "Results derived from samples' data, e.g. joint-called variants.",
    ),
    EntryTypeSpec(
        "dataset",
        "datasets",
        "Datasets",
        "datasets",
        ("NCIT:C47824", "Data set"),
        "A released dataset of the node, shared under its DAC's policy.",
        ("genomicVariant", "individual", "biosample", "run", "analysis"),
    ),
    EntryTypeSpec(
        "cohort",
        "cohorts",
        "Cohorts",
        "cohorts",
        ("NCIT:C61512", "Cohort"),
        "The individuals of a study that released datasets reach.",
        ("individual",),
    ),
)
ENTRY_TYPES: dict[str, EntryTypeSpec] = {spec.id: spec for spec in _SPECS}
BY_PATH: dict[str, EntryTypeSpec] = {spec.path: spec for spec in _SPECS}

# /<source>/{id}/<target>: the lookups the beacon serves, as the specification's map lists them.
LOOKUPS: dict[str, tuple[str, ...]] = {
    "g_variants": ("individuals", "biosamples", "runs", "analyses"),
    "individuals": ("biosamples", "g_variants", "runs", "analyses"),
    "biosamples": ("g_variants", "runs", "analyses"),
    "runs": ("g_variants", "analyses"),
    "analyses": ("g_variants",),
    "datasets": ("individuals", "biosamples", "runs", "analyses", "g_variants"),
    "cohorts": ("individuals", "biosamples", "runs", "analyses", "g_variants"),
}
# Where each entry type lists its filtering terms (individuals for all; a collection for its own).
FILTERING_TERMS_URLS = {
    "individuals": "individuals/filtering_terms",
    "datasets": "datasets/{id}/filtering_terms",
    "cohorts": "cohorts/{id}/filtering_terms",
}


# -- the responses ------------------------------------------------------------------------------


def informational_meta(
    settings: Settings, schemas: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "beaconId": beacon_id(settings),
        "apiVersion": API_VERSION,
        "returnedSchemas": schemas or [],
    }


def info(settings: Settings) -> dict[str, Any]:
    """``/`` and ``/info``: beaconInfoResponse."""
    chosen = beacon_settings(settings)
    return {
        "meta": informational_meta(settings),
        "response": {
            "id": beacon_id(settings),
            "name": f"{settings.node_name} beacon",
            "apiVersion": API_VERSION,
            "environment": chosen.environment,
            "organization": {
                "id": f"org.genofed.{settings.country.lower()}",
                "name": settings.node_name,
                "welcomeUrl": settings.http.public_url,
            },
            "description": chosen.description or _description(settings),
            "version": API_VERSION,
            "welcomeUrl": base_url(settings),
            "info": {"software": f"genofed {__version__}", "country": settings.country},
        },
    }


def service_info(settings: Settings) -> dict[str, Any]:
    """``/service-info``: the GA4GH service-info of a beacon (``org.ga4gh:beacon``)."""
    return {
        "id": beacon_id(settings),
        "name": f"{settings.node_name} beacon",
        "type": {"group": "org.ga4gh", "artifact": "beacon", "version": API_VERSION},
        "description": beacon_settings(settings).description or _description(settings),
        "organization": {"name": settings.node_name, "url": settings.http.public_url},
        "version": __version__,
        "environment": beacon_settings(settings).environment,
    }


def _description(settings: Settings) -> str:
    return (
        f"Beacon v2 of the genofed node of {settings.country}: variants, individuals and "
        "biosamples of its released datasets, answered per dataset at the granularity each "
        "dataset's security level and your visas allow."
    )


def configuration(settings: Settings) -> dict[str, Any]:
    """``/configuration``: security levels, maturity and entry types."""
    chosen = beacon_settings(settings)
    return {
        "meta": informational_meta(settings),
        "response": {
            "$schema": f"{SPEC}/framework/json/configuration/beaconConfigurationSchema.json",
            "maturityAttributes": {"productionStatus": chosen.production_status},
            "securityAttributes": {
                "defaultGranularity": chosen.default_granularity,
                "securityLevels": list(SECURITY_LEVELS),
            },
            "entryTypes": _definitions(),
        },
    }


def entry_types(settings: Settings) -> dict[str, Any]:
    """``/entry_types``."""
    return {"meta": informational_meta(settings), "response": {"entryTypes": _definitions()}}


def _definitions() -> dict[str, Any]:
    return {spec.id: spec.definition() for spec in _SPECS}


def beacon_map(settings: Settings) -> dict[str, Any]:
    """``/map``: every endpoint, by entry type."""
    base = base_url(settings)
    sets: dict[str, Any] = {}
    for spec in _SPECS:
        endpoint: dict[str, Any] = {
            "entryType": spec.id,
            "rootUrl": f"{base}/{spec.path}",
            "singleEntryUrl": f"{base}/{spec.path}/{{id}}",
            "openAPIEndpointsDefinition": f"{MODEL}/{spec.folder}/endpoints.json",
            "endpoints": {
                f"{BY_PATH[target].id}Lookup": {
                    "returnedEntryType": BY_PATH[target].id,
                    "url": f"{base}/{spec.path}/{{id}}/{target}",
                }
                for target in LOOKUPS.get(spec.path, ())
            },
        }
        if spec.path in FILTERING_TERMS_URLS:
            endpoint["filteringTermsUrl"] = f"{base}/{FILTERING_TERMS_URLS[spec.path]}"
        sets[f"{spec.id}Endpoints"] = endpoint
    return {
        "meta": informational_meta(settings),
        "response": {
            "$schema": f"{SPEC}/framework/json/configuration/beaconMapSchema.json",
            "endpointSets": sets,
        },
    }
