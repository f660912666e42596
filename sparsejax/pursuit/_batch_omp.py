"""The Batch-OMP kernel and the slot algebra shared by ``omp_batch`` and the batched Lasso's paths.

Batch-OMP (Rubinstein, Zibulevsky & Elad, "Efficient implementation of the K-SVD algorithm using batch orthogonal
matching pursuit", Technion CS-2008-08, 2008) works on the Gram matrix G = D^T D and the correlations alpha0 = D^T y
only: each step picks the atom of largest |alpha|, extends the inverse Cholesky factor U of G_SS (G_SS^{-1} = U^T U)
by one row, and updates alpha <- alpha0 - G_{:,S} G_SS^{-1} alpha0_S.

Batched supports live in fixed *slots*: ``idx`` (B, k) holds the atom of each slot (-1 for a free slot) and the
per-signal small matrices are (B, k, k). ``slot_mv`` / ``slot_mtv`` multiply them, ``scatter_slots`` writes slot
values back into (B, m) codes, ``first_max`` is the batched first argmax (ties to the lowest index).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

__all__ = ["batch_omp_core", "batch_omp_unrolled", "UNROLL_MAX_K", "slot_mv", "slot_mtv", "dependence_tol", "first_max",
           "scatter_slots", "codes_from_slots"]

UNROLL_MAX_K = 8      # ``batch_omp_unrolled`` for k up to this (its graph grows as k^3: at k = 8 it compiles in ~4 s, at 12 in ~15 s)


def dependence_tol(dtype):
    """An atom joins a support only when its Cholesky pivot d^2 exceeds ``dependence_tol * G_ii`` (else it is
    numerically in the span of the support).

    Example:
      >>> import jax.numpy as jnp
      >>> bool(dependence_tol(jnp.float32) == 32 * jnp.finfo(jnp.float32).eps)
      True
    """
    return 32.0 * jnp.finfo(dtype).eps


def slot_mv(A, x):
    """A x for A (B, k, k), x (B, k), as k fused multiply-adds (no small reductions, slow on XLA:CPU).

    Example:
      >>> import jax.numpy as jnp
      >>> slot_mv(jnp.eye(2)[None] * 3, jnp.array([[1.0, 2.0]])).tolist()
      [[3.0, 6.0]]
    """
    return sum(A[:, :, l] * x[:, l:l + 1] for l in range(x.shape[1]))


def slot_mtv(A, x):
    """A^T x for A (B, k, k), x (B, k), as k fused multiply-adds.

    Example:
      >>> import jax.numpy as jnp
      >>> slot_mtv(jnp.array([[[0.0, 1.0], [0.0, 0.0]]]), jnp.array([[2.0, 5.0]])).tolist()
      [[0.0, 2.0]]
    """
    return sum(A[:, i, :] * x[:, i:i + 1] for i in range(x.shape[1]))


def first_max(x, rev):
    """Index of the first maximum of x (B, m) along axis 1, and the maximum.

    ``rev`` = (m, m-1, ..., 1) in x's dtype. No argmax (a slow variadic reduction on XLA:CPU): two float
    max-reductions with a ``where`` mask.

    Example:
      >>> import jax.numpy as jnp
      >>> j, mx = first_max(jnp.array([[1.0, 3.0, 3.0]]), jnp.array([3.0, 2.0, 1.0]))
      >>> int(j[0]), float(mx[0])
      (1, 3.0)
    """
    m = x.shape[1]
    mx = jnp.max(x, axis=1, keepdims=True)
    top = jnp.max(jnp.where(x >= mx, rev[None, :], 0.0), axis=1)     # > 0 exactly at the maxima
    return jnp.clip((m - top).astype(jnp.int32), 0, m - 1), mx[:, 0]


def scatter_slots(idx, values, m):
    """Codes (B, m) with ``codes[b, idx[b, i]] = values[b, i]`` on the used slots (``idx >= 0``).

    Example:
      >>> import jax.numpy as jnp
      >>> scatter_slots(jnp.array([[2, -1]]), jnp.array([[5.0, 7.0]]), 3).tolist()
      [[0.0, 0.0, 5.0]]
    """
    used = idx >= 0
    rows = jnp.broadcast_to(jnp.arange(idx.shape[0])[:, None], idx.shape)
    return jnp.zeros((idx.shape[0], m), values.dtype).at[rows, jnp.where(used, idx, m)].add(
        jnp.where(used, values, 0.0), mode="drop")


def codes_from_slots(idx, values, m):
    """Dense codes (B, m) from slots: ``codes[b, idx[b, i]] = values[b, i]`` where ``idx >= 0`` (distinct per row).

    One scatter into a flat zero array: on XLA:CPU about half the time of a one-hot sum over the slots.

    Example:
      >>> import jax.numpy as jnp
      >>> codes_from_slots(jnp.array([[2, -1], [0, 1]]), jnp.array([[5.0, 7.0], [1.0, 2.0]]), 3).tolist()
      [[0.0, 0.0, 5.0], [1.0, 2.0, 0.0]]
    """
    B = idx.shape[0]
    flat = jnp.where(idx >= 0, jnp.arange(B, dtype=jnp.int32)[:, None] * m + idx, B * m)
    out = jnp.zeros((B * m,), values.dtype).at[flat.reshape(-1)].set(values.reshape(-1), mode="drop")
    return out.reshape(B, m)


def batch_omp_unrolled(G, alpha0, ynorm2, tol2, k):
    """Batch-OMP on a block for a small static k (<= ``UNROLL_MAX_K``): the same pursuit, step for step, as
    ``batch_omp_core``, with the k steps unrolled in Python.

    Unrolled, step j touches only the j slots in use: the correlation update reads j gathered Gram rows (the
    fori_loop kernel reads all k), the inverse-Cholesky algebra is j^2 fused multiply-adds on (B,) vectors, and the
    chosen atoms are masked by comparing with the j chosen indices (no (B, m) mask array written each step). The
    codes are not built here: the caller scatters the (B, k) slots once, outside any loop over blocks.

    Returns:
      gamma (B, k) LS coefficients in slot order, nsteps (B,), energy (B,) = ||r||^2 (energy update, >= 0),
      idx (B, k) chosen atoms (-1: unused slot), finite (B,) all coefficients finite.

    Example:
      >>> import jax.numpy as jnp
      >>> Y = jnp.array([[0.0, 2.0, -1.0]])
      >>> gamma, nsteps, energy, idx, finite = batch_omp_unrolled(jnp.eye(3), Y, jnp.sum(Y * Y, 1), -1.0, 2)
      >>> gamma.tolist(), idx.tolist(), int(nsteps[0]), float(energy[0])
      ([[2.0, -1.0]], [[1, 2]], 2, 0.0)
    """
    B, m = alpha0.shape
    dtype = alpha0.dtype
    diag = jnp.diagonal(G)
    rev = (m - jnp.arange(m)).astype(dtype)
    iota = jnp.arange(m, dtype=jnp.int32)
    rows = jnp.arange(B)
    dep = dependence_tol(dtype)
    fit = jnp.finfo(dtype).eps * ynorm2
    zero = jnp.zeros((B,), dtype)
    alpha, energy = alpha0, ynorm2
    go = jnp.ones((B,), bool)
    nsteps = jnp.zeros((B,), jnp.int32)
    U, z, idx, safe = [], [], [], []       # U[l][i]: row l of the inverse Cholesky factor, (B,) per entry, i <= l
    for j in range(k):
        score = jnp.abs(alpha)
        for s in idx:                                                   # chosen atoms never return
            score = jnp.where(iota[None, :] == s[:, None], 0.0, score)
        new, mx = first_max(score, rev)
        w = [sum((U[l][i] * G[new, safe[i]] for i in range(l + 1)), zero) for l in range(j)]       # U v
        gnn = diag[new]
        d2 = gnn - sum((wl * wl for wl in w), zero)
        ok = go & (energy > tol2) & (energy > fit) & (mx > 0) & (d2 > dep * gnn)
        dinv = jnp.where(ok, lax.rsqrt(jnp.where(ok, d2, 1.0)), 0.0)
        zj = (alpha0[rows, new] - sum((w[l] * z[l] for l in range(j)), zero)) * dinv
        urow = [-sum((U[l][i] * w[l] for l in range(i, j)), zero) * dinv for i in range(j)] + [dinv]    # (e_j - U^T w)/d
        U.append(urow)
        z.append(zj)
        idx.append(jnp.where(ok, new, -1))
        safe.append(new)
        if j < k - 1:                       # alpha <- alpha - z_j G[:, S] U[j, :]^T (not needed after the last step)
            alpha = alpha - sum(((zj * urow[i])[:, None] * G[safe[i]] for i in range(j + 1)), jnp.zeros_like(alpha))
        energy = energy - zj * zj
        go = ok
        nsteps = nsteps + ok.astype(jnp.int32)
    gamma = jnp.stack([sum((U[l][i] * z[l] for l in range(i, k)), zero) for i in range(k)], axis=1)     # U^T z
    finite = jnp.all(jnp.isfinite(gamma), axis=1)
    return gamma, nsteps, jnp.maximum(energy, 0.0), jnp.stack(idx, axis=1), finite


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

    Example:
      >>> import jax.numpy as jnp
      >>> Y = jnp.array([[0.0, 2.0, -1.0]])
      >>> codes, nsteps, energy, idx, finite = batch_omp_core(jnp.eye(3), Y, jnp.sum(Y * Y, 1), -1.0, 2)
      >>> codes.tolist(), idx.tolist(), float(energy[0])
      ([[0.0, 2.0, -1.0]], [[1, 2]], 0.0)
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
        new, mx = first_max(jnp.abs(alpha) * free, rev)
        # -- inverse-Cholesky update (rows >= j of U are zero) --------------------------------------
        v = jnp.take_along_axis(G[new], jnp.maximum(idx, 0), axis=1)     # G[S, new], (B, k)
        w = slot_mv(U, v)                                               # U v
        d2 = diag[new] - jnp.sum(w * w, axis=1)
        ok = go & (energy > tol2) & (energy > fit) & (mx > 0) & (d2 > dep * diag[new])
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
        free = jnp.where((iota[None, :] == new[:, None]) & ok[:, None], 0.0, free)
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
