"""The guess-and-verify fast path of the batched Lasso: guess the active set cheaply, then certify it.

Most signals of a sparse-coding batch have small Lasso supports that Batch-OMP nearly finds. For every signal:

1. Batch-OMP (``_batch_omp.batch_omp_core``) picks k atoms and returns the inverse Cholesky factor U of G_SS;
   H = U^T U = G_SS^{-1} and s = the signs of the OMP least-squares coefficients.
2. The sign-constrained restricted solve a_S = H (c0_S - lam s) (the Lasso solution when S and s are right,
   Osborne, Presnell & Turlach, "On the LASSO and its dual", J. Comput. Graph. Stat. 2000, section 2).
3. Prune: atoms whose a_S disagrees with s leave one at a time (rank-one downdate of H); grow: the strongest
   violators of |c_j| <= lam join (bordering update of H), alternately.
4. Verify: the KKT conditions and the duality gap (``_certify``) decide, per signal, whether the guess is the
   solution. Only certified signals keep it; the caller re-solves the rest (``lasso_batch``: the exact homotopy).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax.pursuit._batch_omp import batch_omp_core, dependence_tol, first_max, scatter_slots, slot_mv
from sparsejax.pursuit._certify import certify_batch, kkt_ok
from sparsejax.pursuit._chunks import map_chunks

__all__ = ["guess_chunk", "guess_and_verify"]


def guess_chunk(atoms, G, Yc, lam, *, k, K, n_prune, n_grow, n_add, nonneg):
    """Guess the Lasso active set and signs of every row of C0 = Y D (B, m).

    Batch-OMP picks k atoms and returns the inverse Cholesky factor U of G_SS; H = U^T U = G_SS^{-1}
    (B, K, K, zero rows/cols on free slots) and s = sign of the OMP least-squares coefficients. Then
    a_S = H (c0_S - lam s); atoms whose a_S disagrees with s are removed one at a time (the first to
    cross zero as lam' runs from 0 to lam; rank-one downdate H - h h^T / h_ii), and the strongest
    violator of |c_j| <= lam is added (bordering update H + (h - e)(h - e)^T / d), ``n_grow`` times.
    The result is only a candidate: the caller verifies the KKT conditions and the duality gap.
    Returns the codes (B, m), a sign-consistency flag (B,), the number of guess operations (B,), and the
    residuals R = Y - A D^T (B, n) and correlations D^T r (B, m) of the codes.

    Example:
      >>> import jax.numpy as jnp
      >>> D = jnp.eye(3)
      >>> A, sign_ok, nops, R, Gr = guess_chunk(D, D, jnp.array([[3.0, -1.0, 0.5]]), 1.0, k=2, K=3, n_prune=1,
      ...                                       n_grow=1, n_add=1, nonneg=False)
      >>> A.tolist(), sign_ok.tolist()         # atom 1 (sign -1) was pruned: |c_1| = 1 is not above lam
      ([[2.0, 0.0, 0.0]], [True])
    """
    C0 = Yc @ atoms
    ynorm2 = jnp.sum(Yc * Yc, axis=1)
    Dt = atoms.T
    B, m = C0.shape
    dtype = C0.dtype

    def correlations(a, idx):
        # c = D^T (y - D_S a_S): the residual from K gathered atoms (n-vectors), then one GEMM
        safe = jnp.maximum(idx, 0)
        R = Yc
        for l in range(K):
            R = R - a[:, l:l + 1] * Dt[safe[:, l]]
        return R, R @ atoms

    _, nsteps, _, idx, _, U, gamma = batch_omp_core(G, C0, ynorm2, jnp.asarray(-1.0, dtype), k, return_factor=True)
    H = sum(U[:, l, :, None] * U[:, l, None, :] for l in range(k))
    p = K - k
    if p:
        H = jnp.pad(H, ((0, 0), (0, p), (0, p)))
        idx = jnp.pad(idx, ((0, 0), (0, p)), constant_values=-1)
        gamma = jnp.pad(gamma, ((0, 0), (0, p)))
    used = idx >= 0
    s = jnp.where(used, 1.0 if nonneg else jnp.sign(gamma), 0.0).astype(dtype)
    c0S = jnp.where(used, jnp.take_along_axis(C0, jnp.maximum(idx, 0), axis=1), 0.0)
    ks = jnp.arange(K)
    diag = jnp.diagonal(G)
    rev = (m - jnp.arange(m)).astype(dtype)
    big = jnp.asarray(jnp.finfo(dtype).max, dtype)

    def prune(st):
        H, idx, s, used, c0S, nops = st
        g = slot_mv(H, c0S)
        hs = slot_mv(H, s)
        a = g - lam * hs
        viol = used & (a * s <= 0)
        # crossing point lam' = g_i / hs_i of a_i(lam') = g_i - lam' hs_i (0 if the LS sign is already off)
        t = jnp.where(viol, jnp.where(g * s <= 0, 0.0, g / jnp.where(hs == 0, 1.0, hs)), big)
        i = jnp.argmin(t, axis=1)
        do = jnp.any(viol, axis=1)
        ei = (ks[None, :] == i[:, None]) & do[:, None]
        h = jnp.sum(jnp.where(ei[:, :, None], H, 0.0), axis=1)
        hii = jnp.sum(jnp.where(ei, h, 0.0), axis=1)
        f = jnp.where(do, 1.0 / jnp.where(do, hii, 1.0), 0.0)
        keep = ~ei
        H = jnp.where(keep[:, :, None] & keep[:, None, :], H - f[:, None, None] * h[:, :, None] * h[:, None, :], 0.0)
        return (H, jnp.where(ei, -1, idx), jnp.where(ei, 0.0, s), used & keep, jnp.where(ei, 0.0, c0S),
                nops + do.astype(jnp.int32))

    def grow(st):
        H, idx, s, used, c0S, nops = st
        a = jnp.where(used, slot_mv(H, c0S - lam * s), 0.0)
        _, c = correlations(a, idx)
        score = c if nonneg else jnp.abs(c)
        # add the n_add strongest violators of |c_j| <= lam (from this one correlation pass)
        for _ in range(n_add):
            j, mx = first_max(score, rev)
            score = jnp.where(jnp.arange(m)[None, :] == j[:, None], 0.0, score)
            top = jnp.max(jnp.where(used, 0, K - ks[None, :]), axis=1)              # first free slot
            slot = K - top
            safe = jnp.maximum(idx, 0)
            v = jnp.where(used, jnp.take_along_axis(G[j], safe, axis=1), 0.0)        # G[S, j]
            h = slot_mv(H, v)
            d = diag[j] - jnp.sum(v * h, axis=1)
            do = (mx > lam) & (top > 0) & (d > dependence_tol(dtype) * diag[j])
            e = ((ks[None, :] == slot[:, None]) & do[:, None])
            hh = h - e.astype(dtype)
            f = jnp.where(do, 1.0 / jnp.where(do, d, 1.0), 0.0)
            H = H + f[:, None, None] * hh[:, :, None] * hh[:, None, :]
            cj = jnp.take_along_axis(c, j[:, None], axis=1)[:, 0]
            c0j = jnp.take_along_axis(C0, j[:, None], axis=1)[:, 0]
            sj = jnp.ones_like(cj) if nonneg else jnp.sign(cj)
            idx, s, used = jnp.where(e, j[:, None], idx), jnp.where(e, sj[:, None], s), used | e
            c0S = jnp.where(e, c0j[:, None], c0S)
            nops = nops + do.astype(jnp.int32)
        return H, idx, s, used, c0S, nops

    st = (H, idx, s, used, c0S, nsteps)
    for _ in range(n_prune):
        st = prune(st)
    for _ in range(n_grow):
        st = grow(st)
        st = prune(st)  # one prune per grow round (more prunes cost more than the few signals they save)
    H, idx, s, used, c0S, nops = st
    rhs = c0S - lam * s
    a = jnp.where(used, slot_mv(H, rhs), 0.0)
    # one step of iterative refinement against the exact G_SS (H carries the rounding of the updates)
    safe = jnp.maximum(idx, 0)
    GSS = G[safe[:, :, None], safe[:, None, :]]
    res = jnp.where(used, rhs - slot_mv(GSS, a), 0.0)
    a = jnp.where(used, a + slot_mv(H, res), 0.0)
    sign_ok = jnp.all(~used | (a * s > 0), axis=1)
    a = jnp.where(used, a, 0.0)
    codes = scatter_slots(jnp.where(used, idx, -1), a, m)
    R, Gr = correlations(a, idx)
    return codes, sign_ok, nops, R, Gr


def guess_and_verify(atoms, G, Y, lam, tol, *, chunk, k, K, n_prune, n_grow, n_add, nonneg):
    """Guess (``guess_chunk``) and certify the Lasso codes of every row of Y (B, n), ``chunk`` rows at a time.

    A signal is certified (``fast``) when its guess has consistent signs, meets the KKT conditions to
    max(``tol * lam``, the rounding level of D^T r), is finite, and has a relative duality gap (above its rounding
    level, ``_certify.relative_gap``) <= ``tol``.

    Returns:
      (codes (B, m), guess operations (B,), gap (B,), objective (B,), relative gap (B,), gap rounding level (B,),
      fast (B,) bool).

    Example:
      >>> import jax.numpy as jnp
      >>> D = jnp.eye(3); Y = jnp.array([[3.0, -1.0, 0.5]])
      >>> A, _, _, _, _, _, fast = guess_and_verify(D, D.T @ D, Y, 1.0, 1e-6, chunk=1, k=2, K=3, n_prune=1,
      ...                                           n_grow=1, n_add=1, nonneg=False)
      >>> A.tolist(), fast.tolist()
      ([[2.0, 0.0, 0.0]], [True])
    """
    def block(Yc):
        A, sign_ok, steps, R, Gr = guess_chunk(atoms, G, Yc, lam, k=k, K=K, n_prune=n_prune, n_grow=n_grow,
                                               n_add=n_add, nonneg=nonneg)
        gap, obj, g_tol, rel = certify_batch(atoms, Yc, A, R, Gr, lam, nonneg)
        fast = (sign_ok & kkt_ok(Gr, A, lam, nonneg, jnp.maximum(tol * lam, g_tol))
                & jnp.all(jnp.isfinite(A), axis=1) & (rel <= tol))
        return A, steps, gap, obj, rel, g_tol * jnp.sum(jnp.abs(A), axis=1), fast

    return map_chunks(block, Y, chunk)
