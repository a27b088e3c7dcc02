"""``%repro_seed`` and ``%repro_status``: parse the line, call the API, show the result."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from nbrepro import _api
from nbrepro.errors import InvalidOptionError, InvalidSeedError, NotInIPythonError


@magics_class
class ReproMagics(Magics):
    """nbrepro's line magics."""

    @magic_arguments()
    @argument(
        "seed",
        nargs="?",
        default=None,
        help="experiment seed, an integer from 0 to 2147483647 (2**31-1); "
        "omitted: drawn from OS entropy, printed and recorded as auto-assigned",
    )
    @argument(
        "--deterministic",
        action="store_true",
        help="deterministic kernels: torch deterministic algorithms (nondeterministic ops warn "
        "and are recorded), cuDNN benchmark off, TensorFlow op determinism, cuBLAS workspace",
    )
    @argument("--strict", action="store_true", help="like --deterministic, but such ops raise")
    @argument(
        "--per-cell",
        action="store_true",
        help="reseed every PRNG before each cell from the experiment seed and the cell's id",
    )
    @argument("--threads", metavar="N", default=None, help="fix intra/inter-op thread counts")
    @line_magic
    def repro_seed(self, line: str) -> None:
        """Seed every PRNG now, and each framework when it is imported."""
        args = parse_argstring(self.repro_seed, line)
        try:
            status = _api.seed(
                args.seed,
                deterministic=args.deterministic,
                strict=args.strict,
                per_cell=args.per_cell,
                threads=args.threads,
            )
        except (InvalidSeedError, InvalidOptionError, NotInIPythonError) as error:
            raise UsageError(f"%repro_seed: {error}") from error
        if status.seed_source == "auto":
            print(
                f"nbrepro: no seed given; drew {status.seed} from OS entropy. "
                f"To repeat this run: %repro_seed {status.seed}"
            )
        print(status)

    @line_magic
    def repro_status(self, line: str) -> None:
        """Show the seed, options, seeded frameworks and leftover findings."""
        if line.strip():
            raise UsageError(f"%repro_status takes no arguments, got {line.strip()!r}")
        print(_api.status())
