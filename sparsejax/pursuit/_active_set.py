"""The semismooth-Newton (primal-dual active set) Lasso solver, one signal at a time through ``iterate``.

Each step solves the Lasso restricted to the active set A = {j : |a_j + g_j| > lam_t} with the signs of a + g
(g = D^T (y - D a)) by one small Cholesky factorisation, a_A = G_AA^{-1} (c_A - lam_t s_A), which is a semismooth
Newton step on the fixed-point equation a = S_lam(a + g) (Ito & Kunisch, "Lagrange Multiplier Approach to Variational
Problems and Applications", SIAM 2008, chapter 7; Fan, Jiao & Lu, "A primal dual active set algorithm with
continuation for compressed sensing", IEEE Trans. Signal Process. 2014). The continuation value lam_t shrinks
geometrically towards lam, and at most ``max_new`` atoms join per step (damping). A signal is done when the sign
pattern repeats at lam_t = lam (the KKT conditions then hold to rounding).

``lasso_batch`` uses it for ``method="active_set"`` (``active_set_batch``) and as the Newton polish after its FISTA
fallback (``newton_polish``).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from sparsejax.pursuit._chunks import map_chunks
from sparsejax.solve import Solver, iterate

__all__ = ["SSNState", "ssn_solver", "active_set_batch", "newton_polish"]

POLISH_ITER = 30   # Newton steps of the polish


class SSNState(NamedTuple):
    """State of the semismooth-Newton solver (one signal).

    Attributes:
      a: (m,) current codes.
      sgn: (m,) sign pattern used by the last solve (-1, 0, 1; 2 is the warm-start sentinel).
      lam_t: continuation value of lam.
      done: the pattern repeated at lam_t == lam.
      bad: overflow of max_active or a non-finite solve.

    Example:
      >>> import jax.numpy as jnp
      >>> D = jnp.eye(2); y = jnp.array([2.0, 0.1])
      >>> a, steps, done = newton_polish(D, D, y, jnp.array([1.0, 0.0]), jnp.asarray(0.5), max_active=2,
      ...                                max_new=2, nonneg=False)
      >>> a.tolist(), bool(done)
      ([1.5, 0.0], True)
    """

    a: jax.Array
    sgn: jax.Array
    lam_t: jax.Array
    done: jax.Array
    bad: jax.Array


def ssn_solver(atoms, G, y, c, lam, lam0, *, max_active, max_new, shrink_factor, nonneg, a0=None) -> Solver:
    """The semismooth-Newton Solver for one signal (vmap for a batch), with c = D^T y and G = D^T D.

    Starts at ``a0`` (default 0) with the continuation value ``lam0`` >= lam; the stopping measure is 0 once done,
    else 1 (run it with ``iterate(..., tol=0.5)``).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.solve import iterate
      >>> D = jnp.eye(3); y = jnp.array([3.0, -1.0, 0.5]); lam = jnp.asarray(1.0)
      >>> solver = ssn_solver(D, D.T @ D, y, D.T @ y, lam, lam, max_active=3, max_new=3, shrink_factor=0.5,
      ...                     nonneg=False)
      >>> iterate(solver, max_iter=10, tol=0.5).codes.tolist()
      [2.0, 0.0, 0.0]
    """
    m = G.shape[0]
    dtype = y.dtype
    eye = jnp.eye(max_active, dtype=dtype)

    def step(s: SSNState) -> SSNState:
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
        def sel(old, new):
            return jnp.where(s.done, old, new)

        return SSNState(sel(s.a, jnp.where(finite, a_new, s.a)), sel(s.sgn, sgn_new), sel(s.lam_t, lam_next),
                        s.done | done, sel(s.bad, overflow | ~finite))

    def init():
        if a0 is None:
            return SSNState(jnp.zeros((m,), dtype), jnp.zeros((m,), jnp.int8), lam0, jnp.asarray(False),
                             jnp.asarray(False))
        # warm start: a sentinel pattern, so a repeated pattern always means two identical solves
        return SSNState(a0, jnp.full((m,), 2, jnp.int8), lam0, jnp.asarray(False), jnp.asarray(False))

    return Solver(init=init, step=step, codes=lambda s: s.a,
                  error=lambda old, new: jnp.where(new.done, 0.0, 1.0).astype(dtype))


def active_set_batch(atoms, G, Y, lam, *, max_iter, max_active, max_new, nonneg, chunk):
    """Semismooth Newton with continuation (from 0.6 max_j |c_j|) on every row of Y, ``chunk`` rows at a time.

    Returns:
      (codes (B, m), Newton steps (B,), done (B,) bool).

    Example:
      >>> import jax.numpy as jnp
      >>> D = jnp.eye(3)
      >>> A, steps, done = active_set_batch(D, D, jnp.array([[3.0, -1.0, 0.5]]), jnp.asarray(1.0), max_iter=10,
      ...                                   max_active=3, max_new=3, nonneg=False, chunk=None)
      >>> A.tolist(), done.tolist()
      ([[2.0, 0.0, 0.0]], [True])
    """
    shrink_factor = jnp.asarray(0.5, Y.dtype)

    def solve_chunk(Yc):
        C = Yc @ atoms

        def one(y, c):
            lam0 = jnp.maximum(lam, 0.6 * (jnp.max(c) if nonneg else jnp.max(jnp.abs(c))))
            solver = ssn_solver(atoms, G, y, c, lam, lam0, max_active=max_active, max_new=max_new,
                                shrink_factor=shrink_factor, nonneg=nonneg)
            sol = iterate(solver, max_iter=max_iter, tol=0.5, mode="while")
            return sol.codes, sol.num_steps, sol.state.done

        return jax.vmap(one)(Yc, C)

    return map_chunks(solve_chunk, Y, chunk)


def newton_polish(atoms, G, y, a0, lam, *, max_active, max_new, nonneg):
    """Newton (active-set) steps at lam from ``a0``: the exact KKT point once the sign pattern of ``a0`` is right.

    Returns:
      (codes: the polished codes if the polish finished, else ``a0``; Newton steps; done).

    Example:
      >>> import jax.numpy as jnp
      >>> D = jnp.eye(2)
      >>> newton_polish(D, D, jnp.array([2.0, -3.0]), jnp.array([1.0, -1.0]), jnp.asarray(0.5), max_active=2,
      ...               max_new=2, nonneg=False)[0].tolist()
      [1.5, -2.5]
    """
    solver = ssn_solver(atoms, G, y, atoms.T @ y, lam, lam, max_active=max_active, max_new=max_new,
                        shrink_factor=jnp.asarray(0.5, y.dtype), nonneg=nonneg, a0=a0)
    sol = iterate(solver, max_iter=POLISH_ITER, tol=0.5, mode="while")
    return jnp.where(sol.state.done, sol.codes, a0), sol.num_steps, sol.state.done
