"""The Python API without IPython: seeding, unseeded generators, state, import behaviour."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys
import textwrap

import pytest

import nbrepro

np = pytest.importorskip("numpy")


def draws() -> list[float]:
    """One draw from every generator kind the core covers without a framework."""
    from sklearn.ensemble import RandomForestClassifier

    data = np.random.default_rng(0).random((40, 3))
    forest = RandomForestClassifier(n_estimators=3, random_state=None).fit(data, data[:, 0] > 0.5)
    items = list(range(10))
    random.shuffle(items)
    return [
        random.random(),
        random.Random().random(),
        float(np.random.rand()),
        float(np.random.default_rng().random()),
        float(forest.predict_proba(data)[:, 1].sum()),
        float(items[0]),
    ]


def test_reseeding_repeats_every_generator() -> None:
    """Seed, draw, reseed, draw: random, Random(), NumPy global, default_rng(), sklearn."""
    pytest.importorskip("sklearn")
    nbrepro.seed(42)
    first = draws()
    nbrepro.seed(42)
    assert draws() == first
    nbrepro.seed(43)
    assert all(a != b for a, b in zip(draws()[:5], first[:5], strict=True))


def test_unseeded_generators_get_distinct_recorded_seeds() -> None:
    """Each default_rng()/Random() without a seed gets the stream's next seed, recorded."""
    nbrepro.seed(5)
    a, b = np.random.default_rng(), np.random.default_rng()
    assert a.random() != b.random()
    random.Random()
    recorded = nbrepro._session.session().unseeded  # the record keeps kind and seed
    assert [d.kind for d in recorded] == ["numpy.default_rng"] * 2 + ["random.Random"]
    assert len({d.seed for d in recorded}) == 3
    assert nbrepro.status().unseeded_generators == 3


def test_explicit_seeds_are_left_alone() -> None:
    """Code that seeds its own generators gets exactly what it asked for."""
    nbrepro.seed(5)
    assert np.random.default_rng(1).random() == np.random.Generator(np.random.PCG64(1)).random()
    assert random.Random(3).random() == 0.23796462709189137
    assert type(np.random.default_rng(1)) is np.random.Generator


def test_generators_still_look_like_numpy_generators() -> None:
    """A stream-seeded generator is a numpy Generator, pickles, and copies its state."""
    nbrepro.seed(5)
    generator = np.random.default_rng()
    assert isinstance(generator, np.random.Generator)
    assert repr(generator).startswith("Generator(PCG64)")
    clone = pickle.loads(pickle.dumps(generator))
    assert clone.random() == generator.random()


def test_capture_and_restore_continue_every_sequence() -> None:
    """Pause and resume: after restore_state the same numbers come out, pickled or not."""
    nbrepro.seed(9)
    made_random, made_numpy = random.Random(), np.random.default_rng()
    draws_now = lambda: (  # noqa: E731 - a list of one-liners reads better inline
        random.random(),
        float(np.random.rand()),
        made_random.random(),
        float(made_numpy.random()),
        float(np.random.default_rng().random()),
    )
    draws_now()
    state = pickle.loads(pickle.dumps(nbrepro.capture_state()))
    expected = draws_now()
    nbrepro.restore_state(state)
    assert draws_now() == expected


def test_restore_refuses_a_foreign_state_and_changes_nothing() -> None:
    """A wrong object or a state from code that made more generators is refused whole."""
    nbrepro.seed(9)
    kept = random.Random()
    state = nbrepro.capture_state()
    nbrepro.seed(9)
    expected = random.random()
    nbrepro.seed(9)
    with pytest.raises(nbrepro.StateMismatchError, match="RNGState"):
        nbrepro.restore_state({"random": 1})  # type: ignore[arg-type]
    with pytest.raises(nbrepro.StateMismatchError, match="created without a seed"):
        nbrepro.restore_state(state)
    assert random.random() == expected
    assert kept.random() != expected


def test_reset_undoes_the_patches() -> None:
    """After reset, default_rng() and Random() are NumPy's and Python's own again."""
    original = np.random.default_rng
    nbrepro.seed(1)
    assert np.random.default_rng is not original
    nbrepro.reset()
    assert np.random.default_rng is original
    assert random.Random.seed.__module__ == "random"
    assert nbrepro.status().seed is None


def test_per_cell_needs_ipython() -> None:
    """per_cell outside IPython raises and leaves nothing seeded."""
    if "IPython" in sys.modules:
        from IPython import get_ipython

        if get_ipython() is not None:
            pytest.skip("running inside IPython")
    with pytest.raises(nbrepro.NotInIPythonError, match="IPython"):
        nbrepro.seed(1, per_cell=True)
    assert nbrepro.status().seed is None


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout."""
    import os

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_and_seed_import_no_framework() -> None:
    """`import nbrepro`, seeding and the status import no ML framework nor widget library."""
    out = run_python(
        """
        import sys, nbrepro
        nbrepro.seed(1, deterministic=True, threads=2)
        print(nbrepro.status())
        heavy = ("numpy", "torch", "tensorflow", "keras", "jax", "sklearn", "nbclient",
                 "ipywidgets", "anywidget", "IPython")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    assert out.strip().splitlines()[-1] == "[]"


def test_numpy_imported_after_seeding_is_seeded() -> None:
    """NumPy imported after nbrepro.seed() draws the same as NumPy seeded before."""
    after = run_python("import nbrepro; nbrepro.seed(3); import numpy; print(numpy.random.rand())")
    before = run_python("import numpy, nbrepro; nbrepro.seed(3); print(numpy.random.rand())")
    assert after == before


def test_hash_randomisation_is_reported_and_a_fixed_seed_is_not() -> None:
    """NBR101 appears when PYTHONHASHSEED was not fixed at process start, not otherwise."""
    code = "import nbrepro; print([f.code for f in nbrepro.seed(1).findings])"
    assert "NBR101" in run_python(code, PYTHONHASHSEED="random")
    assert "NBR101" not in run_python(code, PYTHONHASHSEED="0")
    assert "NBR101" not in run_python(code, PYTHONHASHSEED="123")
    late = "import os; os.environ['PYTHONHASHSEED'] = '0'; " + code
    assert "NBR101" in run_python(late, PYTHONHASHSEED="random")


def test_auto_seed_is_reported_as_auto() -> None:
    """No seed: the drawn seed is in the status, marked auto, and reproduces the draws."""
    status = nbrepro.seed()
    assert status.seed_source == "auto"
    first = random.random()
    nbrepro.seed(status.seed)
    assert random.random() == first
    assert "auto-assigned" in str(status)


def test_works_with_no_framework_installed() -> None:
    """With NumPy, torch and TensorFlow unimportable, seeding, state and status still work."""
    out = run_python(
        """
        import sys
        for name in ("numpy", "torch", "tensorflow", "keras", "sklearn", "threadpoolctl"):
            sys.modules[name] = None  # makes `import name` raise ImportError
        import random, nbrepro
        nbrepro.seed(4, deterministic=True, threads=2)
        a = random.random()
        state = nbrepro.capture_state()
        b = random.random()
        nbrepro.restore_state(state)
        assert random.random() == b != a
        print(nbrepro.status().frameworks[0].name, nbrepro.derive_seed("x"))
        try:
            nbrepro.rng("x")
        except nbrepro.MissingDependencyError as error:
            print(error)
        """
    )
    assert out.splitlines()[0] == f"random {nbrepro.derive_seed('x', seed=4)}"
    assert "pip install 'nbrepro[numpy]'" in out


def test_threads_fix_blas_pools_and_export_the_variables() -> None:
    """--threads resizes NumPy's BLAS pool in place and exports the thread variables."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import os

    nbrepro.seed(1, threads=1)
    pools = threadpoolctl.threadpool_info()
    assert pools and all(pool["num_threads"] == 1 for pool in pools)
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    nbrepro.reset()
    assert any(pool["num_threads"] != 1 for pool in threadpoolctl.threadpool_info()) or (
        os.cpu_count() == 1
    )
