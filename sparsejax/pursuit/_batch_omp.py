"""The Batch-OMP kernel shared by ``omp_batch`` and the batched Lasso's guess-and-verify path.

Batch-OMP (Rubinstein, Zibulevsky, Elad, "Efficient implementation of the K-SVD algorithm using batch
orthogonal matching pursuit", Technion CS-2008-08) works on the Gram matrix G = D^T D and the correlations
alpha0 = D^T y only: each step picks the atom of largest |alpha|, extends the inverse Cholesky factor U of
G_SS (G_SS^{-1} = U^T U) by one row, and updates alpha <- alpha0 - G_{:,S} G_SS^{-1} alpha0_S.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

__all__ = ["batch_omp_core", "slot_mv", "slot_mtv", "dependence_tol"]


def dependence_tol(dtype):
    return 32.0 * jnp.finfo(dtype).eps


def slot_mv(A, x):
    """A x for A (B, k, k), x (B, k), as k fused multiply-adds (no small reductions, slow on XLA:CPU)."""
    return sum(A[:, :, l] * x[:, l:l + 1] for l in range(x.shape[1]))


def slot_mtv(A, x):
    """A^T x for A (B, k, k), x (B, k), as k fused multiply-adds."""
    return sum(A[:, i, :] * x[:, i:i + 1] for i in range(x.shape[1]))


def batch_omp_core(G, alpha0, ynorm2, tol2, k, return_factor=False):
    """Batch-OMP on a block: alpha0 (B, m) = Y D, ynorm2 (B,). Returns codes, nsteps, energy, idx, finite
    (and, with ``return_factor``, also U (B, k, k), the inverse Cholesky factor of G_SS in slot order,
    and the LS coefficients gamma (B, k) in slot order).

    Written for speed on CPU, where each step is bound by passes over (B, m) arrays: the selection
    avoids argmax (slow variadic reduction on XLA:CPU) and uses two float max-reductions with
    ``where`` masks (``sign`` gets fused into the reduction and is slow there); the correlation
    update is one fused loop over gathered Gram rows; the (B, k, k) inverse-Cholesky algebra is
    written as k fused multiply-adds rather than small reductions; the codes are built by one fused
    one-hot sum instead of a scatter. ``lax.fori_loop`` over the k steps (unrolling was no faster).
    """
    B, m = alpha0.shape
    dtype = alpha0.dtype
    diag = jnp.diagonal(G)
    rev = (m - jnp.arange(m)).astype(dtype)          # m, m-1, ..., 1: ties go to the lowest index
    iota = jnp.arange(m, dtype=jnp.int32)
    slots = jnp.arange(k)
    dep = dependence_tol(dtype)
    fit = jnp.finfo(dtype).eps * ynorm2              # below this the fit is exact to rounding

    def step(j, c):
        alpha, free, U, z, idx, energy, go, nsteps = c
        # -- selection: first argmax of |alpha| over the free atoms --------------------------------
        a = jnp.abs(alpha) * free
        mx = jnp.max(a, axis=1, keepdims=True)
        at_max = jnp.where(a >= mx, rev[None, :], 0.0)   # > 0 exactly at the maxima
        top = jnp.max(at_max, axis=1, keepdims=True)
        new = jnp.clip((m - top[:, 0]).astype(jnp.int32), 0, m - 1)
        # -- inverse-Cholesky update (rows >= j of U are zero) --------------------------------------
        v = jnp.take_along_axis(G[new], jnp.maximum(idx, 0), axis=1)     # G[S, new], (B, k)
        w = slot_mv(U, v)                                               # U v
        d2 = diag[new] - jnp.sum(w * w, axis=1)
        ok = go & (energy > tol2) & (energy > fit) & (mx[:, 0] > 0) & (d2 > dep * diag[new])
        dinv = jnp.where(ok, lax.rsqrt(jnp.where(ok, d2, 1.0)), 0.0)
        a0new = jnp.take_along_axis(alpha0, new[:, None], axis=1)[:, 0]
        zj = (a0new - jnp.sum(w * z, axis=1)) * dinv
        ej = (slots == j).astype(dtype)
        urow = (ej[None, :] - slot_mtv(U, w)) * dinv[:, None]          # (e_j - U^T w)/d
        U = lax.dynamic_update_slice_in_dim(U, urow[:, None, :], j, axis=1)
        z = z + ej[None, :] * zj[:, None]
        idx = jnp.where((slots == j)[None, :] & ok[:, None], new[:, None], idx)
        # -- alpha <- alpha - z_j G[:, S] U[j, :]^T  (one fused loop over gathered Gram rows) -------
        cu = zj[:, None] * urow
        safe = jnp.maximum(idx, 0)
        for i in range(k):
            alpha = alpha - cu[:, i:i + 1] * G[safe[:, i]]
        free = jnp.where((at_max == top) & ok[:, None], 0.0, free)
        return alpha, free, U, z, idx, energy - zj * zj, ok, nsteps + ok.astype(jnp.int32)

    c = (alpha0, jnp.ones((B, m), dtype), jnp.zeros((B, k, k), dtype), jnp.zeros((B, k), dtype),
         jnp.full((B, k), -1, jnp.int32), ynorm2, jnp.ones((B,), bool), jnp.zeros((B,), jnp.int32))
    _, _, U, z, idx, energy, _, nsteps = lax.fori_loop(0, k, step, c)
    gamma = slot_mtv(U, z)                                                   # U^T z
    # codes[b, idx[b, i]] = gamma[b, i] (unused slots have idx = -1 and match no atom)
    codes = sum(jnp.where(iota[None, :] == idx[:, i:i + 1], gamma[:, i:i + 1], 0.0) for i in range(k))
    finite = jnp.all(jnp.isfinite(gamma), axis=1)
    if return_factor:
        return codes, nsteps, jnp.maximum(energy, 0.0), idx, finite, U, gamma
    return codes, nsteps, jnp.maximum(energy, 0.0), idx, finite
