"""The findings engine: what still stands between this session and a reproducible run.

Two kinds of check, both cheap enough to run after every cell:

- a static look at the cell that just ran (one ``ast.parse``): clock- or entropy-derived
  seeds, ``uuid4``/``os.urandom`` values, unsorted directory listings, generators nbrepro
  cannot seed, DataLoader workers and ``tf.data`` pipelines without controlled seeding,
  random draws made before the experiment seed was set;
- a look at the live process: determinism switches of the frameworks that are imported.

Static checks recognise the usual spellings (``np.random.rand``, ``torch.randperm``,
``os.listdir``, ``Path(...).iterdir()``), not every alias a user might invent.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbrepro import _findings as codes
from nbrepro._backends import load_backends
from nbrepro._findings import Finding, Severity
from nbrepro._session import Session

# Calls whose arguments are seeds: a clock or entropy value inside them makes the seed vary.
_SEED_CALLS = frozenset(
    {
        "seed", "manual_seed", "manual_seed_all", "set_seed", "set_random_seed",
        "default_rng", "RandomState", "Random", "PCG64", "PCG64DXSM", "MT19937", "Philox",
        "SFC64", "SeedSequence", "from_seed", "PRNGKey", "key", "fold_in", "wrap_key_data",
    }
)  # fmt: skip
_SEED_KEYWORDS = frozenset({"seed", "random_state", "random_seed", "rng", "generator_seed"})
_CLOCK = frozenset(
    {
        "time.time", "time.time_ns", "time.monotonic", "time.perf_counter",
        "datetime.now", "datetime.datetime.now", "datetime.utcnow",
        "datetime.datetime.utcnow", "datetime.today", "date.today", "datetime.date.today",
    }
)  # fmt: skip
_ENTROPY = frozenset(
    {
        "uuid.uuid1", "uuid.uuid4", "uuid1", "uuid4", "os.urandom", "urandom",
        "secrets.token_bytes", "secrets.token_hex", "secrets.token_urlsafe",
        "secrets.randbits", "secrets.randbelow", "secrets.choice", "random.SystemRandom",
        "SystemRandom",
    }
)  # fmt: skip
_LISTING_FUNCTIONS = frozenset({"os.listdir", "listdir", "os.scandir", "scandir", "glob.glob",
                                "glob.iglob", "iglob"})  # fmt: skip
_LISTING_METHODS = frozenset({"iterdir", "glob", "rglob"})
# Bit generators and legacy RandomState: with no seed they read OS entropy, and nbrepro only
# covers default_rng() and random.Random().
_UNCOVERED = frozenset({"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64", "SeedSequence",
                        "RandomState"})  # fmt: skip
_DRAW_PREFIXES = ("random.", "np.random.", "numpy.random.", "tf.random.", "tensorflow.random.")
_TORCH_DRAWS = frozenset(
    {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "rand_like",
     "randn_like", "randint_like", "poisson"}
)  # fmt: skip
_TF_DATA_METHODS = frozenset({"map", "interleave", "batch", "padded_batch", "parallel_interleave"})


def dotted_name(node: ast.AST) -> str:
    """``np.random.rand`` for the expression ``np.random.rand``; ``""`` if not a plain name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _last(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _is_draw(name: str) -> bool:
    if name.startswith(_DRAW_PREFIXES):
        return not name.endswith((".seed", ".set_seed", ".default_rng", ".Random",
                                  ".get_global_generator", ".Generator", ".getstate",
                                  ".setstate", ".get_state", ".set_state"))  # fmt: skip
    return (
        name.startswith(("torch.", "th."))
        and name.count(".") == 1
        and (_last(name) in _TORCH_DRAWS)
    )


@dataclass
class CellReport:
    """What the static look at one cell found."""

    findings: list[Finding] = field(default_factory=list)
    draws: bool = False  #: the cell draws random numbers from a global generator


class _CellVisitor(ast.NodeVisitor):
    def __init__(self, cell: str) -> None:
        self.cell = cell
        self.report = CellReport()
        self._in_seed: int = 0
        self._sorted_calls: set[int] = set()
        self._sorted_names: set[str] = set()
        self._listings: list[tuple[ast.Call, str]] = []
        self._assigned_to: dict[int, str] = {}  # id of a call -> the name it is assigned to

    def add(self, code: str, severity: Severity, message: str, fix: str) -> None:
        finding = Finding(code, severity, f"{message} in {self.cell}", fix)
        if finding not in self.report.findings:
            self.report.findings.append(finding)

    def visit_Assign(self, node: ast.Assign) -> None:
        # `x.deterministic = False` on tf.data.Options turns off ordered parallel processing.
        for target in node.targets:
            if (
                isinstance(target, ast.Attribute)
                and target.attr in ("deterministic", "experimental_deterministic")
                and isinstance(node.value, ast.Constant)
                and node.value.value is False
            ):
                self._tf_data_nondeterministic()
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self._assigned_to[id(node.value)] = node.targets[0].id
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = dotted_name(node.func)
        last = (
            _last(name)
            if name
            else (node.func.attr if isinstance(node.func, ast.Attribute) else "")
        )
        if name == "sorted" and node.args:
            self._sorted_calls.add(id(node.args[0]))
        if last == "sort" and isinstance(node.func, ast.Attribute):
            target = dotted_name(node.func.value)
            if target:
                self._sorted_names.add(target)
        self._check_call(node, name, last)
        seeding = last in _SEED_CALLS
        for argument in node.args:
            self._visit_in_seed(argument, seeding)
        for keyword in node.keywords:
            self._visit_in_seed(keyword.value, seeding or keyword.arg in _SEED_KEYWORDS)
        self.visit(node.func)

    def _visit_in_seed(self, node: ast.AST, seeding: bool) -> None:
        self._in_seed += seeding
        self.visit(node)
        self._in_seed -= seeding

    def _check_call(self, node: ast.Call, name: str, last: str) -> None:
        if name in _CLOCK or name in _ENTROPY:
            if self._in_seed:
                self.add(
                    codes.CLOCK_SEED,
                    Severity.ERROR,
                    f"a seed is made from {name}(), which differs in every run,",
                    "use a fixed seed, or nbrepro.derive_seed(...) for a new independent one",
                )
            elif name in _ENTROPY:
                self.add(
                    codes.ENTROPY_VALUE,
                    Severity.WARNING,
                    f"{name}() gives a different value in every run",
                    "derive ids from data or a counter; for randomness use a seeded "
                    "generator (nbrepro.rng(...))",
                )
        if name in _LISTING_FUNCTIONS or (
            last in _LISTING_METHODS
            and isinstance(node.func, ast.Attribute)
            and not name.startswith("glob.")
        ):
            self._listings.append((node, name or f"….{last}"))
        if last in _UNCOVERED and not node.args and not node.keywords:
            self.add(
                codes.UNCOVERED_GENERATOR,
                Severity.WARNING,
                f"{name or last}() without a seed reads OS entropy and nbrepro cannot seed it,",
                f"pass a seed: {last}(nbrepro.derive_seed(...)), or use np.random.default_rng()",
            )
        if last == "from_non_deterministic_state":
            self.add(
                codes.TF_NONDETERMINISTIC_GENERATOR,
                Severity.ERROR,
                "tf.random.Generator.from_non_deterministic_state() is seeded from OS entropy",
                "use tf.random.Generator.from_seed(nbrepro.derive_seed(...)) or "
                "tf.random.get_global_generator()",
            )
        if last == "DataLoader":
            keywords = {k.arg: k.value for k in node.keywords}
            workers = keywords.get("num_workers")
            has_workers = workers is not None and not (
                isinstance(workers, ast.Constant) and workers.value == 0
            )
            if has_workers and "worker_init_fn" not in keywords:
                self.add(
                    codes.DATALOADER_WORKERS_UNSEEDED,
                    Severity.WARNING,
                    "a DataLoader starts worker processes without worker_init_fn: under DDP "
                    "every rank, and in every worker unseeded generators, repeat each other",
                    "DataLoader(..., worker_init_fn=nbrepro.worker_init_fn)",
                )
        if last in _TF_DATA_METHODS and any(
            k.arg == "deterministic"
            and isinstance(k.value, ast.Constant)
            and k.value.value is False
            for k in node.keywords
        ):
            self._tf_data_nondeterministic()
        if _is_draw(name):
            self.report.draws = True

    def _tf_data_nondeterministic(self) -> None:
        self.add(
            codes.TF_DATA_NONDETERMINISTIC,
            Severity.WARNING,
            "a tf.data pipeline allows nondeterministic order (deterministic=False)",
            "drop deterministic=False; with op determinism on, tf.data keeps its order",
        )

    def finish(self) -> CellReport:
        for node, name in self._listings:
            target = self._assigned_to.get(id(node))
            if id(node) in self._sorted_calls or (target and target in self._sorted_names):
                continue
            self.add(
                codes.UNSORTED_LISTING,
                Severity.WARNING,
                f"{name}() returns files in file-system order, which differs between machines,",
                f"sort the result: sorted({name}(...))",
            )
        return self.report


def check_source(source: str, cell: str) -> CellReport:
    """The static findings of one cell's code (IPython syntax allowed)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            tree = ast.parse(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
        except Exception:  # not Python after all (a %%bash cell, say): nothing to check
            return CellReport()
    visitor = _CellVisitor(cell)
    visitor.visit(tree)
    return visitor.finish()


def audit_cell(session: Session, source: str, cell: str | None, key: str | None = None) -> None:
    """Check the cell that just ran; keep its findings under ``key`` (its id, else its label)."""
    label = cell or "this cell"
    report = check_source(source, label)
    session.cell_findings[key or label] = report.findings
    if report.draws and not session.seeded:
        session.draws_before_seed.append(label)


def runtime_findings(session: Session, namespace: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings about the live process: each imported framework's adapter audits itself."""
    found: list[Finding] = []
    # Each imported framework's adapter checks its own switches (torch's deterministic
    # algorithms and cuDNN autotuning, TensorFlow's op determinism, ...).
    for backend in session.backends or load_backends():
        if backend.loaded():
            found += backend.audit()
    if namespace is not None:
        found += _early_default_rng(session, namespace)
    return found


def _early_default_rng(session: Session, namespace: Mapping[str, Any]) -> list[Finding]:
    # The function NumPy had before nbrepro covered it, if nbrepro did.
    original = next(
        (getattr(b, "original_default_rng", None) for b in session.active if b.name == "numpy"),
        None,
    )
    if original is None:
        return []
    names = [name for name, value in list(namespace.items()) if value is original]
    return [
        Finding(
            codes.DEFAULT_RNG_IMPORTED_EARLY,
            Severity.WARNING,
            f"{name!r} is NumPy's default_rng imported by name before nbrepro covered it: "
            "calling it with no seed reads OS entropy",
            "call np.random.default_rng() through the module, or import it after %repro_seed",
        )
        for name in names
    ]


def seed_findings(session: Session) -> list[Finding]:
    """NBR001/NBR002: no experiment seed, or random draws made before it was set."""
    drawing = list(dict.fromkeys(session.draws_before_seed))
    more = f" and {len(drawing) - 3} more cells" if len(drawing) > 3 else ""
    cells = ", ".join(drawing[:3]) + more
    if not session.seeded:
        message = "no experiment seed yet" + (
            f"; random numbers were drawn in {cells}" if cells else ""
        )
        severity = Severity.WARNING if cells else Severity.INFO
        return [Finding(codes.NO_SEED, severity, message, "run %repro_seed <seed> first")]
    if cells:
        return [
            Finding(
                codes.DRAWN_BEFORE_SEED,
                Severity.WARNING,
                f"random numbers were drawn in {cells} before %repro_seed ran",
                "put %repro_seed in the first cells, restart the kernel and run all",
            )
        ]
    return []


def audit(session: Session, namespace: Mapping[str, Any] | None = None) -> list[Finding]:
    """Every finding now, most severe first: see ``nbrepro.audit``."""
    found: list[Finding] = []
    for group in (
        seed_findings(session),
        session.findings,
        *session.cell_findings.values(),
        runtime_findings(session, namespace),
    ):
        _extend_unique(found, group)
    return sorted(found, key=lambda f: f.severity.rank)


def _extend_unique(found: list[Finding], new: Iterable[Finding]) -> None:
    for finding in new:
        if finding not in found:
            found.append(finding)
