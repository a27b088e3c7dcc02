"""nbrepro on real CUDA: seeded training repeats bit for bit; CUDA alerts are recorded.

Skipped unless torch sees a CUDA device.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import nbrepro

if TYPE_CHECKING:
    import torch
else:  # torch is optional: without it this module is skipped, not an error
    torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.torch,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

REPO = Path(__file__).resolve().parent.parent

# Seeded training of a conv + batch-norm net, printing a hash of the final weights. The ops
# are ones torch has deterministic CUDA kernels for (no AdaptiveAvgPool2d / NLLLoss).
TRAINING = """
import hashlib, torch, nbrepro
nbrepro.seed(0, deterministic=True)
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
    torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
).cuda()
head = torch.nn.Linear(64, 10).cuda()
optimizer = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
x, y = torch.randn(64, 3, 32, 32, device="cuda"), torch.randint(0, 10, (64,), device="cuda")
for _ in range(30):
    loss = -head(net(x).mean(dim=(2, 3))).log_softmax(1).gather(1, y[:, None]).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
state = {**net.state_dict(), **{"head." + k: v for k, v in head.state_dict().items()}}
digest = hashlib.sha256()
for name in sorted(state):
    digest.update(state[name].detach().cpu().contiguous().flatten().view(torch.uint8).numpy())
print(digest.hexdigest())
"""


def _train_in_fresh_process(python: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [python, "-c", TRAINING], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def _scatter_add() -> torch.Tensor:
    # A million float additions into 8 bins: with atomics the summation order, and so the
    # rounding, changes from run to run.
    generator = torch.Generator(device="cuda").manual_seed(1)
    index = torch.randint(0, 8, (1_000_000,), device="cuda", generator=generator)
    source = torch.randn(1_000_000, device="cuda", generator=generator)
    return torch.zeros(8, device="cuda").scatter_add_(0, index, source)


def test_seeded_cuda_training_is_bit_identical_across_processes(python: str) -> None:
    """Two fresh processes under seed(0, deterministic=True) end with identical weights."""
    first = _train_in_fresh_process(python)
    second = _train_in_fresh_process(python)
    assert len(first) == 64
    assert first == second


def test_cuda_scatter_add_is_deterministic_and_not_flagged(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """torch has a deterministic CUDA scatter_add_: no alert, no NBR201, equal results."""
    nbrepro.seed(0, deterministic=True)
    assert torch.equal(_scatter_add(), _scatter_add())
    assert not [w for w in recwarn if "deterministic implementation" in str(w.message)]
    assert not [f for f in nbrepro.status().findings if f.code == "NBR201"]


def test_cuda_op_without_deterministic_kernel_is_recorded(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """torch.histc on CUDA has no deterministic kernel: it warns and becomes NBR201."""
    nbrepro.seed(0, deterministic=True)
    torch.histc(torch.rand(1000, device="cuda"), bins=10)
    assert any("histc" in str(w.message) for w in recwarn)
    codes = [(f.code, f.severity) for f in nbrepro.status().findings if "histc" in f.message]
    assert codes == [("NBR201", nbrepro.Severity.ERROR)]
