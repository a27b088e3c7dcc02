"""The record's typed shape (schema 1) and the one reader that validates it whole.

What nbrepro writes under ``metadata["nbrepro"]`` is a :class:`Record`; the builders
(:func:`nbrepro._record.build_record`, :func:`nbrepro._environment.environment`,
:func:`nbrepro._fingerprint.fingerprint`) produce these shapes, and :func:`validate_record`
is the only way a record read from a file becomes one: it checks every key and every inner
value, and a :class:`~nbrepro.errors.RecordError` names the key path and the bad value
(``record: seed is -1: a seed must be ...``). Past it, consumers index the typed record
without checking again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal, NoReturn, TypedDict, cast

from nbrepro._config import validate_seed, validate_threads
from nbrepro.errors import NbreproError, RecordError

SCHEMA = 1
KEY = "nbrepro"

#: Variables that change what a run computes; the only ones a record may hold (a rerun
#: starts its kernel with them, so a record naming any other variable is refused).
ENV_ALLOWLIST = (
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_LAUNCH_BLOCKING",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "TF_ENABLE_ONEDNN_OPTS",
    "KERAS_BACKEND",
    "XLA_FLAGS",
    "JAX_ENABLE_X64",
    "JAX_PLATFORMS",
    "TORCHINDUCTOR_DETERMINISTIC",
)


class FileFingerprint(TypedDict):
    """A data file's fingerprint."""

    kind: Literal["file"]
    size: int  #: bytes
    sha256: str  #: hex digest of every byte


class _DirFingerprintRequired(TypedDict):
    kind: Literal["dir"]
    files: int  #: regular files hashed
    size: int  #: their bytes together
    sha256: str  #: over the sorted (relative path, size, file digest) list


class DirFingerprint(_DirFingerprintRequired, total=False):
    """A data folder's fingerprint; ``listing`` up to a limit, ``skipped`` when any."""

    listing: dict[str, str]  #: relative path (secrets redacted) -> file digest
    skipped: list[str]  #: relative paths of special files (FIFOs, devices, sockets) not read


Fingerprint = FileFingerprint | DirFingerprint


class _GpuRequired(TypedDict):
    source: str | None  #: "torch", "tensorflow", "nvidia-smi", or None (no GPU found)
    devices: list[str]


class Gpu(_GpuRequired, total=False):
    """The GPUs a run saw, and where that came from."""

    cuda: str | None
    cudnn: int | str | None  #: torch reports an int, TensorFlow a string
    driver: str | None
    error: str


class _EnvironmentRequired(TypedDict):
    python: str
    implementation: str
    platform: str
    machine: str
    cpu: str
    cpu_count: int | None
    hash_randomization: bool
    gpu: Gpu
    packages: dict[str, str]  #: distribution name -> version


class Environment(_EnvironmentRequired, total=False):
    """What a run depended on besides code and data (the record's ``environment``)."""

    #: adapter name -> what its adapter reports while the framework is imported
    #: (:meth:`nbrepro.adapters.Backend.environment_facts`: version, devices, ...)
    frameworks: dict[str, dict[str, object]]


class Machine(Environment):
    """What :func:`nbrepro.environment` returns: the environment and ``env_vars``."""

    env_vars: dict[str, str | None]


class FindingEntry(TypedDict):
    """One finding as recorded."""

    code: str
    severity: Literal["error", "warning", "info"]
    message: str
    fix: str


class Record(TypedDict):
    """The reproducibility record (schema 1); README.md, "The record", documents each key."""

    schema: int
    nbrepro_version: str
    created: str  #: UTC, ISO 8601
    seed: int | None
    seed_source: Literal["user", "auto", "sweep"] | None
    deterministic: Literal["off", "warn", "strict"]
    per_cell: bool
    threads: int | None
    cell_seeds: dict[str, int]
    env_vars: dict[str, str | None]
    environment: Environment
    data: dict[str, Fingerprint]
    findings: list[FindingEntry]


_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def _shown(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        # repr() of a very long integer raises ValueError (sys.set_int_max_str_digits)
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Reader:
    """Checks one record, remembering where it came from for the messages."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: str, value: object, problem: str) -> NoReturn:
        raise RecordError(f"{self.where}: record: {path} is {_shown(value)}: {problem}")

    def missing(self, path: str) -> NoReturn:
        raise RecordError(f"{self.where}: record: {path} is missing; the record is damaged")

    def mapping(self, path: str, value: object, what: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            self.fail(path, value, f"{what} must be a mapping, not {type(value).__name__}")
        for key in value:
            if not isinstance(key, str):
                self.fail(f"{path} key", key, "keys must be strings")
        return value

    def field(self, path: str, value: Mapping[str, object], key: str) -> object:
        if key not in value:
            self.missing(f"{path}.{key}" if path else key)
        return value[key]

    def text(self, path: str, value: object, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            self.fail(path, value, "must be a string" + (" or null" if optional else ""))
        return value

    def string(self, path: str, value: object) -> str:
        if not isinstance(value, str):
            self.fail(path, value, "must be a string")
        return value

    def count(self, path: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(path, value, "must be a whole number, 0 or more")
        return value

    def choice(self, path: str, value: object, allowed: tuple[str | None, ...]) -> str | None:
        if not (value is None or isinstance(value, str)) or value not in allowed:
            shown = ", ".join("null" if a is None else repr(a) for a in allowed)
            self.fail(path, value, f"must be one of {shown}")
        return value

    def checked(self, path: str, value: object, validate: Callable[[object], int]) -> int:
        """``value`` through one of _config's validators, its message kept."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, value, f"must be an integer, not {type(value).__name__}")
        try:
            return validate(value)
        except NbreproError as error:
            self.fail(path, value, str(error).split(": ", 1)[-1])

    def digest(self, path: str, value: object) -> str:
        if not isinstance(value, str) or not _HEX_DIGEST.fullmatch(value):
            self.fail(path, value, "must be a SHA-256 hex digest (64 lower-case hex digits)")
        return value

    def strings(self, path: str, value: object) -> list[str]:
        if not isinstance(value, list):
            self.fail(path, value, f"must be a list of strings, not {type(value).__name__}")
        return [self.string(f"{path}[{index}]", item) for index, item in enumerate(value)]

    # -- the parts ---------------------------------------------------------------------

    def fingerprint(self, path: str, value: object) -> Fingerprint:
        entry = self.mapping(path, value, "a data fingerprint")
        kind = self.choice(f"{path}.kind", self.field(path, entry, "kind"), ("file", "dir"))
        size = self.count(f"{path}.size", self.field(path, entry, "size"))
        sha256 = self.digest(f"{path}.sha256", self.field(path, entry, "sha256"))
        if kind == "file":
            return FileFingerprint(kind="file", size=size, sha256=sha256)
        folder = DirFingerprint(
            kind="dir",
            files=self.count(f"{path}.files", self.field(path, entry, "files")),
            size=size,
            sha256=sha256,
        )
        if "listing" in entry:
            listing = self.mapping(f"{path}.listing", entry["listing"], "a folder listing")
            folder["listing"] = {
                name: self.digest(f"{path}.listing[{name!r}]", digest)
                for name, digest in listing.items()
            }
        if "skipped" in entry:
            folder["skipped"] = self.strings(f"{path}.skipped", entry["skipped"])
        return folder

    def gpu(self, path: str, value: object) -> Gpu:
        entry = self.mapping(path, value, "the GPU facts")
        gpu = Gpu(
            source=self.text(f"{path}.source", self.field(path, entry, "source"), optional=True),
            devices=self.strings(f"{path}.devices", self.field(path, entry, "devices")),
        )
        for key in ("cuda", "driver"):
            if key in entry:
                gpu[key] = self.text(f"{path}.{key}", entry[key], optional=True)
        if "cudnn" in entry:
            cudnn = entry["cudnn"]
            if not (cudnn is None or isinstance(cudnn, str | int)) or isinstance(cudnn, bool):
                self.fail(f"{path}.cudnn", cudnn, "must be a version (string or integer) or null")
            gpu["cudnn"] = cudnn
        if "error" in entry:
            gpu["error"] = self.string(f"{path}.error", entry["error"])
        return gpu

    def environment(self, path: str, value: object) -> Environment:
        entry = self.mapping(path, value, "the environment")

        def text(key: str) -> str:
            return self.string(f"{path}.{key}", self.field(path, entry, key))

        cpus = self.field(path, entry, "cpu_count")
        cpu_count = None if cpus is None else self.count(f"{path}.cpu_count", cpus)
        hashing = self.field(path, entry, "hash_randomization")
        if not isinstance(hashing, bool):
            self.fail(f"{path}.hash_randomization", hashing, "must be true or false")
        packages = self.mapping(
            f"{path}.packages", self.field(path, entry, "packages"), "the package versions"
        )
        environment = Environment(
            python=text("python"),
            implementation=text("implementation"),
            platform=text("platform"),
            machine=text("machine"),
            cpu=text("cpu"),
            cpu_count=cpu_count,
            hash_randomization=hashing,
            gpu=self.gpu(f"{path}.gpu", self.field(path, entry, "gpu")),
            packages={
                name: self.string(f"{path}.packages[{name!r}]", version)
                for name, version in packages.items()
            },
        )
        if "frameworks" in entry:
            frameworks = self.mapping(
                f"{path}.frameworks", entry["frameworks"], "the frameworks' facts"
            )
            environment["frameworks"] = {
                name: dict(
                    self.mapping(f"{path}.frameworks[{name!r}]", facts, "a framework's facts")
                )
                for name, facts in frameworks.items()
            }
        return environment

    def env_vars(self, path: str, value: object) -> dict[str, str | None]:
        entry = self.mapping(path, value, "the process-start variables")
        variables: dict[str, str | None] = {}
        for name, setting in entry.items():
            if name not in ENV_ALLOWLIST:
                self.fail(
                    f"{path} key",
                    name,
                    "not a process-start variable nbrepro records (allowed: "
                    + ", ".join(ENV_ALLOWLIST)
                    + ")",
                )
            variables[name] = self.text(f"{path}.{name}", setting, optional=True)
        return variables

    def finding(self, path: str, value: object) -> FindingEntry:
        entry = self.mapping(path, value, "a finding")
        severity = self.choice(
            f"{path}.severity", self.field(path, entry, "severity"), ("error", "warning", "info")
        )
        return FindingEntry(
            code=self.string(f"{path}.code", self.field(path, entry, "code")),
            severity=cast('Literal["error", "warning", "info"]', severity),
            message=self.string(f"{path}.message", self.field(path, entry, "message")),
            fix=self.string(f"{path}.fix", self.field(path, entry, "fix")),
        )

    def record(self, value: object) -> Record:
        if not isinstance(value, Mapping):
            raise RecordError(
                f'{self.where}: metadata["{KEY}"] is a {type(value).__name__}, '
                "not an nbrepro record"
            )
        schema = value.get("schema")
        if not isinstance(schema, int) or isinstance(schema, bool):
            raise RecordError(
                f'{self.where}: metadata["{KEY}"] has no integer "schema"; '
                "it was not written by nbrepro"
            )
        if schema > SCHEMA:
            raise RecordError(
                f"{self.where}: the record has schema {schema}, newer than this nbrepro reads "
                f"(schema {SCHEMA}); upgrade nbrepro"
            )
        if schema < 1:
            self.fail("schema", schema, f"must be {SCHEMA}")
        record = value

        def get(key: str) -> object:
            return self.field("", record, key)

        seed = get("seed")
        threads = get("threads")
        cell_seeds = self.mapping("cell_seeds", get("cell_seeds"), "the per-cell seeds")
        data = self.mapping("data", get("data"), "the data fingerprints")
        findings = get("findings")
        if not isinstance(findings, list):
            self.fail("findings", findings, f"must be a list, not {type(findings).__name__}")
        return Record(
            schema=schema,
            nbrepro_version=self.string("nbrepro_version", get("nbrepro_version")),
            created=self.string("created", get("created")),
            seed=None if seed is None else self.checked("seed", seed, validate_seed),
            seed_source=cast(
                'Literal["user", "auto", "sweep"] | None',
                self.choice("seed_source", get("seed_source"), ("user", "auto", "sweep", None)),
            ),
            deterministic=cast(
                'Literal["off", "warn", "strict"]',
                self.choice("deterministic", get("deterministic"), ("off", "warn", "strict")),
            ),
            per_cell=self._flag("per_cell", get("per_cell")),
            threads=None if threads is None else self.checked("threads", threads, validate_threads),
            cell_seeds={
                cell: self.checked(f"cell_seeds[{cell!r}]", seed, validate_seed)
                for cell, seed in cell_seeds.items()
            },
            env_vars=self.env_vars("env_vars", get("env_vars")),
            environment=self.environment("environment", get("environment")),
            data={
                path: self.fingerprint(f"data[{path!r}]", fingerprint)
                for path, fingerprint in data.items()
            },
            findings=[
                self.finding(f"findings[{index}]", finding)
                for index, finding in enumerate(findings)
            ],
        )

    def _flag(self, path: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(path, value, "must be true or false")
        return value


def validate_record(value: object, where: str = "the notebook") -> Record:
    """``value`` (a ``metadata["nbrepro"]`` as read from a file) as a checked :class:`Record`.

    Returns a new record of plain dicts and lists; keys a newer nbrepro of the same schema
    may add are left out.

    Raises:
        RecordError: any key missing or any value of the wrong type or range, naming the
            key path and the value (``the notebook: record: seed is -1: ...``); a record
            of a newer schema, or something that is not an nbrepro record at all.
    """
    return _Reader(where).record(value)
