"""Defaults that depend on the backend the computation runs on (XLA:CPU, GPU, TPU).

On XLA:CPU a batched pursuit is bound by passes over its (rows, m) arrays, and each fused operation is a separate
task with a fixed cost: the batched coders therefore work through the batch in blocks whose arrays stay in a core's
L2 cache (``lax.map`` over blocks), and the convolutional ADMM splits its M code maps into chunks of about 1 MiB.
An accelerator wants the opposite: few, large kernels over the whole batch (its memory holds 10^6 signals of a
64 x 256 problem many times over), so blocking only serialises the work. The CPU figures were measured on the
project's 2-core benchmark machine (``benchmarks/omp_limits.py``, ``benchmarks/csc.py``); the accelerator
figures follow from that reasoning and are checked by ``benchmarks/device.sh`` when a GPU is available.

``tuned(name)`` returns the default for the backend JAX uses now (``jax.default_backend()``); each function that
takes one of these as an argument (``chunk=None``) documents it and accepts an explicit value instead.
"""
from __future__ import annotations

import jax

__all__ = ["TUNED", "tuned", "backend_kind"]

TUNED: dict[str, dict[str, int | None]] = {
    # rows per block of omp_batch; signals per chunk of lasso_batch (guess path, homotopy path);
    # bytes of code maps per chunk of the convolutional ADMM (None: all M maps at once)
    "cpu": {"omp_chunk": 256, "lasso_guess_chunk": 2048, "lasso_homotopy_chunk": 512, "csc_chunk_bytes": 1 << 20},
    "accelerator": {"omp_chunk": 1 << 16, "lasso_guess_chunk": 1 << 16, "lasso_homotopy_chunk": 1 << 14,
                    "csc_chunk_bytes": None},
}


def backend_kind(backend: str | None = None) -> str:
    """``"cpu"`` for XLA:CPU, ``"accelerator"`` for a GPU or TPU (``backend`` default: ``jax.default_backend()``).

    Example:
      >>> backend_kind("cpu"), backend_kind("gpu"), backend_kind("tpu")
      ('cpu', 'accelerator', 'accelerator')
    """
    backend = jax.default_backend() if backend is None else backend
    return "cpu" if backend == "cpu" else "accelerator"


def tuned(name: str, backend: str | None = None):
    """The default of the tuned setting ``name`` on ``backend`` (default: the backend in use).

    Args:
      name: a key of ``TUNED["cpu"]``: ``"omp_chunk"``, ``"lasso_guess_chunk"``, ``"lasso_homotopy_chunk"`` or
        ``"csc_chunk_bytes"``.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"`` (or another platform name); default ``jax.default_backend()``.

    Returns:
      An int, or None where the setting is "no blocking".

    Raises:
      KeyError: ``name`` is not a tuned setting (the message lists them).

    Example:
      >>> tuned("omp_chunk", "cpu"), tuned("csc_chunk_bytes", "gpu") is None
      (256, True)
    """
    table = TUNED[backend_kind(backend)]
    if name not in table:
        raise KeyError(f"unknown tuned setting {name!r}; known: {', '.join(sorted(table))}")
    return table[name]
