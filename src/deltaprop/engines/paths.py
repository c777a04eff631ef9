"""The table of paths: every way an epoch's updates can run, what each supports and how.

An engine runs an epoch through one path; the trainer records its name
(``trainer.engine_used``, e.g. ``"numba/blocked"``). The NumPy engine has one path and runs
every set-up; the numba engine picks the first of its paths whose conditions hold
(:meth:`.numba_engine.NumbaEngine.path_for`, in the order below). Every path gives the NumPy
engine's weights to 1e-10 in float64 (tests/test_engines.py runs each row).

This module imports no numba: the table can be read (and printed) anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Path", "PATHS", "markdown_table"]

#: what every numba path takes, unless its row says less
_COMPILED_ACTS = "every activation in engines/codes.py (softmax on the output layer)"
_COMPILED_LOSSES = "every loss in engines/codes.py"
_SGD = ("sgd", "momentum", "nesterov")
#: every optimizer of the registry (SGD as its three rules), with weight decay and gradient noise
_ALL = _SGD + ("adam", "rprop-", "rprop+", "irprop-", "irprop+", "quickprop", "sarprop")
_INLINE = ("SGD without weight decay or gradient noise (a rule linear in the gradient: the "
           "update is fused into the per-sample pass); ")
_RULE_PASS = ("after each update's gradient, the optimizer's transforms and rule as one compiled "
              "pass over the flat parameters (_numba_kernels.rule_update, _maths.rule_step; its "
              "state is the optimizer's own); the generator's draws (gradient noise, SARPROP) "
              "from Python, one compiled call per update")


@dataclass(frozen=True)
class Path:
    """One row: what the path supports (modes, rules, activations, losses, dtypes, sizes)
    and how it runs."""

    name: str
    modes: tuple[str, ...]
    rules: tuple[str, ...]
    activations: str
    losses: str
    dtypes: str
    limits: str
    how: str


PATHS: dict[str, Path] = {p.name: p for p in (
    Path("numba/tiny", ("stochastic",), _SGD, _COMPILED_ACTS + ", none in a hidden layer",
         _COMPILED_LOSSES, "float32, float64",
         _INLINE + "at most 64 weights and 3 layers (tiny_kernels.MAX_WEIGHTS, MAX_LAYERS)",
         "tiny_kernels.py: one call per epoch of a kernel written out for the net's exact shape, "
         "every weight a local variable (a register), source cached per user"),
    Path("numba/blocked", ("stochastic",), _SGD, _COMPILED_ACTS, _COMPILED_LOSSES,
         "float32, float64",
         _INLINE + "2 to 8 layers, first layer of at least 16,384 weights (stochastic_blocks.MIN_WEIGHTS), "
         "a ?gemm callable from compiled code (blas_lib.py); rules linear in the gradient",
         "stochastic_blocks.py: blocks of 24 (64 with threaded BLAS) samples, the first layer's "
         "products X_B W, X_B X_B^T, X_B^T D_B as BLAS calls with the exact per-sample "
         "correction; one compiled call per epoch (_numba_batch.block_epoch)"),
    Path("numba/blocked-matmul", ("stochastic",), ("sgd",), _COMPILED_ACTS, _COMPILED_LOSSES,
         "float32, float64", "as numba/blocked, where no ?gemm can be called from compiled code",
         "stochastic_blocks.py: the same blocks from Python, np.matmul for the products, "
         "compiled per-sample steps between them"),
    Path("numba/per-sample", ("stochastic",), _SGD, _COMPILED_ACTS, _COMPILED_LOSSES,
         "float32, float64", _INLINE + "up to 8 layers (codes.MAX_LAYERS)",
         "_numba_kernels.sample_epoch_2 / sample_epoch: one compiled call per epoch; the update "
         "of sample s and the forward sums of sample s+1 share one pass over the first layer"),
    Path("numba/batch-blas", ("stochastic", "minibatch", "batch"), _ALL, _COMPILED_ACTS,
         _COMPILED_LOSSES, "float32, float64",
         "up to 8 layers; a ?gemm callable from compiled code (blas_lib.py); stochastic (batches "
         "of one) for the rules the per-sample paths do not take",
         "_numba_batch.batch_epoch: one compiled call per epoch, every product a ?gemm call "
         "from compiled code, elementwise steps compiled between them, chunks of 512 rows; "
         + _RULE_PASS),
    Path("numba/batch-threads", ("minibatch", "batch"), _ALL, _COMPILED_ACTS, _COMPILED_LOSSES,
         "float32, float64",
         "as numba/batch-blas, BLAS set to 2 or more threads (OPENBLAS_NUM_THREADS, threadpoolctl); "
         "threads: the fewest of BLAS's threads, the cores the process may use and the batch's rows / "
         "256 (blas_path.ROWS_PER_THREAD), at least 2; not for rules with random draws (gradient "
         "noise, SARPROP)",
         "_numba_batch.batch_epoch_rows: each batch's rows split between threads, each with "
         "one-thread BLAS and its own gradient buffer; after a barrier every thread adds the "
         "buffers in thread order and updates its share of the parameters; rounding depends on "
         "the thread count (docs/reliability.md, Determinism)"),
    Path("numba/batch-matmul", ("stochastic", "minibatch", "batch"), _ALL, _COMPILED_ACTS,
         _COMPILED_LOSSES, "float32, float64",
         "as numba/batch-blas, where no ?gemm can be called from compiled code",
         "blas_path.py: np.matmul into preallocated buffers, compiled elementwise steps, the "
         "update as one compiled call per update (_numba_kernels.rule_next)"),
    Path("numpy", ("stochastic", "minibatch", "batch"), ("every optimizer",), "every activation",
         "every loss", "any float", "none",
         "numpy_engine.py: Network.loss_and_gradient and Optimizer.step per update (the reference)"),
)}


def markdown_table() -> str:
    """The table as Markdown (docs/performance.md shows it)."""
    rows = ["| path | modes | rules | limits | how it runs |", "|---|---|---|---|---|"]
    for p in PATHS.values():
        rows.append(f"| `{p.name}` | {', '.join(p.modes)} | {', '.join(p.rules)} | {p.limits} | {p.how} |")
    return "\n".join(rows)
