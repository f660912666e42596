"""Sparse coding of a global batch: every process codes its own rows, the results form global arrays.

Sparse coding is independent per signal, so the data-parallel form needs no collective during the solve:
process p runs the ordinary one-process pursuit (``sparsejax.pursuit.encode`` for a dense dictionary, a vmapped
``cbpdn_admm`` for a batch of images) on its local rows, and the per-signal fields of the returned ``Solution``
(codes, num_steps, converged, diverged, objective, error, status) become global arrays split by rows. Each
signal's result is the one-process result for that signal.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh

from sparsejax.distributed.arrays import check_equal_rows, local_rows, to_global
from sparsejax.distributed.runtime import agree, global_mesh
from sparsejax.pursuit.csc import cbpdn_admm
from sparsejax.pursuit.encode import encode
from sparsejax.solve import Solution

__all__ = ["cbpdn_global", "encode_global"]

_PER_SIGNAL = ("codes", "num_steps", "converged", "diverged", "objective", "error", "status")


def _globalise(sol: Solution, rows: int, mesh: Mesh) -> Solution:
    total = check_equal_rows("the batch", rows, mesh)          # one collective, then none per field
    fields = {}
    for name in _PER_SIGNAL:
        v = getattr(sol, name)
        if v is not None and np.ndim(v) >= 1 and np.shape(v)[0] == rows:
            fields[name] = to_global(np.asarray(v), mesh, global_rows=total)
    return sol._replace(**fields)


def encode_global(D, Y, method: str = "lasso", *, mesh: Mesh | None = None, **options) -> Solution:
    """``sparsejax.pursuit.encode`` of a batch spread over processes.

    Args:
      D: the dictionary (the same on every process): an (n, m) array or a ``LinearOperator``.
      Y: this process's signals (B, n) (every process the same B), or a row-split global array.
      method, **options: as ``encode`` (every method: "omp", "lasso", "threshold", "ista", "fista", "admm",
        "bp_constrained").
      mesh: the 1-D mesh of the global batch (default ``global_mesh()``).

    Returns:
      ``Solution`` whose per-signal fields are global (P B, ...) arrays split by rows (``gather`` /
      ``local_rows`` read them); ``state`` (and ``history``) stay this process's own.

    Example: one process: the same codes as ``encode``.
      >>> import jax
      >>> import numpy as np
      >>> import sparsejax as sj
      >>> from sparsejax.distributed import encode_global, gather
      >>> D = sj.random_gaussian(jax.random.PRNGKey(0), 8, 12)
      >>> Y = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (4, 8)))
      >>> sol = encode_global(D, Y, "omp", k=2)
      >>> bool(np.allclose(gather(sol.codes), sj.encode(D, Y, "omp", k=2).codes))
      True
    """
    mesh = global_mesh() if mesh is None else mesh
    Y = local_rows(Y)
    sol, error = None, None
    try:
        sol = encode(D, Y, method, **options)
    except (ValueError, TypeError) as e:          # bad input on this process: every process stops
        error = e
    agree(error)
    return _globalise(sol, Y.shape[0], mesh)


def cbpdn_global(D, images, lam, *, mesh: Mesh | None = None, **options) -> Solution:
    """Convolutional BPDN (``sparsejax.pursuit.csc.cbpdn_admm``) of a batch of images spread over processes: each
    process solves its own images (vmapped, each image with its own stop), results as global arrays.

    Args:
      D: filters (M, C, h[, w]) or a ``Conv`` (the same on every process).
      images: this process's images (B, C, *N) (every process the same B), or a row-split global array.
      lam: l1 weight; **options: as ``cbpdn_admm`` (max_iter, tol, rho, ...; not ``mesh``).
      mesh: the 1-D mesh of the global batch (default ``global_mesh()``).

    Returns:
      ``Solution`` with global per-image fields (codes (P B, M, *N), num_steps, converged, objective, ...).

    Example:
      >>> import jax
      >>> import numpy as np
      >>> from sparsejax.distributed import cbpdn_global
      >>> f = jax.random.normal(jax.random.PRNGKey(0), (2, 1, 3, 3))
      >>> s = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (2, 1, 8, 8)))
      >>> cbpdn_global(f, s, 0.1, max_iter=20).codes.shape
      (2, 2, 8, 8)
    """
    if "mesh" in options:
        raise ValueError("cbpdn_global splits the images over processes; the filters' mesh= of cbpdn_admm is not "
                         "available here")
    mesh = global_mesh() if mesh is None else mesh
    images = local_rows(images)
    if images.ndim < 3:
        raise ValueError(f"images must have shape (B, C, *N): a batch of C-channel signals, got {images.shape}")
    options.setdefault("chunk", int(np.shape(getattr(D, "filters", D))[0]))       # one chunk under vmap
    sol, error = None, None
    try:
        if not np.all(np.isfinite(images)):
            raise ValueError(f"images contain NaN or infinite values (process {jax.process_index()})")
        sol = jax.vmap(lambda s: cbpdn_admm(D, s, lam, **options))(images)
    except (ValueError, TypeError) as e:
        error = e
    agree(error)
    return _globalise(sol, images.shape[0], mesh)
