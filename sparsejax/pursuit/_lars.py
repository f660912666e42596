"""The batched LARS-Lasso homotopy: the exact Lasso active set and signs of every signal of a batch.

The LARS-Lasso homotopy (Osborne, Presnell & Turlach, "A new approach to variable selection in least squares
problems", IMA J. Numer. Anal. 2000; Efron, Hastie, Johnstone & Tibshirani, "Least angle regression", Ann. Statist.
2004, section 3.1) follows the Lasso solution a(lam') from lam' = ||D^T y||_inf down to lam. It is written like
Batch-OMP (``_batch_omp.batch_omp_core``): every operation is an array operation over the batch axis, no LAPACK.
With G = D^T D and c0 = D^T y, each signal keeps its correlations c = c0 - G a (B, m), its active set in fixed slots,
the signs s and the inverse Cholesky factor U of G_SS (U G_SS U^T = I, zero rows/columns on free slots). One step:

    w = U^T U s (equiangular direction),  u = G[:, S] w (gathered Gram rows),
    gamma = min(first join:  |c_j - gamma u_j| = lam_c - gamma  (j inactive),
                first drop:  a_i + gamma w_i = 0,
                stop:        lam_c - gamma = lam),
    a += gamma w,  c -= gamma u,  lam_c -= gamma.

A join grows U by one row (as in Batch-OMP); a drop is a rank-one downdate of G^{-1} = U^T U followed by one
Householder reflection that zeroes the dropped row of U, O(K^2) per signal. Drops are rare (none in the first steps,
a few percent of signals per step later), so each step downdates only a gathered buffer of ``_DROP_BUF`` signals
(skipped when none drops); further drops wait one step. The steps run in lockstep per chunk (``steps1``); the
unfinished signals are then gathered ``buf`` at a time and advanced ``steps2`` steps per round until done (lane
refill, ``_chunks.refill``). The path only finds the active set and signs: ``lars_finish`` recomputes the codes
exactly, a_S = G_SS^{-1}(c0_S - lam s), so float32 drift along the path does not reach the result.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax.pursuit._batch_omp import dependence_tol, first_max, scatter_slots
from sparsejax.pursuit._chunks import compact, gather, map_chunks, refill, scatter

__all__ = ["LarsState", "lars_init", "lars_step", "lars_finish", "homotopy", "inverse_gram_mv"]

_DROP_BUF = 32  # drops downdated per step (gathered); further drops wait one step


class LarsState(NamedTuple):
    """Batched LARS-Lasso homotopy state (leading axis: signals).

    Attributes:
      c: (B, m) correlations D^T(y - D a), updated along the path.
      free: (B, m) 1.0 for atoms outside the active set.
      U: (B, K, K) inverse Cholesky factor: U G_SS U^T = I (zero rows/cols on free slots).
      idx: (B, K) atom in each slot (-1: free slot).
      s: (B, K) signs of the active atoms (0 on free slots).
      beta: (B, K) coefficients along the path.
      lam_c: (B,) current path value of lam (= |c_j| on the active set).
      join: (B,) atom to add at the next step (-1: none).
      drop: (B,) slot to remove at the next step (-1: none).
      excl: (B,) atom just dropped: in this step it may re-enter only with the opposite sign (-1: none).
      done: (B,) reached lam.
      bad: (B,) slot overflow or a (numerically) dependent atom.
      nsteps: (B,) homotopy steps taken.
      full: (B,) the bad signals whose path needed more than K atoms (slot overflow).

    Example:
      >>> import jax.numpy as jnp
      >>> st = lars_init(jnp.array([[3.0, -1.0, 0.5]]), 1.0, 2, False)
      >>> st.join.tolist(), st.lam_c.tolist(), st.done.tolist()      # atom 0 joins first, at lam' = 3
      ([0], [3.0], [False])
    """

    c: jax.Array
    free: jax.Array
    U: jax.Array
    idx: jax.Array
    s: jax.Array
    beta: jax.Array
    lam_c: jax.Array
    join: jax.Array
    drop: jax.Array
    excl: jax.Array
    done: jax.Array
    bad: jax.Array
    nsteps: jax.Array
    full: jax.Array


def inverse_gram_mv(U, x):
    """G_SS^{-1} x = U^T U x for the factors U (B, K, K) and x (B, K).

    Example:
      >>> import jax.numpy as jnp
      >>> inverse_gram_mv(2 * jnp.eye(2)[None], jnp.array([[1.0, 0.5]])).tolist()
      [[4.0, 2.0]]
    """
    return jnp.sum(U * jnp.sum(U * x[:, None, :], axis=2)[:, :, None], axis=1)


def _packed_argmin(t):
    """Index of the (first) minimum of t >= 0 along axis 1 via one integer min-reduction."""
    m = t.shape[1]
    nb = max(1, (m - 1).bit_length())
    it = jnp.int32 if t.dtype == jnp.float32 else jnp.int64
    bits = lax.bitcast_convert_type(t, it)
    packed = (bits & ~((1 << nb) - 1)) | jnp.arange(m, dtype=it)[None, :]
    return (jnp.min(packed, axis=1) & ((1 << nb) - 1)).astype(jnp.int32)


def lars_init(c0, lam, K, nonneg) -> LarsState:
    """The start of the path at lam' = max_j |c0_j| (non-negative: max_j c0_j), with K free slots and the first
    atom to join; a signal with lam' <= lam is done at a = 0.

    Example:
      >>> import jax.numpy as jnp
      >>> lars_init(jnp.array([[0.5, -0.2]]), 1.0, 2, False).done.tolist()
      [True]
    """
    B, m = c0.shape
    dtype = c0.dtype
    rev = (m - jnp.arange(m)).astype(dtype)
    j, mx = first_max(c0 if nonneg else jnp.abs(c0), rev)
    done = mx <= lam
    z = jnp.zeros((B, K), dtype)
    m1 = jnp.full((B,), -1, jnp.int32)
    return LarsState(c0, jnp.ones((B, m), dtype), jnp.zeros((B, K, K), dtype), jnp.full((B, K), -1, jnp.int32),
                     z, z, jnp.where(done, lam, mx), jnp.where(done, -1, j), m1, m1, done,
                     jnp.zeros((B,), bool), jnp.zeros((B,), jnp.int32), jnp.zeros((B,), bool))


def lars_step(st: LarsState, G, lam, *, nonneg, ns, max_steps):
    """One homotopy step for every signal: apply the pending join/drop to the factor, move along the
    equiangular direction to the next event (join, drop, or lam). ``ns`` (static) bounds the slots
    in use after the join, so the Gram-row loop only visits those.

    Example:
      >>> import jax.numpy as jnp
      >>> st = lars_init(jnp.array([[3.0, -1.0, 0.5]]), 1.0, 2, False)
      >>> st = lars_step(st, jnp.eye(3), 1.0, nonneg=False, ns=2, max_steps=8)   # atom 0 moves down to lam
      >>> st.done.tolist(), st.beta.tolist()
      ([True], [[2.0, 0.0]])
    """
    B, m = st.c.shape
    K = st.U.shape[1]
    dtype = st.c.dtype
    big = jnp.asarray(jnp.finfo(dtype).max, dtype)
    diag = jnp.diagonal(G)
    ks = jnp.arange(K)
    c, free, U, idx, s, beta = st.c, st.free, st.U, st.idx, st.s, st.beta
    act = ~st.done & ~st.bad & (st.nsteps < max_steps)
    bad = st.bad
    rows = jnp.arange(B)
    # the atom dropped in the previous step becomes eligible again
    free = free.at[rows, jnp.where(st.excl >= 0, st.excl, m)].set(1.0, mode="drop")

    # -- drop: remove slot i from the factor (rank-one downdate of G^{-1} = U^T U, then one
    #    Householder reflection so that row i of U is zero again) -----------------------------------
    hasd0 = act & (st.drop >= 0)
    # drops are rare (none in the first steps, a few percent later): downdate only a gathered
    # buffer of F signals; the others keep their drop pending and sit out this step
    F = min(_DROP_BUF, B)
    sel, valid = compact(hasd0, F)
    hasd = hasd0 & jnp.zeros((B,), bool).at[sel].set(valid, mode="drop")
    act = act & (~hasd0 | hasd)

    def downdate(U):
        g = jnp.minimum(sel, B - 1)
        Ug = U[g]
        eg = ((ks[None, :] == st.drop[g][:, None]) & valid[:, None]).astype(dtype)
        q = jnp.sum(Ug * eg[:, None, :], axis=2)
        qn = jnp.sqrt(jnp.sum(q * q, axis=1))
        qh = q / jnp.where(valid, qn, 1.0)[:, None]
        qi = jnp.sum(qh * eg, axis=1)
        sig = jnp.where(qi >= 0, -1.0, 1.0).astype(dtype)
        PU = Ug - qh[:, :, None] * jnp.sum(qh[:, :, None] * Ug, axis=1)[:, None, :]
        rowi = jnp.sum(PU * eg[:, :, None], axis=1)
        vv = qh - sig[:, None] * eg
        Un = PU + (sig / (1.0 + jnp.abs(qi)))[:, None, None] * vv[:, :, None] * rowi[:, None, :]
        kp = 1.0 - eg
        Un = Un * kp[:, :, None] * kp[:, None, :]
        return U.at[sel].set(Un, mode="drop")

    U = lax.cond(jnp.any(hasd), downdate, lambda U: U, U)
    ei = ((ks[None, :] == st.drop[:, None]) & hasd[:, None]).astype(dtype)        # (B, K)
    keep = 1.0 - ei
    dropped = jnp.sum(jnp.where(ei > 0, idx, 0), axis=1).astype(jnp.int32)
    excl = jnp.where(hasd, dropped, -1)
    idx = jnp.where(ei > 0, -1, idx)
    s = s * keep
    beta = beta * keep

    # -- join: grow the inverse Cholesky factor by one row (as in Batch-OMP) -------------------------
    hasj = act & (st.join >= 0)
    jn = jnp.maximum(st.join, 0)
    top = jnp.max(jnp.where(idx < 0, (K - ks)[None, :], 0), axis=1)                  # first free slot
    has_slot = top > 0
    slot = (K - top).astype(jnp.int32)
    safe = jnp.maximum(idx, 0)
    v = G[jn[:, None], safe]                                                        # G[S, new]
    w = jnp.sum(U * v[:, None, :], axis=2)                                         # U v
    d2 = diag[jn] - jnp.sum(w * w, axis=1)
    ok = has_slot & (d2 > dependence_tol(dtype) * diag[jn])
    bad = bad | (hasj & ~ok)
    full = st.full | (hasj & ~has_slot)
    doj = hasj & ok
    ej = ((ks[None, :] == slot[:, None]) & doj[:, None]).astype(dtype)
    dinv = jnp.where(doj, lax.rsqrt(jnp.where(doj, d2, 1.0)), 0.0)
    urow = (ej - jnp.sum(U * w[:, :, None], axis=1)) * dinv[:, None]
    U = U + ej[:, :, None] * urow[:, None, :]
    cj = jnp.take_along_axis(c, jn[:, None], axis=1)[:, 0]
    sj = jnp.ones_like(cj) if nonneg else jnp.sign(cj)
    idx = jnp.where(ej > 0, jn[:, None], idx)
    s = jnp.where(ej > 0, sj[:, None], s)
    act = act & ~bad
    free = free.at[rows, jnp.where(doj, jn, m)].set(0.0, mode="drop")

    # -- equiangular direction: w = G_SS^{-1} s, u = G[:, S] w ---------------------------------------
    w = inverse_gram_mv(U, s)
    w = jnp.where(act[:, None], w, 0.0)
    safe = jnp.maximum(idx, 0)
    u = w[:, 0:1] * G[safe[:, 0]]
    for i in range(1, ns):
        u = u + w[:, i:i + 1] * G[safe[:, i]]

    # -- step length: first join (an inactive |c_j| reaches the active level), drop (a coefficient
    #    crosses zero) or lam ----------------------------------------------------------------------
    lc = st.lam_c[:, None]
    tiny = jnp.finfo(dtype).tiny
    d1 = 1.0 - u
    n1 = jnp.maximum(lc - c, 0.0)
    if nonneg:
        tj = jnp.where(d1 > tiny, n1 / jnp.where(d1 > tiny, d1, 1.0), big)
    else:
        # min((lc - c)/(1 - u) over 1 - u > 0, (lc + c)/(1 + u) over 1 + u > 0) with one division
        d2m = 1.0 + u
        n2 = jnp.maximum(lc + c, 0.0)
        inner = jnp.abs(u) < 1.0
        num = jnp.where(inner, jnp.minimum(n1 * d2m, n2 * d1), jnp.where(u >= 1.0, n2, n1))
        den = jnp.where(inner, d1 * d2m, 1.0 + jnp.abs(u))
        tj = num / den
    tj = jnp.where(free > 0, tj, big)
    # the atom dropped at this knot (sign s_e, |c_e| = lam_c) may re-enter within this piece only with the opposite
    # sign, where c_e - gamma u_e = -s_e (lam_c - gamma): gamma = (lam_c + s_e c_e) / (1 + s_e u_e) (its same-sign
    # crossing is at gamma = 0, the knot itself; two lines meet once). Non-negative codes have no opposite sign.
    if not nonneg:
        has_ex = excl >= 0
        exs = jnp.maximum(excl, 0)
        ce = jnp.take_along_axis(c, exs[:, None], axis=1)[:, 0]
        ue = jnp.take_along_axis(u, exs[:, None], axis=1)[:, 0]
        se = jnp.where(ce >= 0, 1.0, -1.0).astype(dtype)
        de = 1.0 + se * ue
        te = jnp.where(has_ex & (de > tiny), jnp.maximum(st.lam_c + se * ce, 0.0) / jnp.where(de > tiny, de, 1.0),
                       big)
        tj = jnp.where(jnp.arange(m, dtype=jnp.int32)[None, :] == excl[:, None], te[:, None], tj)   # fuses; excl -1: none
    # first minimum in one integer reduction: t >= 0, so its bit pattern is monotone; the low bits
    # carry the index (ties closer than 2^-(mantissa - nb) relative resolve to the lowest index)
    jbest = _packed_argmin(tj)
    cb = jnp.take_along_axis(c, jbest[:, None], axis=1)[:, 0]
    ub = jnp.take_along_axis(u, jbest[:, None], axis=1)[:, 0]
    lcv = st.lam_c
    e1 = 1.0 - ub
    g1 = jnp.where(e1 > tiny, jnp.maximum(lcv - cb, 0.0) / jnp.where(e1 > tiny, e1, 1.0), big)
    if not nonneg:
        e2 = 1.0 + ub
        g1 = jnp.minimum(g1, jnp.where(e2 > tiny, jnp.maximum(lcv + cb, 0.0) / jnp.where(e2 > tiny, e2, 1.0), big))
    fb = jnp.take_along_axis(free, jbest[:, None], axis=1)[:, 0]
    gjoin = jnp.where(fb > 0, g1, big)
    if not nonneg:
        gjoin = jnp.where(has_ex & (jbest == excl), te, gjoin)
    bw = beta * w
    td = jnp.where(bw < 0, -beta / jnp.where(bw < 0, w, 1.0), big)
    gdrop = jnp.min(td, axis=1)
    dslot = jnp.argmin(td, axis=1).astype(jnp.int32)
    gstop = st.lam_c - lam
    stop = gstop <= jnp.minimum(gjoin, gdrop)
    isdrop = ~stop & (gdrop < gjoin)
    isjoin = ~stop & ~isdrop
    gamma = jnp.where(act, jnp.minimum(gstop, jnp.minimum(gjoin, gdrop)), 0.0)
    beta = beta + gamma[:, None] * w
    c = c - gamma[:, None] * u
    lam_c = jnp.where(act & stop, lam, st.lam_c - gamma)
    return LarsState(c, free, U, idx, s, beta, lam_c,
                     jnp.where(act & isjoin, jbest, -1).astype(jnp.int32),
                     jnp.where(act & isdrop, dslot, jnp.where(hasd0 & ~hasd, st.drop, -1)).astype(jnp.int32),
                     excl, st.done | (act & stop), bad, st.nsteps + act.astype(jnp.int32), full)


def lars_finish(st: LarsState, C0, lam):
    """Exact codes (B, m) on the final active set and signs: a_S = G_SS^{-1}(c0_S - lam s) = U^T U (c0_S - lam s),
    zero for the signals whose path did not reach lam. ``C0`` = Y D, the initial correlations."""
    used = st.idx >= 0
    safe = jnp.maximum(st.idx, 0)
    rhs = jnp.where(used, jnp.take_along_axis(C0, safe, axis=1) - lam * st.s, 0.0)
    x = inverse_gram_mv(st.U, rhs)
    x = jnp.where(used & st.done[:, None], x, 0.0)
    return scatter_slots(st.idx, x, C0.shape[1])


def _pad_slots(st: LarsState, K):
    k = st.U.shape[1]
    if k == K:
        return st
    p = K - k
    return st._replace(U=jnp.pad(st.U, ((0, 0), (0, p), (0, p))),
                       idx=jnp.pad(st.idx, ((0, 0), (0, p)), constant_values=-1),
                       s=jnp.pad(st.s, ((0, 0), (0, p))), beta=jnp.pad(st.beta, ((0, 0), (0, p))))


def homotopy(atoms, G, Y, lam, *, nonneg, K, steps1, steps2, max_steps, chunk, buf) -> LarsState:
    """The LARS-Lasso homotopy for all rows of Y (B, n) down to ``lam``.

    ``steps1`` lockstep steps per chunk of ``chunk`` signals (with at most ``min(K, steps1)`` slots), then the
    unfinished signals are gathered ``buf`` at a time and advanced ``steps2`` steps per round (lane refill), with
    ``K`` slots, until every signal is done, bad (overflow / dependent atom) or at ``max_steps`` steps.

    Returns:
      the final ``LarsState`` (K slots); ``lars_finish`` turns it into codes.

    Example:
      >>> import jax.numpy as jnp
      >>> D = jnp.eye(3); Y = jnp.array([[3.0, -1.0, 0.5]])
      >>> st = homotopy(D, D.T @ D, Y, 1.0, nonneg=False, K=3, steps1=4, steps2=2, max_steps=8, chunk=1, buf=1)
      >>> lars_finish(st, Y @ D, 1.0).tolist()          # soft thresholding for an orthonormal D
      [[2.0, 0.0, 0.0]]
    """
    B = Y.shape[0]
    K1 = max(1, min(K, steps1))

    def run_chunk(Yc):
        st = lars_init(Yc @ atoms, lam, K1, nonneg)
        step = partial(lars_step, G=G, lam=lam, nonneg=nonneg, ns=K1, max_steps=max_steps)
        return lax.fori_loop(0, min(steps1, max_steps), lambda _, st: step(st), st)

    st = _pad_slots(map_chunks(run_chunk, Y, chunk), K)
    if max_steps <= steps1:
        return st
    F = min(buf, B)

    def pending(st):
        return ~st.done & ~st.bad & (st.nsteps < max_steps)

    def advance(st, sel, valid):
        sub = gather(st, sel)
        sub = sub._replace(done=sub.done | ~valid)
        step = partial(lars_step, G=G, lam=lam, nonneg=nonneg, ns=K, max_steps=max_steps)
        return scatter(st, sel, lax.fori_loop(0, steps2, lambda _, st: step(st), sub))

    return refill(pending, advance, st, F, -(-max_steps // steps2) * -(-B // F))
