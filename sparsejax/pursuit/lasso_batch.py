"""Fast batched Lasso: a batched LARS-Lasso homotopy with an exact finish and a certified stop.

For every signal y_b (rows of ``Y``) solve

    F_b(a) = 1/2 ||y_b - D a||_2^2 + lam ||a||_1          (nonneg: + indicator(a >= 0)).

Method (``method="auto"``/``"homotopy"``): the LARS-Lasso homotopy (Osborne, Presnell & Turlach
2000; Efron et al. 2004) written like Batch-OMP (``_batch_omp.batch_omp_core``): every operation is an array
operation over the batch axis, no LAPACK. With G = D^T D and c0 = D^T y, each signal keeps its
correlations c = c0 - G a (B, m), its active set in fixed slots, the signs s and the inverse Cholesky
factor U of G_SS (U G_SS U^T = I, zero rows/columns on free slots). One step:

    w = U^T U s (equiangular direction),  u = G[:, S] w (gathered Gram rows),
    gamma = min(first join:  |c_j - gamma u_j| = lam_c - gamma  (j inactive),
                first drop:  a_i + gamma w_i = 0,
                stop:        lam_c - gamma = lam),
    a += gamma w,  c -= gamma u,  lam_c -= gamma.

A join grows U by one row (as in Batch-OMP); a drop is a rank-one downdate of G^{-1} = U^T U followed
by one Householder reflection that zeroes the dropped row of U, O(K^2) per signal. Drops are rare (none
in the first steps, a few percent of signals per step later), so each step downdates only a gathered
buffer of ``_DROP_BUF`` signals (skipped when none drops); further drops wait one step. The steps run in
lockstep per chunk (``lockstep_steps``); the unfinished signals are then gathered ``refill_size`` at a
time and advanced ``refill_steps`` steps per round until done (lane refill). The path is only used
to find the active set and signs: the codes are recomputed exactly, a_S = G_SS^{-1}(c0_S - lam s), so
float32 drift along the path does not reach the result. Each signal is then certified by its
duality gap

    gap = P(a) - D(theta),  theta = r / max(1, ||D^T r||_inf / lam),  r = y - D a,

(computed in the cancellation-free form ||r||^2 (1 - 1/s)^2 / 2 + lam||a||_1 - (D^T r)^T a / s);
``converged`` means gap <= tol * P(a). Signals that fail (more than ``max_active`` active atoms, a
numerically dependent atom, more than ``max_iter`` steps, or a gap above tol) are gathered into a
small fixed-size buffer and finished by FISTA (warm start, ``sparsejax.solve.iterate``) followed by a
semismooth-Newton polish from the FISTA sign pattern; ``Solution.state`` reports which signals needed it.

``method="active_set"`` keeps the previous first stage (semismooth Newton / primal-dual active set
with continuation, Ito & Kunisch 2008; Fan, Jiao & Lu 2014, one small Cholesky per step);
``method="fista"`` runs only the FISTA path (vmapped, per-signal stop), for reference.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax.operators import Dense, LinearOperator
from sparsejax.pursuit._batch_omp import batch_omp_core, slot_mv
from sparsejax.pursuit.ista import fista_solver
from sparsejax.solve import Solution, Solver, iterate

__all__ = ["lasso_batch", "duality_gap"]

METHODS = ("auto", "guess", "homotopy", "active_set", "fista")
_POLISH_ITER = 30


class BatchState(NamedTuple):
    """Per-signal diagnostics of ``lasso_batch`` (each of shape (B,))."""

    gap: jax.Array          # duality gap P(a) - D(theta) (an upper bound on P(a) - P*)
    newton_steps: jax.Array  # active-set (Newton) iterations
    fallback: jax.Array     # True when the signal was finished by FISTA
    fallback_steps: jax.Array
    fast_path: jax.Array = None  # True when the guess-and-verify fast path certified the signal


class _SSNState(NamedTuple):
    a: jax.Array        # (m,) current codes
    sgn: jax.Array      # (m,) sign pattern used by the last solve (-1, 0, 1)
    lam_t: jax.Array    # continuation value of lam
    done: jax.Array     # pattern repeated at lam_t == lam
    bad: jax.Array      # overflow of max_active or a non-finite solve


def _dual_gap(g, r, a, lam, nonneg):
    """Duality gap from the residual r = y - D a and g = D^T r (per signal), cancellation-free."""
    dtype = r.dtype
    gmax = jnp.max(g) if nonneg else jnp.max(jnp.abs(g))
    s = jnp.maximum(1.0, gmax / jnp.maximum(lam, jnp.finfo(dtype).tiny))
    rr = jnp.sum(r * r)
    l1 = jnp.sum(jnp.abs(a))
    gap = 0.5 * rr * (1.0 - 1.0 / s) ** 2 + lam * l1 - jnp.sum(g * a) / s
    obj = 0.5 * rr + lam * l1
    return jnp.maximum(gap, 0.0), obj


def duality_gap(D, y, a, lam, nonneg: bool = False):
    """Lasso duality gap and objective (P(a) - D(theta) >= P(a) - P*) for one signal.

    Args:
      D: (n, m) atoms or a ``Dense`` operator. y: (n,). a: (m,) codes. lam: scalar >= 0.
    Returns:
      (gap, objective).
    """
    atoms = D.atoms if isinstance(D, Dense) else jnp.asarray(D)
    r = y - atoms @ a
    return _dual_gap(atoms.T @ r, r, a, lam, nonneg)


def _ssn_solver(atoms, G, y, c, lam, lam0, *, max_active, max_new, shrink_factor, nonneg, a0=None) -> Solver:
    """Semismooth Newton / primal-dual active set for one signal (vmap for a batch)."""
    m = G.shape[0]
    dtype = y.dtype
    eye = jnp.eye(max_active, dtype=dtype)

    def step(s: _SSNState) -> _SSNState:
        lam_t = s.lam_t
        g = c - atoms.T @ (atoms @ s.a)
        z = s.a + g
        score = (z if nonneg else jnp.abs(z)) - lam_t
        pos = score > 0
        in_s = s.a != 0
        keep = pos & in_s
        new = pos & ~in_s
        # newcomers: the strongest violators (score >= half the largest), at most max_new of them;
        # slots assigned by prefix sums (lax.top_k is slow on CPU)
        nmax = jnp.max(jnp.where(new, score, 0))
        accept = new & (score >= 0.5 * nmax)
        nkeep = jnp.sum(keep)
        pk = jnp.cumsum(keep) - 1
        pn = nkeep + jnp.cumsum(accept) - 1
        pos = jnp.where(keep, pk, jnp.where(accept & (pn < nkeep + max_new), pn, max_active))
        any_new = jnp.any(new)
        overflow = (nkeep > max_active) | ((nkeep >= max_active) & any_new)
        idx = jnp.zeros((max_active,), jnp.int32).at[pos].set(jnp.arange(m, dtype=jnp.int32), mode="drop")
        nact = jnp.minimum(jnp.sum(pos < max_active), max_active)
        act = jnp.arange(max_active) < nact
        sg = jnp.ones((max_active,), dtype) if nonneg else jnp.sign(z[idx])
        sg = jnp.where(act, sg, 0)
        GA = G[idx[:, None], idx[None, :]]
        M = jnp.where(act[:, None] & act[None, :], GA, eye)
        rhs = jnp.where(act, c[idx] - lam_t * sg, 0)
        cf = jax.scipy.linalg.cho_factor(M, lower=True)
        x = jax.scipy.linalg.cho_solve(cf, rhs[:, None])[:, 0]
        x = jnp.where(act, x, 0)
        a_new = jnp.zeros((m,), dtype).at[idx].add(x)  # inactive slots add 0
        sgn_new = jnp.zeros((m,), s.sgn.dtype).at[idx].add(sg.astype(s.sgn.dtype))
        at_lam = lam_t <= lam
        same = jnp.all(sgn_new == s.sgn)
        finite = jnp.all(jnp.isfinite(x))
        done = same & at_lam & ~any_new & ~overflow & finite
        lam_next = jnp.maximum(lam, lam_t * shrink_factor)
        # a converged signal stays frozen (its solve is a fixed point anyway)
        keep_old = s.done
        sel = lambda o, n: jnp.where(keep_old, o, n)
        return _SSNState(sel(s.a, jnp.where(finite, a_new, s.a)), sel(s.sgn, sgn_new), sel(s.lam_t, lam_next),
                         s.done | done, sel(s.bad, overflow | ~finite))

    def init():
        if a0 is None:
            return _SSNState(jnp.zeros((m,), dtype), jnp.zeros((m,), jnp.int8), lam0, jnp.asarray(False),
                             jnp.asarray(False))
        # warm start: a sentinel pattern, so a repeated pattern always means two identical solves
        return _SSNState(a0, jnp.full((m,), 2, jnp.int8), lam0, jnp.asarray(False), jnp.asarray(False))

    return Solver(init=init, step=step, codes=lambda s: s.a,
                  error=lambda old, new: jnp.where(new.done, 0.0, 1.0).astype(dtype))


_DEP = 32.0  # a joining atom is dependent when its Cholesky pivot is below _DEP eps G_jj
_DROP_BUF = 32  # drops downdated per step (gathered); further drops wait one step


class _LarsState(NamedTuple):
    """Batched LARS-Lasso homotopy state (leading axis: signals)."""

    c: jax.Array       # (B, m) correlations D^T(y - D a), updated along the path
    free: jax.Array    # (B, m) 1.0 for atoms outside the active set
    U: jax.Array       # (B, K, K) inverse Cholesky factor: U G_SS U^T = I (zero rows/cols on free slots)
    idx: jax.Array     # (B, K) atom in each slot (-1: free slot)
    s: jax.Array       # (B, K) signs of the active atoms (0 on free slots)
    beta: jax.Array    # (B, K) coefficients along the path
    lam_c: jax.Array   # (B,) current path value of lam (= |c_j| on the active set)
    join: jax.Array    # (B,) atom to add at the next step (-1: none)
    drop: jax.Array    # (B,) slot to remove at the next step (-1: none)
    excl: jax.Array    # (B,) atom just dropped: may not re-enter in this step (-1: none)
    done: jax.Array    # (B,) reached lam
    bad: jax.Array     # (B,) slot overflow or a (numerically) dependent atom
    nsteps: jax.Array  # (B,) homotopy steps taken


def _first_max(x, rev):
    """Index of the first maximum of x (B, m) along axis 1 and the maximum (no argmax: slow on CPU)."""
    m = x.shape[1]
    mx = jnp.max(x, axis=1, keepdims=True)
    top = jnp.max((1.0 - jnp.sign(mx - x)) * rev[None, :], axis=1)
    return jnp.clip((m - top).astype(jnp.int32), 0, m - 1), mx[:, 0]


def _packed_argmin(t):
    """Index of the (first) minimum of t >= 0 along axis 1 via one integer min-reduction."""
    m = t.shape[1]
    nb = max(1, (m - 1).bit_length())
    it = jnp.int32 if t.dtype == jnp.float32 else jnp.int64
    bits = lax.bitcast_convert_type(t, it)
    packed = (bits & ~((1 << nb) - 1)) | jnp.arange(m, dtype=it)[None, :]
    return (jnp.min(packed, axis=1) & ((1 << nb) - 1)).astype(jnp.int32)


def _lars_init(c0, lam, K, nonneg):
    B, m = c0.shape
    dtype = c0.dtype
    rev = (m - jnp.arange(m)).astype(dtype)
    j, mx = _first_max(c0 if nonneg else jnp.abs(c0), rev)
    done = mx <= lam
    z = jnp.zeros((B, K), dtype)
    m1 = jnp.full((B,), -1, jnp.int32)
    return _LarsState(c0, jnp.ones((B, m), dtype), jnp.zeros((B, K, K), dtype), jnp.full((B, K), -1, jnp.int32),
                      z, z, jnp.where(done, lam, mx), jnp.where(done, -1, j), m1, m1, done,
                      jnp.zeros((B,), bool), jnp.zeros((B,), jnp.int32))


def _lars_step(st: _LarsState, G, lam, *, nonneg, ns, max_steps):
    """One homotopy step for every signal: apply the pending join/drop to the factor, move along the
    equiangular direction to the next event (join, drop, or lam). ``ns`` (static) bounds the slots
    in use after the join, so the Gram-row loop only visits those."""
    B, m = st.c.shape
    K = st.U.shape[1]
    dtype = st.c.dtype
    big = jnp.asarray(jnp.finfo(dtype).max, dtype)
    diag = jnp.diagonal(G)
    rev = (m - jnp.arange(m)).astype(dtype)
    ks = jnp.arange(K)
    atoms_m = jnp.arange(m)
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
    sel, valid = _compact(hasd0, F)
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
    ok = has_slot & (d2 > _DEP * jnp.finfo(dtype).eps * diag[jn])
    bad = bad | (hasj & ~ok)
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
    w = jnp.sum(U * jnp.sum(U * s[:, None, :], axis=2)[:, :, None], axis=1)        # U^T U s
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
    return _LarsState(c, free, U, idx, s, beta, lam_c,
                      jnp.where(act & isjoin, jbest, -1).astype(jnp.int32),
                      jnp.where(act & isdrop, dslot, jnp.where(hasd0 & ~hasd, st.drop, -1)).astype(jnp.int32),
                      excl, st.done | (act & stop), bad, st.nsteps + act.astype(jnp.int32))


def _lars_finish(st: _LarsState, C0, lam):
    """Exact codes on the final active set and signs: a_S = G_SS^{-1}(c0_S - lam s) = U^T U (...)."""
    B, m = C0.shape
    used = st.idx >= 0
    safe = jnp.maximum(st.idx, 0)
    rhs = jnp.where(used, jnp.take_along_axis(C0, safe, axis=1) - lam * st.s, 0.0)
    x = jnp.sum(st.U * jnp.sum(st.U * rhs[:, None, :], axis=2)[:, :, None], axis=1)
    x = jnp.where(used & st.done[:, None], x, 0.0)
    rows = jnp.broadcast_to(jnp.arange(B)[:, None], used.shape)
    return jnp.zeros((B, m), C0.dtype).at[rows, jnp.where(used, st.idx, m)].add(x, mode="drop")


def _pad_slots(st: _LarsState, K):
    k = st.U.shape[1]
    if k == K:
        return st
    p = K - k
    return st._replace(U=jnp.pad(st.U, ((0, 0), (0, p), (0, p))),
                       idx=jnp.pad(st.idx, ((0, 0), (0, p)), constant_values=-1),
                       s=jnp.pad(st.s, ((0, 0), (0, p))), beta=jnp.pad(st.beta, ((0, 0), (0, p))))


def _compact(mask, F):
    """Indices of the first F True entries of mask (B,), padded with B; and which are real."""
    B = mask.shape[0]
    pos = jnp.cumsum(mask) - 1
    tgt = jnp.where(mask & (pos < F), pos, F)
    sel = jnp.full((F,), B, jnp.int32).at[tgt].set(jnp.arange(B, dtype=jnp.int32), mode="drop")
    return sel, sel < B


def _homotopy(atoms, G, Y, lam, *, nonneg, K, steps1, steps2, max_steps, chunk, buf):
    """LARS-Lasso homotopy for all rows of Y: ``steps1`` lockstep steps per chunk, then the unfinished
    signals are gathered ``buf`` at a time and advanced ``steps2`` steps per round (lane refill)."""
    B, n = Y.shape
    m = atoms.shape[1]
    dtype = Y.dtype
    K1 = max(1, min(K, steps1))
    nchunk = -(-B // chunk)
    pad = nchunk * chunk - B
    Yp = jnp.concatenate([Y, jnp.zeros((pad, n), dtype)]) if pad else Y

    def run_chunk(Yc):
        st = _lars_init(Yc @ atoms, lam, K1, nonneg)
        step = partial(_lars_step, G=G, lam=lam, nonneg=nonneg, ns=K1, max_steps=max_steps)
        return lax.fori_loop(0, min(steps1, max_steps), lambda _, st: step(st), st)

    st = lax.map(run_chunk, Yp.reshape(nchunk, chunk, n))
    st = jax.tree_util.tree_map(lambda x: x.reshape((nchunk * chunk,) + x.shape[2:])[:B], st)
    st = _pad_slots(st, K)
    if max_steps <= steps1:
        return st
    F = min(buf, B)

    def pending(st):
        return ~st.done & ~st.bad & (st.nsteps < max_steps)

    def cond(carry):
        st, rnd = carry
        return jnp.any(pending(st)) & (rnd < -(-max_steps // steps2) * -(-B // F))

    def body(carry):
        st, rnd = carry
        sel, valid = _compact(pending(st), F)
        gsel = jnp.minimum(sel, B - 1)
        sub = jax.tree_util.tree_map(lambda x: x[gsel], st)
        sub = sub._replace(done=sub.done | ~valid)
        step = partial(_lars_step, G=G, lam=lam, nonneg=nonneg, ns=K, max_steps=max_steps)
        sub = lax.fori_loop(0, steps2, lambda _, st: step(st), sub)
        st = jax.tree_util.tree_map(lambda x, y: x.at[sel].set(y, mode="drop"), st, sub)
        return st, rnd + 1

    st, _ = lax.while_loop(cond, body, (st, jnp.asarray(0)))
    return st


# ----------------------------------------------------------------------------------------------
# guess-and-verify fast path: Batch-OMP support -> sign-constrained restricted solve -> prune/grow
# ----------------------------------------------------------------------------------------------

def _guess_chunk(atoms, G, Yc, lam, *, k, K, n_prune, n_grow, n_add, nonneg):
    """Guess the Lasso active set and signs of every row of C0 = Y D (B, m).

    Batch-OMP picks k atoms and returns the inverse Cholesky factor U of G_SS; H = U^T U = G_SS^{-1}
    (B, K, K, zero rows/cols on free slots) and s = sign of the OMP least-squares coefficients. Then
    a_S = H (c0_S - lam s); atoms whose a_S disagrees with s are removed one at a time (the first to
    cross zero as lam' runs from 0 to lam; rank-one downdate H - h h^T / h_ii), and the strongest
    violator of |c_j| <= lam is added (bordering update H + (h - e)(h - e)^T / d), ``n_grow`` times.
    The result is only a candidate: the caller verifies the KKT conditions and the duality gap.
    Returns the codes (B, m), a sign-consistency flag (B,) and the number of guess operations (B,).
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
            j, mx = _first_max(score, rev)
            score = jnp.where(jnp.arange(m)[None, :] == j[:, None], 0.0, score)
            top = jnp.max(jnp.where(used, 0, K - ks[None, :]), axis=1)              # first free slot
            slot = K - top
            safe = jnp.maximum(idx, 0)
            v = jnp.where(used, jnp.take_along_axis(G[j], safe, axis=1), 0.0)        # G[S, j]
            h = slot_mv(H, v)
            d = diag[j] - jnp.sum(v * h, axis=1)
            do = (mx > lam) & (top > 0) & (d > _DEP * jnp.finfo(dtype).eps * diag[j])
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
    rows = jnp.broadcast_to(jnp.arange(B)[:, None], idx.shape)
    codes = jnp.zeros((B, m), dtype).at[rows, jnp.where(used, idx, m)].add(a, mode="drop")
    R, Gr = correlations(a, idx)
    return codes, sign_ok, nops, R, Gr


def _kkt_ok(Gr, A, lam, nonneg, tol_abs):
    """Exact optimality test from the correlations Gr = D^T(y - D a) of the final codes."""
    on = A != 0
    if nonneg:
        off = jnp.where(on, -jnp.inf, Gr)
        onv = jnp.where(on, jnp.abs(Gr - lam), 0.0)
        sgn = jnp.all(A >= 0, axis=1)
    else:
        off = jnp.where(on, -jnp.inf, jnp.abs(Gr))
        onv = jnp.where(on, jnp.abs(Gr - lam * jnp.sign(A)), 0.0)
        sgn = True
    return (jnp.max(off, axis=1) <= lam + tol_abs) & (jnp.max(onv, axis=1) <= tol_abs) & sgn


def _gap_batch(atoms, Y, A, lam, nonneg):
    R = Y - A @ atoms.T
    Gr = R @ atoms
    return jax.vmap(lambda g, r, a: _dual_gap(g, r, a, lam, nonneg))(Gr, R, A)


@partial(jax.jit, static_argnames=("max_iter", "nonneg", "method", "max_active", "max_new", "chunk",
                                   "fallback_size", "fallback_iter", "steps1", "steps2", "buf", "guess_k",
                                   "guess_prune", "guess_grow", "guess_add", "hbuf"))
def _lasso_batch(atoms, Y, lam, tol, *, max_iter, nonneg, method, max_active, max_new, chunk,
                 fallback_size, fallback_iter, steps1=12, steps2=4, buf=256, guess_k=8, guess_prune=2,
                 guess_grow=2, guess_add=4, hbuf=512):
    B, n = Y.shape
    m = atoms.shape[1]
    dtype = Y.dtype
    tiny = jnp.finfo(dtype).tiny
    L = jnp.linalg.eigvalsh(atoms @ atoms.T if n <= m else atoms.T @ atoms)[-1]

    def fista_one(y, a0):
        fs = fista_solver(Dense(atoms), y, lam, L, a0, nonneg, restart=True)

        def rel_gap(old, new):  # stop FISTA on the certified relative duality gap
            r = y - atoms @ new.x
            gap, obj = _dual_gap(atoms.T @ r, r, new.x, lam, nonneg)
            return gap / jnp.maximum(obj, tiny)

        tol_f = jnp.maximum(tol, 256 * jnp.finfo(dtype).eps)
        sol = iterate(fs._replace(error=rel_gap), max_iter=fallback_iter, tol=tol_f, mode="while")
        return sol.codes, sol.num_steps

    if method == "fista":
        A, steps = jax.vmap(fista_one)(Y, jnp.zeros((B, m), dtype))
        gap, obj = _gap_batch(atoms, Y, A, lam, nonneg)
        conv = gap <= tol * jnp.maximum(obj, tiny)
        st = BatchState(gap, jnp.zeros((B,), jnp.int32), jnp.ones((B,), bool), steps, jnp.zeros((B,), bool))
        return Solution(A, steps, conv, ~jnp.all(jnp.isfinite(A), axis=1), obj, gap / jnp.maximum(obj, tiny), st)

    G = atoms.T @ atoms
    shrink_factor = jnp.asarray(0.5, dtype)
    # the gap itself is only computable to ~100 eps relative (rounding in r and D^T r)
    tol_eff = jnp.maximum(tol, 256 * jnp.finfo(dtype).eps)
    gap = None
    fast = jnp.zeros((B,), bool)
    if method == "guess":
        Kg = min(max_active, guess_k + guess_grow * guess_add)
        kg = min(guess_k, Kg)
        nchunk = -(-B // chunk)
        pad = nchunk * chunk - B
        Yp = jnp.concatenate([Y, jnp.zeros((pad, n), dtype)]) if pad else Y

        def guess_block(Yc):
            A, sign_ok, steps, R, Gr = _guess_chunk(atoms, G, Yc, lam, k=kg, K=Kg, n_prune=guess_prune,
                                                    n_grow=guess_grow, n_add=guess_add, nonneg=nonneg)
            gap, obj = jax.vmap(lambda g, r, a: _dual_gap(g, r, a, lam, nonneg))(Gr, R, A)
            fast = (sign_ok & _kkt_ok(Gr, A, lam, nonneg, tol_eff * lam) & jnp.all(jnp.isfinite(A), axis=1)
                    & (gap <= tol_eff * jnp.maximum(obj, tiny)))
            return A, steps, gap, obj, fast

        out = lax.map(guess_block, Yp.reshape(nchunk, chunk, n))
        A, steps, gap, obj, fast = jax.tree_util.tree_map(lambda x: x.reshape((nchunk * chunk,) + x.shape[2:])[:B], out)
        # the rest: the exact homotopy (from lam_max), gathered hbuf signals at a time
        Fh = min(hbuf, B)

        def h_cond(carry):
            return jnp.any(carry[3]) & (carry[6] < -(-B // Fh))

        def h_body(carry):
            A, steps, done, todo, gap, obj, rnd = carry
            sel, valid = _compact(todo, Fh)
            Ys = jnp.where(valid[:, None], Y[jnp.minimum(sel, B - 1)], 0.0)
            hs = _homotopy(atoms, G, Ys, lam, nonneg=nonneg, K=max_active, steps1=steps1, steps2=steps2,
                           max_steps=max_iter, chunk=Fh, buf=min(buf, Fh))
            As = _lars_finish(hs, Ys @ atoms, lam)
            dn = hs.done & ~hs.bad & jnp.all(jnp.isfinite(As), axis=1)
            g, o = _gap_batch(atoms, Ys, As, lam, nonneg)
            put = lambda x, y: x.at[sel].set(y, mode="drop")  # noqa: E731
            return (put(A, As), put(steps, steps[jnp.minimum(sel, B - 1)] + hs.nsteps), put(done, dn),
                    put(todo, jnp.zeros_like(valid)), put(gap, g), put(obj, o), rnd + 1)

        A, steps, done, _, gap, obj, _ = lax.while_loop(
            h_cond, h_body, (A, steps, fast, ~fast, gap, obj, jnp.asarray(0)))
    elif method == "homotopy":
        hs = _homotopy(atoms, G, Y, lam, nonneg=nonneg, K=max_active, steps1=steps1, steps2=steps2,
                       max_steps=max_iter, chunk=chunk, buf=buf)
        A = _lars_finish(hs, Y @ atoms, lam)
        steps = hs.nsteps
        done = hs.done & ~hs.bad & jnp.all(jnp.isfinite(A), axis=1)
    else:
        nchunk = -(-B // chunk)
        pad = nchunk * chunk - B
        Yp = jnp.concatenate([Y, jnp.zeros((pad, n), dtype)]) if pad else Y

        def solve_chunk(Yc):
            C = Yc @ atoms

            def one(y, c):
                lam0 = jnp.maximum(lam, 0.6 * (jnp.max(c) if nonneg else jnp.max(jnp.abs(c))))
                solver = _ssn_solver(atoms, G, y, c, lam, lam0, max_active=max_active, max_new=max_new,
                                     shrink_factor=shrink_factor, nonneg=nonneg)
                sol = iterate(solver, max_iter=max_iter, tol=0.5, mode="while")
                return sol.codes, sol.num_steps, sol.state.done

            return jax.vmap(one)(Yc, C)

        A, steps, done = lax.map(solve_chunk, Yp.reshape(nchunk, chunk, n))
        A = A.reshape(-1, m)[:B]
        steps = steps.reshape(-1)[:B]
        done = done.reshape(-1)[:B]
    if gap is None:
        gap, obj = _gap_batch(atoms, Y, A, lam, nonneg)
    ok = done & (gap <= tol_eff * jnp.maximum(obj, tiny))

    # fallback on the failures, gathered fallback_size at a time: FISTA warm-started from the first
    # stage's codes, then a Newton polish from its sign pattern
    F = min(fallback_size, B)

    def polish(y, a0):
        # Newton (active-set) steps at lam from a0: exact KKT once the sign pattern is right
        solver = _ssn_solver(atoms, G, y, atoms.T @ y, lam, lam, max_active=max_active, max_new=max_new,
                             shrink_factor=shrink_factor, nonneg=nonneg, a0=a0)
        sol = iterate(solver, max_iter=_POLISH_ITER, tol=0.5, mode="while")
        return jnp.where(sol.state.done, sol.codes, a0), sol.num_steps, sol.state.done

    def certified(Ys, As, dn):
        g, o = _gap_batch(atoms, Ys, As, lam, nonneg)
        return dn & (g <= tol_eff * jnp.maximum(o, tiny)) & jnp.all(jnp.isfinite(As), axis=1), g, o

    def fb_cond(carry):
        _, todo, _, _, _, rnd = carry
        return jnp.any(todo) & (rnd < -(-B // F))

    def fb_body(carry):
        A, todo, fsteps, gap, obj, rnd = carry
        sel, valid = _compact(todo, F)
        gsel = jnp.minimum(sel, B - 1)
        Ys, As = Y[gsel], A[gsel]
        # warm start from the first stage unless it is worse than zero (ill-conditioned solve)
        Rs = Ys - As @ atoms.T
        worse = 0.5 * jnp.sum(Rs * Rs, 1) + lam * jnp.sum(jnp.abs(As), 1) > 0.5 * jnp.sum(Ys * Ys, 1)
        worse = worse | ~jnp.all(jnp.isfinite(As), 1)
        As = jnp.where(worse[:, None], 0, As)
        codes, ns = jax.vmap(fista_one)(Ys, As)
        codes, ns2, dn = jax.vmap(polish)(Ys, codes)
        _, g, o = certified(Ys, codes, dn)
        ns = ns + ns2
        put = lambda x, y: x.at[sel].set(y, mode="drop")
        return (put(A, codes), put(todo, jnp.zeros_like(valid)), put(fsteps, ns), put(gap, g), put(obj, o),
                rnd + 1)

    todo0 = ~ok
    A, _, fsteps, gap, obj, _ = lax.while_loop(
        fb_cond, fb_body, (A, todo0, jnp.zeros((B,), jnp.int32), gap, obj, jnp.asarray(0)))
    rel = gap / jnp.maximum(obj, tiny)
    conv = rel <= tol_eff
    diverged = ~jnp.all(jnp.isfinite(A), axis=1)
    st = BatchState(gap, steps, todo0, fsteps, fast)
    return Solution(A, steps + fsteps, conv & ~diverged, diverged, obj, rel, st)


def lasso_batch(D, Y, lam, *, tol=1e-6, max_iter: int | None = None, nonneg: bool = False, method: str = "auto",
                max_active: int | None = None, max_new: int = 6, chunk: int | None = None, fallback_size: int = 128,
                fallback_iter: int = 5000, lockstep_steps: int = 12, refill_steps: int = 4,
                refill_size: int = 256) -> Solution:
    """Solve B Lasso problems min_a 1/2||y_b - D a||^2 + lam||a||_1 with one dictionary, fast.

    Args:
      D: (n, m) atoms or a ``Dense`` operator.
      Y: (B, n) signals (one per row).
      lam: scalar l1 weight >= 0 (traced: changing it does not recompile).
      tol: target relative duality gap (gap / objective), the per-signal convergence test. The gap is
        only computable to about 100 eps relative, so the test uses max(tol, 256 eps) (3e-5 in
        float32); Newton-terminated signals satisfy the KKT conditions to rounding error anyway.
      max_iter: homotopy steps per signal (joins + drops + the final step; default 128) before falling
        back to FISTA; for ``method="active_set"`` the Newton iterations (default 30).
      nonneg: constrain a >= 0.
      method: "auto"/"homotopy" (batched LARS-Lasso + exact finish + FISTA fallback), "active_set"
        (semismooth-Newton active set + FISTA fallback) or "fista".
      max_active: static size of the gathered active set, default min(32, 3n/4, m) (signals needing
        more go to FISTA).
      max_new: newcomers admitted per Newton step (damping; Newton polish and "active_set").
      chunk: signals per ``lax.map`` chunk (default 2048 for the guess path, 512 for the homotopy).
      lockstep_steps: homotopy steps every chunk takes in lockstep (about the typical support size).
      refill_steps, refill_size: after that, unfinished signals are gathered ``refill_size`` at a time
        and advanced ``refill_steps`` steps per round.
      fallback_size, fallback_iter: FISTA fallback buffer size and iteration cap.

    Returns:
      ``Solution`` with codes (B, m) and per-signal ``num_steps``, ``converged`` (relative duality gap
      <= tol), ``diverged``, ``objective``, ``error`` (the relative duality gap) and ``state`` a
      ``BatchState`` (gap, newton_steps, fallback, fallback_steps).

    References: Osborne, Presnell & Turlach (2000); Efron et al. (2004); Rubinstein, Zibulevsky &
    Elad (2008, Batch-OMP); Ito & Kunisch (2008); Fan, Jiao & Lu (2014, PDASC); Osborne, Presnell & Turlach (2000);
    Efron et al. (2004); Beck & Teboulle (2009) for the fallback.
    """
    if isinstance(D, LinearOperator):
        if not hasattr(D, "atoms"):
            raise TypeError("lasso_batch needs a dense dictionary (an (n, m) array or Dense); "
                            "for other operators vmap sparsejax.fista")
        D = D.atoms
    D = V.as_float_array("D", D)
    V.check_ndim("D", D, (2,), "n signal dimensions x m atoms")
    Y = V.as_float_array("Y", Y)
    V.check_ndim("Y", Y, (2,), "B signals x n")
    if Y.shape[1] != D.shape[0]:
        raise ValueError(f"Y must have shape (B, {D.shape[0]}) to match D of shape {tuple(D.shape)}, "
                         f"got {tuple(Y.shape)}")
    V.check_finite("Y", Y)
    V.check_finite("D", D)
    lam = V.as_float_array("lam", lam)
    if lam.ndim != 0:
        raise ValueError(f"lam must be a scalar for lasso_batch, got shape {tuple(lam.shape)}")
    V.check_nonnegative("lam", lam)
    V.check_nonnegative("tol", tol)
    V.check_choice("method", method, METHODS)
    if method == "auto":
        # the guess-and-verify fast path pays off for signed problems (nonneg guesses prune too much)
        method = "guess" if (not nonneg and (max_iter is None or max_iter > 0)) else "homotopy"
    if max_iter is None:
        max_iter = 30 if method == "active_set" else 4 * 32
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    m = D.shape[1]
    max_active = min(32, m, max(1, (3 * D.shape[0]) // 4)) if max_active is None else max_active
    max_active = V.check_positive_int("max_active", max_active, upper=min(m, D.shape[0]),
                                      upper_name="min(n, m): a larger active set is rank deficient")
    max_new = V.check_positive_int("max_new", max_new, upper=m)
    # the guess path is cheapest on large blocks; the homotopy's lockstep chunks pay for stragglers
    chunk = (2048 if method == "guess" else 512) if chunk is None else V.check_positive_int("chunk", chunk)
    fallback_size = V.check_positive_int("fallback_size", fallback_size)
    fallback_iter = V.check_positive_int("fallback_iter", fallback_iter)
    lockstep_steps = V.check_positive_int("lockstep_steps", lockstep_steps)
    refill_steps = V.check_positive_int("refill_steps", refill_steps)
    refill_size = V.check_positive_int("refill_size", refill_size)
    dtype = jnp.result_type(D.dtype, Y.dtype)
    B = Y.shape[0]
    if B == 0:
        raise ValueError("Y must hold at least one signal")
    chunk = min(chunk, B)
    return _lasso_batch(D.astype(dtype), Y.astype(dtype), lam.astype(dtype), jnp.asarray(tol, dtype),
                        max_iter=max_iter, nonneg=nonneg, method=method, max_active=max_active,
                        max_new=max_new, chunk=chunk, fallback_size=fallback_size,
                        fallback_iter=fallback_iter, steps1=lockstep_steps, steps2=refill_steps,
                        buf=refill_size)
