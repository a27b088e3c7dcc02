"""The kernel side of ``nbrepro explain``: a trace of every torch operation, as hashes.

Nothing here runs in ordinary cells. ``nbrepro explain`` executes a copy of the notebook that
starts with :func:`install` and ends with :func:`finish`; this module is imported only there.
:func:`install` never imports torch: when the notebook has not imported it yet, a post-import
hook (:mod:`nbrepro._import_hooks`) starts the recorder the moment the notebook's own code does.

The recorder is a ``TorchDispatchMode``: every ATen operation passes through it, factory
functions included. Per operation it keeps a few dozen bytes in flat arrays: the operator,
where in the notebook it was called (cell execution count and line), a hash of its outputs,
and for each input a reference to the operation that produced it (or "none": a tensor torch
did not make, such as ``torch.from_numpy``'s) with that input's hash, and the hash of each
non-tensor argument (``time.time()`` passed to ``torch.full``). Outputs are hashed where they
live (a position-weighted sum over their bit pattern on the tensor's device, see
:meth:`_Recorder.hash`); only the hash comes back. The hash sees order: outputs holding the
same elements in another order (a shuffle, a permutation) count as different. A view's hash
is that of its inputs and arguments, without reading its data. In-place operations are seen
with their inputs as they were before the operation wrote into them. A cap on the number of
operations bounds the memory; reaching it stops recording and remembers the cell.

:func:`finish` also fingerprints the notebook's variables (the variable-level report for
notebooks without torch work) and writes everything to a temporary file whose path it returns.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import struct
import sys
import tempfile
import threading
import zlib
from array import array
from types import CodeType, FrameType, ModuleType
from typing import Any

#: Default cap on recorded operations (about 60 bytes each: some 60 MB at the cap).
DEFAULT_CAP = 1_000_000

_MASK = (1 << 64) - 1
#: Input references that are not an operation's index.
EXTERNAL = -1  #: a tensor no recorded operation produced
SCALAR = -2  #: a non-tensor argument (its hash is that of its repr)

_ARRAYS = ("op", "loc", "meta", "out", "in_start", "in_ref", "in_hash", "in_arg")


class Trace:
    """What the recorder collected, in flat arrays (one row per operation / per input)."""

    def __init__(self) -> None:
        self.op = array("i")  #: operator id (index into ``op_names``)
        self.loc = array("i")  #: location id (index into ``locations``)
        self.meta = array("i")  #: output description id (index into ``metas``)
        self.out = array("Q")  #: combined hash of the operation's outputs
        self.in_start = array("I")  #: first row of this operation's inputs
        self.in_ref = array("q")  #: producing operation, EXTERNAL or SCALAR
        self.in_hash = array("Q")  #: the input's hash
        self.in_arg = array("h")  #: which argument of the operator it was
        self.op_names: list[str] = []
        self.op_args: list[list[str]] = []
        self.locations: list[tuple[int, int, str]] = []  #: (execution count, line, file)
        self.metas: list[str] = []  #: outputs' shapes, dtypes and devices, as reports show them
        self.capped_at: int | None = None  #: location id of the operation the cap refused
        self.torch = False  #: whether torch was ever recorded

    def to_bytes(self) -> bytes:
        """The trace as one JSON header line followed by the arrays' bytes."""
        header = {
            "op_names": self.op_names,
            "op_args": self.op_args,
            "locations": self.locations,
            "metas": self.metas,
            "capped_at": self.capped_at,
            "torch": self.torch,
            "arrays": [
                (name, getattr(self, name).typecode, len(getattr(self, name))) for name in _ARRAYS
            ],
        }
        parts = [json.dumps(header).encode() + b"\n"]
        parts += [getattr(self, name).tobytes() for name in _ARRAYS]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Trace:
        """Read what :meth:`to_bytes` wrote."""
        line, _, rest = data.partition(b"\n")
        header = json.loads(line)
        trace = cls()
        trace.op_names = header["op_names"]
        trace.op_args = header["op_args"]
        trace.locations = [tuple(location) for location in header["locations"]]
        trace.metas = header["metas"]
        trace.capped_at = header["capped_at"]
        trace.torch = header["torch"]
        offset = 0
        for name, typecode, length in header["arrays"]:
            values = array(typecode)
            size = values.itemsize * length
            values.frombytes(rest[offset : offset + size])
            offset += size
            setattr(trace, name, values)
        return trace

    def inputs(self, index: int) -> range:
        """The input rows of operation ``index``."""
        end = self.in_start[index + 1] if index + 1 < len(self.op) else len(self.in_ref)
        return range(self.in_start[index], end)


def _mix(accumulated: int, value: int) -> int:
    return ((accumulated * 0x100000001B3) ^ value) & _MASK


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_PLAIN = frozenset({int, float, bool, type(None)})


def _scalar_hash(value: object) -> int:
    """A hash of a non-tensor argument that is equal in two processes when the value is.

    repr, not hash(): str hashes change with PYTHONHASHSEED, and floats' reprs round-trip.
    A torch ``Generator`` (passed as ``generator=``) is hashed by its state, since its repr
    only holds its address; any other address in a repr is left out.
    """
    if type(value) in _PLAIN:  # most arguments: their reprs hold no address
        return zlib.crc32(repr(value).encode())
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Generator):
        state = value.get_state()
        return zlib.crc32(state.numpy().tobytes()) ^ zlib.crc32(str(value.device).encode())
    return zlib.crc32(_ADDRESS.sub("", repr(value)).encode())


#: The signed integer dtype of each element size below 4 bytes, to read a tensor's bits.
_INTEGERS = {1: "int8", 2: "int16"}
#: CPU tensors up to this many bytes are hashed as bytes, in place: a digest costs less than
#: the few torch calls of the weighted sum (about 5 us against 50 us).
_SMALL = 16384
#: Lanes with a weight of their own; a longer tensor is hashed chunk by chunk, and the chunks'
#: hashes are summed with weights of their own.
_CHUNK = 1 << 20
#: (device, level) -> position weights, made on first use: int32 for level 0 (lanes, 4 MB),
#: int64 for level 1 (chunks, 8 MB).
_WEIGHTS: dict[tuple[Any, int], Any] = {}
#: (device, thread) -> a buffer of one chunk (int32), made on first use.
_SCRATCH: dict[tuple[Any, int], Any] = {}


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _shifted(words: Any, bits: int) -> Any:
    """A logical right shift of int64 ``words`` (torch's >> copies the sign bit)."""
    return (words >> bits) & ((1 << (64 - bits)) - 1)


def _weights(torch: ModuleType, device: Any, level: int) -> Any:
    """Odd weights, one per position of a chunk, for one level, on ``device``."""
    key = (device, level)
    found = _WEIGHTS.get(key)
    if found is None:
        # splitmix64 of each position (https://prng.di.unimi.it/splitmix64.c): weights with
        # no relation between neighbours, so no reordering cancels out; odd, so a changed
        # lane always changes its product (an odd number is invertible modulo 2**32).
        first = level * _CHUNK + 1
        words = torch.arange(first, first + _CHUNK, dtype=torch.int64, device=device)
        words = words * _signed(0x9E3779B97F4A7C15)
        words = (words ^ _shifted(words, 30)) * _signed(0xBF58476D1CE4E5B9)
        words = (words ^ _shifted(words, 27)) * _signed(0x94D049BB133111EB)
        words = (words ^ _shifted(words, 31)) | 1
        if level == 0:  # lanes are multiplied modulo 2**32: int32 weights
            words = (words & 0x7FFFFFFF).to(torch.int32)
        found = _WEIGHTS[key] = words
    return found


def _scratch(torch: ModuleType, device: Any) -> Any:
    """This thread's int32 buffer of one chunk on ``device``."""
    key = (device, threading.get_ident())
    found = _SCRATCH.get(key)
    if found is None:
        alive = {thread.ident for thread in threading.enumerate()}
        for gone in [k for k in _SCRATCH if k[1] not in alive]:  # threads that ended
            del _SCRATCH[gone]
        found = _SCRATCH[key] = torch.empty(_CHUNK, dtype=torch.int32, device=device)
    return found


def _dot(torch: ModuleType, lanes: Any, weights: Any) -> Any:
    """The sum of products of two int32 vectors, modulo 2**32 (in its low 32 bits)."""
    if lanes.device.type == "cpu":
        return torch.dot(lanes, weights)  # one pass, no buffer; integer dot is CPU-only
    return (lanes * weights).sum()


def _lane_hash(torch: ModuleType, lanes: Any) -> Any:
    """The position-weighted hash of ``lanes`` (1-D int32): a 0-d tensor."""
    device = lanes.device
    weights = _weights(torch, device, 0)
    scratch = _scratch(torch, device)
    sums = []
    for start in range(0, lanes.numel(), _CHUNK):
        chunk = lanes[start : start + _CHUNK]
        count = chunk.numel()
        # Each lane's bits from 15 up are xored into its low bits first (in a buffer kept for
        # the purpose: a fresh one costs page faults on CPU). A product modulo 2**32 never
        # carries a change in the top bit down: without the xor, lanes differing only there
        # (signs: ``x`` against ``-x``) would cancel out in pairs. 15, not 16: with 16, two
        # 16-bit elements in a lane both changing sign would cancel out the same way.
        mixed = torch.bitwise_right_shift(chunk, 15, out=scratch[:count])
        mixed &= (1 << 17) - 1  # a logical shift: >> copies the sign bit
        mixed ^= chunk
        sums.append(_dot(torch, mixed, weights[:count]))
    if len(sums) == 1:
        return sums[0]
    chunks = torch.stack(sums).to(torch.int64) & 0xFFFFFFFF
    return (chunks * _weights(torch, device, 1)[: chunks.numel()]).sum()


class _Recorder:
    """The state behind the dispatch mode: the trace and the tensors' provenance."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.trace = Trace()
        self.op_ids: dict[Any, int] = {}
        self.loc_ids: dict[tuple[int, int, str], int] = {}
        self.meta_ids: dict[str, int] = {}
        self.mutated: dict[int, list[tuple[int, str]]] = {}
        self.views: set[int] = set()  #: operators whose outputs are all views of inputs
        self.cells: dict[CodeType, int | None] = {}
        #: id(tensor) -> (weak reference, version, producing op, hash)
        self.made: dict[int, tuple[Any, int, int, int]] = {}
        self.mode: Any = None
        self.torch: ModuleType | None = None

    # -- provenance ------------------------------------------------------------------------

    def hash(self, tensor: Any) -> int:
        """The tensor's hash, computed on its device; 0 where no hash applies (meta, sparse).

        It depends on the values in their logical (row-major) order, the shape and the dtype,
        not on the memory layout: the same elements in another order hash differently (an
        unseeded shuffle, a ``randperm``), and a transposed view hashes like its contiguous
        copy (made on the device where needed). Complex values are hashed as their real and
        imaginary parts, quantized ones as their integers.

        A CPU tensor of up to 16 kB is hashed as its bytes (BLAKE2b). A larger one, or one on
        another device, is read as 4-byte lanes (elements below 4 bytes widened when they do
        not fill whole lanes); each lane, its bits from 15 up xored into its low bits, is
        multiplied by an odd weight of its position, wrapping at 32 bits, and the products
        summed: a changed lane always changes its product, and no reordering cancels out.
        Only the sum comes back. 32-bit products, not 64: torch multiplies int64 without
        vector instructions on CPU, several times slower. The cost on CPU is about five times
        the old, order-blind sum of 8-byte words (torch 2.13, 200k float32 elements: 250 us
        against 50 us); ``torch.hash_tensor`` is no alternative: an xor, as blind to order,
        and missing for most dtypes.
        """
        torch = self.torch
        assert torch is not None
        try:
            data = tensor.detach()
            kind = zlib.crc32(f"{tuple(data.shape)} {data.dtype}".encode())
            if data.numel() == 0:
                return kind
            if data.is_quantized:  # viewing a quantized tensor's bits crashes torch 2.13
                data = data.int_repr()
            if data.is_complex():
                data = torch.view_as_real(data.resolve_conj().resolve_neg())
            size = data.element_size()
            if data.device.type == "cpu" and data.numel() * size <= _SMALL:
                data = data.contiguous()
                raw = ctypes.string_at(data.data_ptr(), data.numel() * size)
                digest = hashlib.blake2b(raw, digest_size=8).digest()
                return _mix(kind, int.from_bytes(digest, "little"))
            if data.numel() * size % 4 == 0:
                if not data.is_contiguous() or data.storage_offset() * size % 4:
                    data = data.clone(memory_format=torch.contiguous_format)
                lanes = data.view(-1).view(torch.int32)
            else:
                bits = data.view(getattr(torch, _INTEGERS[size]))
                lanes = bits.to(torch.int32, memory_format=torch.contiguous_format).view(-1)
            value = int(_lane_hash(torch, lanes).item())
        except (RuntimeError, AttributeError, TypeError, NotImplementedError, KeyError):
            return 0
        return _mix(kind, value & _MASK)

    def remember(self, tensor: Any, op_index: int, value: int | None = None) -> int:
        """Hash ``tensor`` (unless ``value`` is its hash) and remember who made it."""
        import weakref

        key = id(tensor)
        if value is None:
            value = self.hash(tensor)

        def forget(_: object) -> None:
            self.made.pop(key, None)

        try:
            ref = weakref.ref(tensor, forget)
        except TypeError:
            return value
        self.made[key] = (ref, tensor._version, op_index, value)
        return value

    def provenance(self, tensor: Any) -> tuple[int, int]:
        """(producing operation or EXTERNAL, hash) for an input tensor."""
        entry = self.made.get(id(tensor))
        if entry is not None and entry[0]() is tensor and entry[1] == tensor._version:
            return entry[2], entry[3]
        # Made outside torch's operators (or changed there): hashed once per version.
        return EXTERNAL, self.remember(tensor, EXTERNAL)

    # -- locations -------------------------------------------------------------------------

    def cell_of(self, code: CodeType) -> int | None:
        """The execution count of the cell ``code`` was compiled from, or None."""
        if code in self.cells:
            return self.cells[code]
        number: int | None = None
        name = code.co_filename
        shell = _shell()
        mapped = getattr(getattr(shell, "compile", None), "_filename_map", {})
        if name in mapped:
            number = int(mapped[name])
        elif name.startswith("<ipython-input-"):  # IPython 7: <ipython-input-N-hash>
            number = int(name.split("-")[2])
        self.cells[code] = number
        return number

    def location(self, frame: FrameType | None) -> int:
        """The id of the innermost notebook-cell frame's (cell, line), or of an unknown place."""
        place = (0, 0, "")
        outermost = None
        while frame is not None:
            number = self.cell_of(frame.f_code)
            if number is not None:
                place = (number, frame.f_lineno, "")
                break
            outermost = frame
            frame = frame.f_back
        else:
            if outermost is not None:  # no cell frame: a thread, a callback
                place = (0, outermost.f_lineno, outermost.f_code.co_filename)
        found = self.loc_ids.get(place)
        if found is None:
            found = self.loc_ids[place] = len(self.trace.locations)
            self.trace.locations.append(place)
        return found

    # -- recording -------------------------------------------------------------------------

    def op_id(self, func: Any) -> int:
        found = self.op_ids.get(func)
        if found is None:
            found = self.op_ids[func] = len(self.trace.op_names)
            name = func.name() if hasattr(func, "name") else str(func)
            self.trace.op_names.append(name)
            schema = getattr(func, "_schema", None)
            arguments = schema.arguments if schema else []
            self.trace.op_args.append([a.name for a in arguments])
            # Arguments the operation writes into (add_'s self, _foreach_add_'s lists, out=).
            self.mutated[found] = [
                (position, a.name)
                for position, a in enumerate(arguments)
                if a.alias_info is not None and a.alias_info.is_write
            ]
            returns = schema.returns if schema else []
            if (
                returns
                and not self.mutated[found]
                and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)
            ):
                self.views.add(found)
        return found

    def before(
        self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[int, int] | None:
        """Record the operation's inputs (before it runs: it may write into them).

        Returns (operation id, row) for :meth:`after`, or None once the cap is reached.
        """
        trace = self.trace
        if len(trace.op) >= self.cap:
            if trace.capped_at is None:
                trace.capped_at = self.location(sys._getframe(2))
            return None
        tensor_type = self.torch.Tensor  # type: ignore[union-attr]
        op = self.op_id(func)
        trace.op.append(op)
        trace.loc.append(self.location(sys._getframe(2)))
        trace.in_start.append(len(trace.in_ref))
        names = trace.op_args[op]
        arguments = list(enumerate(args))
        arguments += [(names.index(k) if k in names else -1, v) for k, v in kwargs.items()]
        for position, value in arguments:
            for item in value if isinstance(value, list | tuple) else (value,):
                if isinstance(item, tensor_type):
                    ref, value_hash = self.provenance(item)
                else:
                    ref, value_hash = SCALAR, _scalar_hash(item)
                trace.in_ref.append(ref)
                trace.in_hash.append(value_hash)
                trace.in_arg.append(position)
        return op, len(trace.op) - 1

    def after(
        self, started: tuple[int, int], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
    ) -> None:
        """Record the operation's outputs, and the arguments it wrote into, as made by it."""
        op, index = started
        trace = self.trace
        tensor_type = self.torch.Tensor  # type: ignore[union-attr]
        results = list(out) if isinstance(out, list | tuple) else [out]
        for position, name in self.mutated[op]:
            value = kwargs.get(name, args[position] if position < len(args) else None)
            results += value if isinstance(value, list | tuple) else [value]
        combined = 0
        described = []
        seen: dict[int, int] = {}
        view_of = None
        if op in self.views:
            # A view's values are a function of its inputs and arguments: its hash is theirs,
            # which spares reading its data (a transposed weight, every step).
            view_of = op
            for row in trace.inputs(index):
                view_of = _mix(view_of, trace.in_hash[row])
        for item in results:
            if isinstance(item, tensor_type):
                value_hash = seen.get(id(item))
                if value_hash is None:
                    derived = None if view_of is None else _mix(view_of, len(seen))
                    value_hash = seen[id(item)] = self.remember(item, index, derived)
                    described.append(f"{tuple(item.shape)} {item.dtype} on {item.device}")
                combined = _mix(combined, value_hash)
            elif item is not None:
                combined = _mix(combined, _scalar_hash(item))
                described.append(type(item).__name__)
        trace.out.append(combined)
        meta = ", ".join(described[:3]) + (
            f", ... ({len(described)})" if len(described) > 3 else ""
        )
        found = self.meta_ids.get(meta)
        if found is None:
            found = self.meta_ids[meta] = len(trace.metas)
            trace.metas.append(meta)
        trace.meta.append(found)

    def start(self, torch: ModuleType) -> None:
        """Enter the dispatch mode (once torch is imported); it stays on until :func:`finish`."""
        if self.mode is not None:
            return
        from torch.utils._python_dispatch import TorchDispatchMode

        recorder = self
        self.torch = torch
        self.trace.torch = True

        class _RecordingMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
            def __torch_dispatch__(
                self,
                func: Any,
                types: Any,
                args: tuple[Any, ...] = (),
                kwargs: dict[str, Any] | None = None,
            ) -> Any:
                kwargs = kwargs or {}
                # The mode is off while this runs: the hashes' own operations are not recorded.
                started = recorder.before(func, args, kwargs)
                out = func(*args, **kwargs)
                if started is not None:
                    recorder.after(started, args, kwargs, out)
                return out

        self.mode = _RecordingMode()  # type: ignore[no-untyped-call]
        self.mode.__enter__()

    def stop(self) -> None:
        if self.mode is not None:
            self.mode.__exit__(None, None, None)
            self.mode = None


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


_RECORDER: _Recorder | None = None


def install(cap: int = DEFAULT_CAP) -> None:
    """Record torch operations from now on: at once if torch is imported, else when it is."""
    global _RECORDER
    _RECORDER = recorder = _Recorder(cap)
    if "torch" in sys.modules:
        recorder.start(sys.modules["torch"])
        return
    from nbrepro._import_hooks import PostImportFinder

    # A finder of its own: the seeding code's finder keeps one callback per module name.
    watcher = PostImportFinder()

    def started(module: ModuleType) -> None:
        watcher.unwatch("torch")
        if watcher in sys.meta_path:
            sys.meta_path.remove(watcher)
        recorder.start(module)

    watcher.watch("torch", started)
    sys.meta_path.insert(0, watcher)


# -- variables -------------------------------------------------------------------------------

_SKIPPED_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}
#: Containers longer than this are not compared (their repr would cost more than it tells).
_MAX_ITEMS = 100_000


def _describe(value: object) -> tuple[str, str, str] | None:
    """(type, shape, fingerprint) of a variable's value, or None when it is not compared."""
    kind = type(value)
    type_name = f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")
    numpy = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    if numpy is not None and isinstance(value, numpy.ndarray | numpy.generic):
        data = numpy.ascontiguousarray(value)
        shape = str(tuple(data.shape))
        digest = hashlib.blake2b(data.tobytes(), digest_size=12).hexdigest()
        return type_name, f"{shape} {data.dtype}", digest
    if torch is not None and isinstance(value, torch.Tensor):
        recorder = _RECORDER or _Recorder(0)
        recorder.torch = torch
        return type_name, f"{tuple(value.shape)} {value.dtype}", str(recorder.hash(value))
    if hasattr(value, "numpy") and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:  # TensorFlow tensors and variables, JAX arrays
            data = value.numpy()
        except Exception:  # any framework's refusal means: not compared
            return None
        described = _describe(data)
        return None if described is None else (type_name, described[1], described[2])
    if isinstance(value, int | float | complex | str | bytes | bool | type(None)):
        return type_name, "", hashlib.blake2b(repr(value).encode(), digest_size=12).hexdigest()
    if isinstance(value, list | tuple | dict | set | frozenset) and len(value) <= _MAX_ITEMS:
        from nbrepro._normalize import mask

        text = mask(repr(sorted(value, key=repr) if isinstance(value, set | frozenset) else value))
        return (
            type_name,
            f"len {len(value)}",
            hashlib.blake2b(text.encode(), digest_size=12).hexdigest(),
        )
    return None


def variables(namespace: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Fingerprints of the notebook's data variables (no modules, functions, classes)."""
    found: dict[str, tuple[str, str, str]] = {}
    for name, value in list(namespace.items()):
        if name.startswith("_") or name in _SKIPPED_NAMES:
            continue
        if isinstance(value, ModuleType | type) or callable(value):
            continue
        described = _describe(value)
        if described is not None:
            found[name] = described
    return found


def finish(namespace: dict[str, Any]) -> str:
    """Stop recording; write the trace and the variables' fingerprints; return the file's path."""
    recorder = _RECORDER or _Recorder(0)
    recorder.stop()
    trace = recorder.trace.to_bytes()
    described = json.dumps(variables(namespace)).encode()
    # The hashes' buffers and weights (4 MB a thread, 12 MB a device) go with the recording.
    _SCRATCH.clear()
    _WEIGHTS.clear()
    descriptor, path = tempfile.mkstemp(prefix="nbrepro-trace-", suffix=".bin")
    with os.fdopen(descriptor, "wb") as file:
        file.write(struct.pack("<Q", len(described)))
        file.write(described)
        file.write(trace)
    return path


def read(path: str) -> tuple[dict[str, tuple[str, str, str]], Trace]:
    """What :func:`finish` wrote: the variables' fingerprints and the trace."""
    with open(path, "rb") as file:
        data = file.read()
    (size,) = struct.unpack("<Q", data[:8])
    described = {name: tuple(v) for name, v in json.loads(data[8 : 8 + size]).items()}
    return described, Trace.from_bytes(data[8 + size :])
