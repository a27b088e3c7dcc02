"""``nbrepro explain`` / ``verify --explain`` on real notebooks and kernels, and its recorder.

Each notebook in tests/notebooks/explain/ is named for the divergence it has; the tests check
that the explanation names the right operation (or variable), cell, line and kind of cause.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbrepro_cli import nbrepro_command

from nbrepro.commands.explain import Explanation, explain
from nbrepro.commands.verify import Outcome

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks" / "explain"

pytestmark = pytest.mark.kernel


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """Copies of the explain notebooks (the kernels run in their folder)."""
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        shutil.copy(notebook, tmp_path)
    return tmp_path


def explained(folder: Path, name: str, **options: int) -> Explanation:
    result = explain(folder / f"{name}.ipynb", timeout=300, **options)
    assert result.error is None, result.report()
    return result


def test_clock_feeding_a_tensor_is_named_with_its_argument(notebooks: Path) -> None:
    """time.time() as torch.full's fill value: aten::full, cell 2 line 3, `fill_value`."""
    pytest.importorskip("torch")
    result = explained(notebooks, "clock_feeds_a_tensor")
    found = result.operation
    assert result.status is Outcome.NOT_REPRODUCIBLE
    assert found is not None, result.report()
    assert found.operator == "aten::full"
    assert found.outputs == "(3,) torch.float64 on cpu"
    assert (found.place.cell and found.place.cell.id, found.place.line) == ("stamp", 3)
    assert found.place.source == "stamp = torch.full((3,), time.time(), dtype=torch.float64)"
    assert not found.inputs_identical
    assert "`fill_value` is a Python value" in found.cause
    report = result.report()
    assert "first differing torch operation: aten::full -> (3,) torch.float64 on cpu" in report
    assert "called at cell 2, line 3: stamp = torch.full(" in report


def test_system_random_values_are_traced_to_the_tensor_built_from_them(notebooks: Path) -> None:
    """random.SystemRandom (which no seed covers) -> torch.tensor(values): aten::lift_fresh."""
    pytest.importorskip("torch")
    found = explained(notebooks, "system_random_feeds_a_tensor").operation
    assert found is not None
    assert found.operator == "aten::lift_fresh"
    assert (found.place.cell and found.place.cell.id, found.place.line) == ("draw", 2)
    assert not found.inputs_identical
    assert "builds a tensor from Python or NumPy values" in found.cause


def test_a_shuffle_that_only_permutes_is_traced_to_the_index_tensor(notebooks: Path) -> None:
    """SystemRandom().sample -> torch.tensor(order) -> x[idx]: same elements, another order."""
    pytest.importorskip("torch")
    result = explained(notebooks, "system_random_shuffle_permutes_a_tensor")
    found = result.operation
    assert found is not None, result.report()
    assert found.operator == "aten::lift_fresh"
    assert found.outputs == "(16,) torch.int64 on cpu"
    assert (found.place.cell and found.place.cell.id, found.place.line) == ("shuffle", 2)
    assert found.place.source == "idx = torch.tensor(order)"
    assert not found.inputs_identical
    assert "builds a tensor from Python or NumPy values" in found.cause
    assert "called at cell 3, line 2: idx = torch.tensor(order)" in result.report()


def test_os_urandom_bytes_are_an_input_no_torch_operation_produced(notebooks: Path) -> None:
    """torch.frombuffer over os.urandom bytes: the first op using it, its input from outside."""
    pytest.importorskip("torch")
    found = explained(notebooks, "os_urandom_feeds_a_tensor").operation
    assert found is not None
    assert found.operator == "aten::_to_copy"
    assert (found.place.cell and found.place.cell.id, found.place.line) == ("noise", 3)
    assert not found.inputs_identical
    assert "`self` is a tensor no recorded torch operation produced" in found.cause


def test_a_nondeterministic_custom_operation_with_identical_inputs(notebooks: Path) -> None:
    """A custom op adding os.urandom noise: identical inputs, the op itself is to blame."""
    pytest.importorskip("torch")
    found = explained(notebooks, "custom_op_is_nondeterministic").operation
    assert found is not None
    assert found.operator == "nbrepro_test::noisy_sum"
    assert (found.place.cell and found.place.cell.id, found.place.line) == ("reduce", 2)
    assert found.inputs_identical
    assert "the operation itself is nondeterministic" in found.cause
    assert "NBR201" in found.cause


def test_numpy_only_notebook_gets_the_first_differing_variable(notebooks: Path) -> None:
    """No torch: the first variable (in assignment order) whose value differs, and where."""
    result = explained(notebooks, "numpy_only_unseeded_generator")
    assert result.operation is None
    found = result.variable
    assert found is not None, result.report()
    assert (found.name, found.kind, found.shape) == ("sample", "numpy.ndarray", "(4,) float64")
    assert found.assigned is not None
    assert (found.assigned.cell and found.assigned.cell.id, found.assigned.line) == ("draw", 2)
    assert "first differing variable: sample (numpy.ndarray, (4,) float64)" in result.report()


def test_the_cap_names_where_it_stopped_recording(notebooks: Path) -> None:
    """A cap below the cell's operations: the message says where; variables still compared."""
    pytest.importorskip("torch")
    result = explained(notebooks, "clock_feeds_a_tensor", cap=2)
    assert result.operation is None
    assert any(
        "cap of 2 operations, at cell 2, line 3: stamp = torch.full(" in note
        for note in result.notes
    ), result.notes
    assert result.variable is not None and result.variable.name == "stamp"
    assert result.status is Outcome.NOT_REPRODUCIBLE


def test_reproducible_notebook_says_so_and_exits_0(notebooks: Path) -> None:
    pytest.importorskip("torch")
    result = nbrepro_command("explain", "reproducible_torch_reproduces.ipynb", "-q", cwd=notebooks)
    assert result.returncode == 0, result.stderr
    assert "reproducible_torch_reproduces.ipynb: reproducible: 2 runs" in result.stdout
    assert "explain" not in result.stdout


def test_verify_explain_exits_1_with_the_operation(notebooks: Path) -> None:
    pytest.importorskip("torch")
    result = nbrepro_command(
        "verify", "--explain", "clock_feeds_a_tensor.ipynb", "-q", cwd=notebooks
    )
    assert result.returncode == 1, result.stderr
    assert "first differing cell: cell 2 (id stamp)" in result.stdout
    assert "first differing torch operation: aten::full" in result.stdout


def test_a_cell_failing_under_the_recorder_is_an_error_naming_it(notebooks: Path) -> None:
    """A cell that raises only when recorded: exit 2, naming the notebook's own cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import sys, time"),
        nbformat.v4.new_code_cell(
            "assert 'nbrepro._recorder' not in sys.modules, 'recorded'\nprint(time.time())"
        ),
    ]
    notebook.cells[1].id = "clock"
    nbformat.write(notebook, notebooks / "fails_under_the_recorder.ipynb")
    result = nbrepro_command("explain", "fails_under_the_recorder.ipynb", "-q", cwd=notebooks)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(
        r"explain: error: recorded run [12]: cell 1 \(id clock\) `assert 'nbrepro._recorder' "
        r"not in sys.modules, 'recorded'` raised AssertionError: recorded under the recorder",
        result.stdout,
    ), result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["explain", "missing.ipynb"], "missing.ipynb: error: "),
        (["explain", "--max-ops", "0", "x.ipynb"], "max-ops must be at least 1, not 0"),
        (["verify", "--explain", "--max-ops", "x", "x.ipynb"], "'x' is not an integer"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = nbrepro_command(*args, "-q", cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# -- the recorder, in a plain interpreter --------------------------------------------------------


def test_recorder_waits_for_the_users_import_of_torch(run_fresh: Callable[..., list[str]]) -> None:
    """install() imports no torch; the user's import starts it; finish() stops it."""
    pytest.importorskip("torch")
    (output,) = run_fresh(
        """
        import sys
        from nbrepro import _recorder
        _recorder.install()
        print("torch" in sys.modules)
        import torch
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
        x = torch.ones(2) + 1
        x.add_(1)
        path = _recorder.finish({"x": x})
        print(len(_get_current_dispatch_mode_stack()))
        variables, trace = _recorder.read(path)
        print([trace.op_names[op] for op in trace.op])
        print(trace.metas[trace.meta[-1]], sorted(variables))
        # add_ reads x as aten::add.Tensor made it (before writing into it)
        print([(trace.in_ref[row], trace.in_arg[row]) for row in trace.inputs(2)])
        """
    )
    assert output.splitlines() == [
        "False",
        "0",
        "['aten::ones', 'aten::add.Tensor', 'aten::add_.Tensor']",
        "(2,) torch.float32 on cpu ['x']",
        "[(1, 0), (-2, 1)]",
    ]


def test_the_tensor_hash_sees_order_and_sign_but_not_layout(
    run_fresh: Callable[..., list[str]],
) -> None:
    """Each case's two tensors hash alike or apart as stated, on both hashing paths (CPU
    tensors up to 16 kB as bytes, larger ones as weighted lanes, over 2**20 lanes in chunks)."""
    pytest.importorskip("torch")
    (output,) = run_fresh(
        """
        import warnings
        import torch
        from nbrepro import _recorder
        warnings.simplefilter("ignore")  # quantized tensors are deprecated
        recorder = _recorder._Recorder(0)
        recorder.torch = torch
        torch.manual_seed(0)
        wrong = []
        def differ(name, a, b):
            if recorder.hash(a) == recorder.hash(b) or recorder.hash(a) == 0:
                wrong.append(f"{name}: equal")
        def alike(name, a, b):
            if recorder.hash(a) != recorder.hash(b):
                wrong.append(f"{name}: different")
        for n in (16, 100_000, 1_100_000):
            x = torch.randn(n)
            alike(f"{n} clone", x, x.clone())
            differ(f"{n} swap", x, x[torch.tensor([1, 0, *range(2, n)])])
            differ(f"{n} permutation", x, x[torch.randperm(n)])
            differ(f"{n} signs", x, -x)
            differ(f"{n} float64 signs", x.double(), -x.double())
            differ(f"{n} bfloat16 signs", x.bfloat16(), -x.bfloat16())
            differ(f"{n} index permutation", torch.arange(n), torch.randperm(n))
            m = x.view(-1, 4)
            alike(f"{n} transposed view", m.t(), m.t().contiguous())
            differ(f"{n} transposed", m.t().contiguous(), m.contiguous().view(4, -1))
            differ(f"{n} offset", x[1:], x[:-1])
            differ(f"{n} one bit", x, (x.view(torch.int32) ^ 1).view(torch.float32))
        big = torch.randn(1_100_000)
        swapped = big.clone()
        swapped[[5, (1 << 20) + 5]] = swapped[[(1 << 20) + 5, 5]]
        differ("swap across chunks", big, swapped)
        odd = torch.randint(0, 100, (20_001,), dtype=torch.int8)
        differ("odd int8 permutation", odd, odd.flip(0))
        signs = torch.tensor([1.0, -1.0] * 8)
        differ("+-1", signs, -signs)
        differ("bool order", torch.tensor([True, False] * 4), torch.tensor([False, True] * 4))
        differ("dtype", torch.zeros(4), torch.zeros(4, dtype=torch.int32))
        differ("shape", torch.zeros(2, 3), torch.zeros(3, 2))
        differ("empty shape", torch.zeros(0, 3), torch.zeros(0, 4))
        z = torch.randn(8, dtype=torch.complex64)
        differ("conjugate", z, z.conj())
        alike("conjugate view", z.conj(), z.conj().resolve_conj())
        q = torch.quantize_per_tensor(torch.randn(8), 0.1, 0, torch.qint8)
        flipped = torch.quantize_per_tensor(q.dequantize().flip(0), 0.1, 0, torch.qint8)
        differ("quantized order", q, flipped)
        print(wrong)
        """
    )
    assert output.strip() == "[]"


def test_nothing_of_the_recorder_runs_without_explain(run_fresh: Callable[..., list[str]]) -> None:
    """Loading nbrepro and seeding leaves torch's dispatch untouched and the recorder unloaded."""
    pytest.importorskip("torch")
    (output,) = run_fresh(
        """
        import sys
        import nbrepro, torch
        nbrepro.seed(1, deterministic=True)
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
        torch.ones(2) * 3
        print(len(_get_current_dispatch_mode_stack()), "nbrepro._recorder" in sys.modules)
        """
    )
    assert output.split() == ["0", "False"]


@pytest.mark.gpu
@pytest.mark.torch
def test_cuda_index_add_with_atomics_is_a_nondeterministic_operation(notebooks: Path) -> None:
    """index_add_ on CUDA, --deterministic off: identical inputs, the op named with its switch."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():  # type: ignore[attr-defined]
        pytest.skip("needs a CUDA device")
    found = explained(notebooks, "cuda_index_add_is_nondeterministic").operation
    assert found is not None
    assert found.operator == "aten::index_add_"
    assert found.outputs == "(8,) torch.float32 on cuda:0"
    assert (found.place.cell and found.place.cell.id, found.place.line) == ("accumulate", 4)
    assert found.inputs_identical
    assert "--deterministic" in found.cause and "NBR201" in found.cause


def test_a_generator_argument_is_compared_by_its_state_not_its_address() -> None:
    """torch.rand(..., generator=g): two generators in the same state hash alike (their reprs
    hold only their addresses), one in another state does not; other reprs lose addresses."""
    torch = pytest.importorskip("torch")
    from nbrepro._recorder import _scalar_hash

    first, second = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert repr(first) != repr(second)
    assert _scalar_hash(first) == _scalar_hash(second)
    second.manual_seed(4)
    assert _scalar_hash(first) != _scalar_hash(second)
    torch.rand(2, generator=first)  # the state moves on
    assert _scalar_hash(first) != _scalar_hash(torch.Generator().manual_seed(3))
    assert _scalar_hash(object()) == _scalar_hash(object())
    assert _scalar_hash(0.5) != _scalar_hash(0.25)


def test_hash_buffers_of_ended_threads_and_of_a_finished_recording_are_freed() -> None:
    """Each hashing thread gets a buffer; a thread that ended loses it once another is made,
    and finish() frees them all: the recorder's memory stays bounded."""
    import threading

    torch = pytest.importorskip("torch")
    from nbrepro import _recorder

    data = torch.arange(1 << 15, dtype=torch.int32)
    worker = threading.Thread(target=_recorder._lane_hash, args=(torch, data))
    worker.start()
    worker.join()
    assert any(key[1] == worker.ident for key in _recorder._SCRATCH)
    _recorder._lane_hash(torch, data)
    assert [key[1] for key in _recorder._SCRATCH] == [threading.get_ident()]
    path = _recorder.finish({})
    Path(path).unlink()
    assert not _recorder._SCRATCH and not _recorder._WEIGHTS
