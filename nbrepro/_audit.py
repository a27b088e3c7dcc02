"""The findings engine: what still stands between this session and a reproducible run.

Two kinds of check, both cheap enough to run after every cell:

- a static look at the cell that just ran (one ``ast.parse``): clock- or entropy-derived
  seeds, ``uuid4``/``os.urandom`` values, unsorted directory listings, a set's iteration
  order used while hash randomisation is on, the clock deciding control flow or indexing
  data, generators nbrepro cannot seed, DataLoader workers and ``tf.data`` pipelines without
  controlled seeding, random draws made before the experiment seed was set;
- a look at the live process: determinism switches of the frameworks that are imported.

Static checks recognise the usual spellings (``np.random.rand``, ``torch.randperm``,
``os.listdir``, ``Path(...).iterdir()``), not every alias a user might invent.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nbrepro import _findings as codes
from nbrepro import _process_settings
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
        "datetime.datetime.today", "time.localtime", "time.gmtime", "time.ctime",
        "time.strftime", "pd.Timestamp.now", "pandas.Timestamp.now", "Timestamp.now",
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
# Every generator NumPy, random and TensorFlow make without a seed, and torch.seed(), take the
# experiment stream's next seed while seeded. A torch.Generator's .seed() method reseeds from OS
# entropy, and torch's Generator type cannot be covered: those are flagged.
_TORCH_GENERATORS = frozenset({"torch.Generator", "th.Generator"})
_DRAW_PREFIXES = ("random.", "np.random.", "numpy.random.", "tf.random.", "tensorflow.random.")
_TORCH_DRAWS = frozenset(
    {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "rand_like",
     "randn_like", "randint_like", "poisson"}
)  # fmt: skip
_TF_DATA_METHODS = frozenset({"map", "interleave", "batch", "padded_batch", "parallel_interleave"})
# Calls that keep the order of what they are given (the first argument; zip: every one).
_ORDERED_CONSUMERS = frozenset({"list", "tuple", "enumerate", "zip", "iter", "map", "filter",
                                "fromkeys", "join"})  # fmt: skip
# Calls whose result does not depend on the order of what they are given.
_ORDER_FREE = frozenset({"sorted", "len", "set", "frozenset", "min", "max", "any", "all", "sum",
                         "Counter"})  # fmt: skip
_SET_METHODS = frozenset({"union", "intersection", "difference", "symmetric_difference", "copy"})
# A branch that only prints, logs or saves under a clock condition changes no result
# (progress lines, checkpoints every few minutes).
_REPORTING = frozenset({"print", "display", "info", "debug", "warning", "log", "write",
                        "set_postfix", "set_description", "save", "save_weights",
                        "save_checkpoint", "savefig", "flush"})  # fmt: skip
_SAMPLE = 16  # elements looked at to tell whether a live container holds str or bytes


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


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 50 else text[:49] + "…"


def _order_varies(value: object) -> bool:
    """Whether iterating ``value`` in order could differ between runs with a new hash seed:
    it holds ``str``/``bytes`` (or tuples of them) among its first elements.

    Only the builtin containers are looked into, and NumPy-style arrays by their dtype: an
    iterator, a generator or a data loader would be consumed (or start workers) by a look.
    Anything else may vary.
    """
    if isinstance(value, set | frozenset | list | tuple | dict):
        return any(
            isinstance(e, str | bytes)
            or (isinstance(e, tuple) and any(isinstance(i, str | bytes) for i in e))
            for e in itertools.islice(value, _SAMPLE)
        )
    dtype = getattr(type(value), "dtype", None) and getattr(value, "dtype", None)
    kind = getattr(dtype, "kind", None)
    return not isinstance(kind, str) or kind in "USO"  # only text and object arrays hold str


@functools.cache
def hash_randomised() -> bool:
    """Whether this process hashes ``str`` and ``bytes`` with a random seed (fixed at start)."""
    return bool(_process_settings.hash_seed_findings())


@dataclass
class CellReport:
    """What the static look at one cell found."""

    findings: list[Finding] = field(default_factory=list)
    draws: bool = False  #: the cell draws random numbers from a global generator


class _CellVisitor(ast.NodeVisitor):
    def __init__(
        self, cell: str, hash_randomised: bool, namespace: Mapping[str, Any] | None
    ) -> None:
        self.cell = cell
        self.report = CellReport()
        self._in_seed: int = 0
        self._sorted_calls: set[int] = set()
        self._sorted_names: set[str] = set()
        self._listings: list[tuple[ast.Call, str]] = []
        self._assigned_to: dict[int, str] = {}  # id of a call -> the name it is assigned to
        self._hash_randomised = hash_randomised
        self._namespace = namespace
        self._set_names: set[str] = set()  # names this cell bound to a set, so far
        self._order_free: set[int] = set()  # ids of arguments of order-free calls
        self._clock_names: set[str] = set()  # names this cell bound to a clock value, so far
        self._clock_reads = 0  # clock calls and clock names read so far
        self._clock_source = ""  # the last of them, for the message
        self._torch_generators: set[str] = set()  # names bound to torch.Generator(...) here

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
        self._bind(node.targets, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        if node.value is not None:
            self._bind([node.target], node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.generic_visit(node)
        if isinstance(node.target, ast.Name) and self._clock_valued(node.value):
            self._clock_names.add(node.target.id)

    def _bind(self, targets: list[ast.expr], value: ast.expr) -> None:
        """Follow which names hold a set or a clock value, for the rest of the cell."""
        if len(targets) == 1 and isinstance(targets[0], ast.Name):  # the usual `x = ...`
            names = [targets[0].id]
            is_set = self._is_set(value)
        else:  # unpacking, attributes, subscripts: no longer a set or a clock value
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            is_set = False
        from_clock = self._clock_valued(value)
        for name in names:
            (self._clock_names.add if from_clock else self._clock_names.discard)(name)
            (self._set_names.add if is_set else self._set_names.discard)(name)

    # -- NBR404: a set's order ------------------------------------------------------------

    def _is_set(self, node: ast.AST) -> bool:
        """Whether ``node`` makes a set that may hold ``str`` or ``bytes``."""
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name in ("set", "frozenset"):
                return not node.args or self._may_hold_str(node.args[0])
            return (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in _SET_METHODS
                and self._is_set(node.func.value)
            )
        if isinstance(node, ast.Set):
            return any(self._may_hold_str(e) for e in node.elts)
        if isinstance(node, ast.SetComp):
            return True
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.BitOr | ast.BitAnd | ast.Sub | ast.BitXor
        ):
            return self._is_set(node.left) and (
                not isinstance(node.op, ast.BitOr | ast.BitXor) or self._may_hold_str(node.right)
            )
        if isinstance(node, ast.Name):
            live = self._live(node.id)
            if isinstance(live, set | frozenset):
                return _order_varies(live)
            return node.id in self._set_names
        return False

    def _may_hold_str(self, node: ast.AST) -> bool:
        """False where ``node`` provably holds no ``str``/``bytes``: numbers, ``range``."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str | bytes)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return any(self._may_hold_str(e) for e in node.elts)
        if isinstance(node, ast.Call) and dotted_name(node.func) == "range":
            return False
        if isinstance(node, ast.Name):
            live = self._live(node.id)
            return live is None or _order_varies(live)
        return True

    def _live(self, name: str) -> Any:
        return None if self._namespace is None else self._namespace.get(name)

    def _set_order(self, node: ast.AST, use: str, *parts: ast.AST) -> None:
        """NBR404 if ``node`` is a set that may hold str; ``use`` with ``parts`` filled in
        says what takes its order (unparsed only then: it costs more than the check)."""
        if self._hash_randomised and self._is_set(node):
            self.add(
                codes.SET_ORDER,
                Severity.WARNING,
                f"{use.format(*map(_short, parts))} follows a set's order, which for str "
                "differs in every run (hash randomisation is on),",
                "iterate sorted(...) instead",
            )

    def visit_For(self, node: ast.For) -> None:
        self._set_order(node.iter, "for {} in {}", node.target, node.iter)
        self._clock_test(node.iter, "decides how often a loop runs")
        self.visit(node.target)
        self._visit_all(node.body + node.orelse)

    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def _comprehension(self, node: ast.ListComp | ast.DictComp | ast.GeneratorExp) -> None:
        if id(node) not in self._order_free:
            for generator in node.generators:
                self._set_order(generator.iter, "a comprehension over {}", generator.iter)
        self.generic_visit(node)

    visit_ListComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Starred(self, node: ast.Starred) -> None:
        self._set_order(node.value, "*{}", node.value)
        self.generic_visit(node)

    # -- NBR405: the clock deciding what runs or which data is used ----------------------

    def _clock_valued(self, node: ast.AST) -> bool:
        """Whether ``node`` is a clock value (``time.time() - start``, ``now().second``), not
        merely an expression that reads the clock somewhere (a dict of timings)."""
        if isinstance(node, ast.Name):
            return node.id in self._clock_names
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            if name in _CLOCK:
                return True
            if name in ("int", "float", "round", "abs"):
                return bool(node.args) and self._clock_valued(node.args[0])
            return isinstance(node.func, ast.Attribute) and self._clock_valued(node.func.value)
        if isinstance(node, ast.BinOp):
            return self._clock_valued(node.left) or self._clock_valued(node.right)
        if isinstance(node, ast.UnaryOp):
            return self._clock_valued(node.operand)
        if isinstance(node, ast.Attribute | ast.Subscript):
            return self._clock_valued(node.value)
        return False

    def _clock_test(self, node: ast.AST, what: str, body: list[ast.stmt] | None = None) -> None:
        reads = self._clock_reads
        self._clock_source = ""
        self.visit(node)
        if self._clock_reads > reads and not (body is not None and _only_reports(body)):
            self.add(
                codes.CLOCK_DECIDES,
                Severity.WARNING,
                f"the clock ({self._clock_source}) {what}",
                "decide by data, a counter or a step count; use the clock only to time things",
            )

    def visit_If(self, node: ast.If) -> None:
        self._clock_test(node.test, "decides which branch runs", node.body + node.orelse)
        self._visit_all(node.body + node.orelse)

    def visit_While(self, node: ast.While) -> None:
        self._clock_test(node.test, "decides how long a loop runs")
        self._visit_all(node.body + node.orelse)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._clock_test(node.test, "decides which value is used")
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.visit(node.target)
        self.visit(node.iter)
        for condition in node.ifs:
            self._clock_test(condition, "decides which items are kept")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        self._clock_test(node.slice, "picks which data is used (an index)")

    def visit_Compare(self, node: ast.Compare) -> None:
        reads = self._clock_reads
        self.generic_visit(node)
        if all(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            self._clock_reads = reads  # `start is None` asks whether, not when

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id in self._clock_names:
            self._clock_reads += 1
            self._clock_source = self._clock_source or f"{node.id}, from the clock"

    def _visit_all(self, nodes: list[ast.stmt]) -> None:
        for each in nodes:
            self.visit(each)

    def visit_Call(self, node: ast.Call) -> None:
        name = dotted_name(node.func)
        last = (
            _last(name)
            if name
            else (node.func.attr if isinstance(node.func, ast.Attribute) else "")
        )
        if name == "sorted" and node.args:
            self._sorted_calls.add(id(node.args[0]))
        if last in _ORDER_FREE and node.args:
            self._order_free.add(id(node.args[0]))
        if last in _ORDERED_CONSUMERS and node.args and (name or last == "join"):
            for argument in node.args if last == "zip" else node.args[:1]:
                self._set_order(argument, "{}", node)
        if last == "pop" and not node.args and isinstance(node.func, ast.Attribute):
            self._set_order(node.func.value, "{}", node)
        if name in _CLOCK:
            self._clock_reads += 1
            self._clock_source = self._clock_source or f"{name}()"
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
        if name in _TORCH_GENERATORS and id(node) in self._assigned_to:
            self._torch_generators.add(self._assigned_to[id(node)])
        if (
            last == "seed"
            and not node.args
            and not node.keywords
            and self._is_torch_generator(node)
        ):
            self.add(
                codes.UNCOVERED_GENERATOR,
                Severity.WARNING,
                "a torch.Generator's .seed() reseeds it from OS entropy, which nbrepro cannot "
                "seed,",
                "seed it: generator.manual_seed(nbrepro.derive_seed(...))",
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

    def _is_torch_generator(self, node: ast.Call) -> bool:
        if not isinstance(node.func, ast.Attribute):
            return False
        receiver = node.func.value
        if isinstance(receiver, ast.Call):
            return dotted_name(receiver.func) in _TORCH_GENERATORS
        name = dotted_name(receiver)
        return name in self._torch_generators or name.endswith("default_generator")

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


def _only_reports(body: list[ast.stmt]) -> bool:
    """Whether ``body`` only prints or logs (and restarts a timer): a progress line."""
    for statement in body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            name = dotted_name(statement.value.func) or getattr(statement.value.func, "attr", "")
            if _last(name) in _REPORTING:
                continue
        if isinstance(statement, ast.Assign) and any(
            dotted_name(n.func) in _CLOCK
            for n in ast.walk(statement.value)
            if isinstance(n, ast.Call)
        ):
            continue
        return False
    return True


def check_source(
    source: str,
    cell: str,
    *,
    hash_randomised: bool = True,
    namespace: Mapping[str, Any] | None = None,
) -> CellReport:
    """The static findings of one cell's code (IPython syntax allowed).

    ``hash_randomised``: whether a set's order of ``str`` changes between runs (NBR404).
    ``namespace``: the user's variables after the cell ran, where known; a set of numbers
    found there is not reported.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            tree = ast.parse(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
        except Exception:  # not Python after all (a %%bash cell, say): nothing to check
            return CellReport()
    visitor = _CellVisitor(cell, hash_randomised, namespace)
    visitor.visit(tree)
    return visitor.finish()


def audit_cell(
    session: Session,
    source: str,
    cell: str | None,
    key: str | None = None,
    namespace: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Check the cell that just ran; keep its findings under ``key`` (its id, else its label).

    Returns the cell's findings.
    """
    label = cell or "this cell"
    report = check_source(source, label, hash_randomised=hash_randomised(), namespace=namespace)
    session.cell_findings[key or label] = report.findings
    if report.draws and not session.seeded:
        session.draws_before_seed.append(label)
    return report.findings


def runtime_findings(session: Session, namespace: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings about the live process: each imported framework's adapter audits itself."""
    found: list[Finding] = []
    # Each imported framework's adapter checks its own switches (torch's deterministic
    # algorithms and cuDNN autotuning, TensorFlow's op determinism, ...).
    for backend in session.backends or load_backends():
        if backend.loaded():
            found += backend.audit()
    return found


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
