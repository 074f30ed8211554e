"""The EGA object model: one pydantic model per kind, as a submitter writes the object.

References to other objects are strings, each the alias of an object (the submitter's own name
for it, in this submission or stored before) or its accession; ``REFERENCES`` says which kind
each must name. Files are referenced by archive accession or file id. Checking that a reference
names something is :mod:`genofed.metadata.references`' job, since it needs the database; these
models check everything a record says on its own.

A record stores its own fields in ``MetadataObject.body``; references become ``MetadataLink`` rows
(relation = the field name) and file references ``ObjectFile`` rows, so they are never kept twice.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from genofed.db import ObjectKind
from genofed.metadata import duo, ontology, vocabulary
from genofed.metadata.problems import invalid, plain_text

MULTI_VALUE_SEPARATOR = ";"
ACCESSION_LIKE = re.compile(r"^(GF[A-Z]{2}[A-Z]\d{11}[0-9A-Z]|EGA[A-Z]\d{11})$", re.IGNORECASE)


def _alias(text: str) -> str:
    if MULTI_VALUE_SEPARATOR in text:
        raise invalid("an alias cannot contain ';'", "references list aliases separated by ';'")
    if ACCESSION_LIKE.match(text):
        raise invalid("an alias that looks like an accession", "choose an alias of your own")
    return text


def _url(text: str) -> str:
    if not re.match(r"^https?://[^\s/]+", text):
        raise invalid("not a web address", "write it as https://...")
    return text


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(plain_text),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(plain_text),
]
Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000),
    AfterValidator(plain_text),
]
Alias = Annotated[Name, AfterValidator(_alias)]
Ref = Name  # an alias or an accession
FileRef = Name  # an archive accession or a file id
Url = Annotated[Name, AfterValidator(_url)]
Curie = Annotated[str, AfterValidator(ontology.curie)]
Sex = Annotated[str, AfterValidator(ontology.sex)]
Age = Annotated[str, AfterValidator(ontology.age)]
StudyType = Annotated[str, AfterValidator(vocabulary.STUDY_TYPES)]
Platform = Annotated[str, AfterValidator(vocabulary.PLATFORMS)]
LibraryStrategy = Annotated[str, AfterValidator(vocabulary.LIBRARY_STRATEGIES)]
LibrarySource = Annotated[str, AfterValidator(vocabulary.LIBRARY_SOURCES)]
LibrarySelection = Annotated[str, AfterValidator(vocabulary.LIBRARY_SELECTIONS)]
LibraryLayout = Annotated[str, AfterValidator(vocabulary.LIBRARY_LAYOUTS)]
RunFileType = Annotated[str, AfterValidator(vocabulary.RUN_FILE_TYPES)]
AnalysisType = Annotated[str, AfterValidator(vocabulary.ANALYSIS_TYPES)]
Assembly = Annotated[str, AfterValidator(vocabulary.ASSEMBLIES)]
Permission = Annotated[str, AfterValidator(duo.permission)]
Modifier = Annotated[duo.Modifier, BeforeValidator(duo.modifier)]


@dataclass(frozen=True)
class FieldProblem:
    """A problem that involves two fields of one record, reported against ``column``."""

    column: str
    value: Any
    problem: str
    fix: str


class Record(BaseModel):
    """What every kind has: an alias, unique per submitter and kind."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, str_strip_whitespace=True
    )

    KIND: ClassVar[ObjectKind]
    REFERENCES: ClassVar[Mapping[str, ObjectKind]] = {}
    FILES: ClassVar[str | None] = None  # the field that lists files, if any

    alias: Alias

    @model_validator(mode="before")
    @classmethod
    def _cells(cls, data: Any) -> Any:
        return cls.clean(data) if isinstance(data, Mapping) else data

    @classmethod
    def clean(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """Empty cells are absent; a multi-valued cell is split on ';'."""
        multi = multi_valued(cls)
        cleaned = {}
        for name, value in data.items():
            if name in multi:
                value = split(value)
            elif isinstance(value, str):
                value = value.strip()
            if value not in (None, "", []):
                cleaned[name] = value
        return cleaned

    @classmethod
    def checks(cls, fields: Mapping[str, Any]) -> Iterator[FieldProblem]:
        """Problems between fields. ``fields`` holds the valid ones: a row with problems of its
        own is checked too, so that one pass lists everything."""
        return iter(())

    @classmethod
    def valid_fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """Each field of ``data`` that is valid on its own, validated."""
        valid = {}
        for name, value in cls.clean(data).items():
            if name in cls.model_fields:
                with contextlib.suppress(ValidationError):
                    valid[name] = _field_adapter(cls, name).validate_python(value)
        return valid

    def body(self) -> dict[str, Any]:
        """The fields kept in ``MetadataObject.body``: all but the alias and the references."""
        kept = set(type(self).model_fields) - {"alias", *self.REFERENCES, self.FILES or ""}
        return self.model_dump(mode="json", include=kept, exclude_defaults=True)


def split(value: Any) -> Any:
    """A multi-valued cell as a list: ``"a; b;"`` → ``["a", "b"]``; lists lose empty items."""
    if isinstance(value, str):
        value = value.split(MULTI_VALUE_SEPARATOR)
    if isinstance(value, list):
        items = [item.strip() if isinstance(item, str) else item for item in value]
        return [item for item in items if item not in (None, "")]
    return value


@cache
def _field_adapter(model: type[Record], name: str) -> TypeAdapter[Any]:
    return TypeAdapter(model.model_fields[name].rebuild_annotation(), config=Record.model_config)


@cache
def multi_valued(model: type[Record]) -> frozenset[str]:
    """The fields of ``model`` that hold lists."""
    return frozenset(
        name for name, field in model.model_fields.items() if get_origin(field.annotation) is list
    )


class Study(Record):
    KIND = ObjectKind.STUDY

    title: Title
    description: Description | None = None
    study_type: StudyType


class Sample(Record):
    """One sample of one individual, with the phenotypes Beacon's individuals queries filter on."""

    KIND = ObjectKind.SAMPLE
    REFERENCES = {"study": ObjectKind.STUDY}

    subject_id: Name | None = None  # the individual, when several samples come from one person
    sex: Sex
    age: Age | None = None  # at collection
    phenotypes: list[Curie] = []
    diseases: list[Curie] = []
    population: Name | None = None
    study: Ref | None = None
    description: Description | None = None


class Experiment(Record):
    """How a sample's library was made and sequenced."""

    KIND = ObjectKind.EXPERIMENT
    REFERENCES = {"sample": ObjectKind.SAMPLE, "study": ObjectKind.STUDY}

    sample: Ref
    study: Ref | None = None
    platform: Platform
    instrument: Name  # the instrument model, e.g. Illumina NovaSeq 6000
    library_strategy: LibraryStrategy
    library_source: LibrarySource
    library_selection: LibrarySelection
    library_layout: LibraryLayout
    library_name: Name | None = None
    description: Description | None = None


class Run(Record):
    KIND = ObjectKind.RUN
    REFERENCES = {"experiment": ObjectKind.EXPERIMENT}
    FILES = "files"

    experiment: Ref
    files: Annotated[list[FileRef], Field(min_length=1)]
    file_type: RunFileType | None = None


class Analysis(Record):
    """Results derived from samples' data, e.g. a VCF of their variants."""

    KIND = ObjectKind.ANALYSIS
    REFERENCES = {"study": ObjectKind.STUDY, "samples": ObjectKind.SAMPLE}
    FILES = "files"

    title: Title
    description: Description | None = None
    study: Ref
    samples: list[Ref] = []
    analysis_type: AnalysisType
    assembly: Assembly | None = None
    files: Annotated[list[FileRef], Field(min_length=1)]

    @classmethod
    def checks(cls, fields: Mapping[str, Any]) -> Iterator[FieldProblem]:
        analysis_type = fields.get("analysis_type")
        if analysis_type in vocabulary.ON_A_REFERENCE and fields.get("assembly") is None:
            yield FieldProblem(
                "assembly",
                None,
                f"a {analysis_type} analysis needs the assembly its positions refer to",
                "write GRCh37 or GRCh38",
            )


class Dataset(Record):
    """Files shared under one policy: given directly, or through runs and analyses."""

    KIND = ObjectKind.DATASET
    REFERENCES = {
        "policy": ObjectKind.POLICY,
        "runs": ObjectKind.RUN,
        "analyses": ObjectKind.ANALYSIS,
    }
    FILES = "files"

    title: Title
    description: Description | None = None
    policy: Ref | None = None  # needed to release the dataset, not to submit it
    files: list[FileRef] = []
    runs: list[Ref] = []
    analyses: list[Ref] = []


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    email: str

    def __str__(self) -> str:
        return self.email if self.name is None else f"{self.name} <{self.email}>"


_EMAIL = re.compile(r"[^@\s<>;,]+@[^@\s<>;,]+\.[^@\s<>;,]+")
_NAMED = re.compile(r"(?P<name>[^<>]*)<(?P<email>[^<>]*)>")


def contact(raw: Any) -> Contact:
    """A contact written ``Name <email>`` or ``email``, or as ``{"name": .., "email": ..}``."""
    if isinstance(raw, Contact):
        return raw
    if isinstance(raw, str):
        named = _NAMED.fullmatch(raw.strip())
        name, email = (named["name"], named["email"]) if named else (None, raw)
    elif isinstance(raw, Mapping) and set(raw) <= {"name", "email"}:
        name, email = raw.get("name"), raw.get("email")
    else:
        name = email = None
    if not isinstance(email, str) or (name is not None and not isinstance(name, str)):
        raise invalid("not a contact", "write Name <email@example.org>")
    email = plain_text(email.strip())
    if not _EMAIL.fullmatch(email):
        raise invalid("not an e-mail address", "write Name <email@example.org>")
    name = plain_text(name.strip()) if name else None
    return Contact(name=name or None, email=email)


class Dac(Record):
    """A data access committee: who decides on requests for the datasets of its policies."""

    KIND = ObjectKind.DAC

    title: Title
    description: Description | None = None
    contacts: Annotated[list[Annotated[Contact, BeforeValidator(contact)]], Field(min_length=1)]


class Policy(Record):
    """The data-use conditions of datasets, as DUO terms, and the DAC that applies them."""

    KIND = ObjectKind.POLICY
    REFERENCES = {"dac": ObjectKind.DAC}

    title: Title
    dac: Ref
    text: Description | None = None
    url: Url | None = None
    permission: Permission
    diseases: list[Curie] = []  # what DS (disease specific research) is restricted to
    modifiers: list[Modifier] = []

    @classmethod
    def checks(cls, fields: Mapping[str, Any]) -> Iterator[FieldProblem]:
        permission, diseases = fields.get("permission"), fields.get("diseases") or []
        if permission == "DS" and not diseases:
            yield FieldProblem(
                "diseases",
                None,
                "DS (disease specific research) needs the diseases it allows",
                "list disease CURIEs, e.g. MONDO:0005148 or ICD10:E11",
            )
        if diseases and permission not in ("DS", None):
            yield FieldProblem(
                "diseases",
                ";".join(diseases),
                f"diseases restrict DS only, not {permission}",
                "remove them, or make the permission DS",
            )
        seen: set[str] = set()
        for item in fields.get("modifiers") or []:
            if item.code in seen:
                yield FieldProblem(
                    "modifiers", str(item), f"{item.code} is given twice", "keep one"
                )
            seen.add(item.code)


RECORDS: Mapping[ObjectKind, type[Record]] = {
    model.KIND: model for model in (Study, Sample, Experiment, Run, Analysis, Dataset, Dac, Policy)
}
# A sheet is named after the plural of its kind (samples.tsv); the singular is accepted too.
SHEET_NAMES: Mapping[ObjectKind, str] = {
    ObjectKind.STUDY: "studies",
    ObjectKind.SAMPLE: "samples",
    ObjectKind.EXPERIMENT: "experiments",
    ObjectKind.RUN: "runs",
    ObjectKind.ANALYSIS: "analyses",
    ObjectKind.DATASET: "datasets",
    ObjectKind.DAC: "dacs",
    ObjectKind.POLICY: "policies",
}


def kind_of_sheet(name: str) -> ObjectKind | None:
    """The kind a sheet (file stem or JSON key) holds: plural or singular, any case."""
    wanted = name.strip().lower()
    for kind, plural in SHEET_NAMES.items():
        if wanted in (plural, kind.value):
            return kind
    return None


def columns(kind: ObjectKind) -> list[str]:
    """The columns of a kind's sheet, in the order a template lists them."""
    return list(RECORDS[kind].model_fields)


def required_columns(kind: ObjectKind) -> list[str]:
    return [name for name, field in RECORDS[kind].model_fields.items() if field.is_required()]
