"""Fast batched Lasso: a semismooth-Newton active-set method with continuation and a certified stop.

For every signal y_b (rows of ``Y``) solve

    F_b(a) = 1/2 ||y_b - D a||_2^2 + lam ||a||_1          (nonneg: + indicator(a >= 0)).

Method (``method="active_set"``): the primal-dual active-set / semismooth Newton iteration on the
fixed point a = S_lam(a + D^T(y - D a)) (Ito & Kunisch 2008; with continuation in lam, Fan, Jiao & Lu
2014), the batched, fixed-shape cousin of the homotopy / active-set methods of Osborne, Presnell &
Turlach (2000) and Efron et al. (2004, LARS). With G = D^T D precomputed once and c = D^T y:

    g = c - G a,  z = a + g,  A = {j : |z_j| > lam_t} (at most ``max_active`` atoms, at most
    ``max_new`` newcomers per step),  s = sign(z_A),
    a_A = (G_AA)^{-1} (c_A - lam_t s),  a_{not A} = 0          (Cholesky of the gathered Gram)

with lam_t decreasing geometrically to lam (continuation keeps early active sets small). When the
sign pattern repeats at lam_t = lam the iterate satisfies the KKT conditions exactly
(|g_j| <= lam off A, g_A = lam sign(a_A)). Each signal's result is then certified by its duality gap

    gap = P(a) - D(theta),  theta = r / max(1, ||D^T r||_inf / lam),  r = y - D a,

(computed in the cancellation-free form ||r||^2 (1 - 1/s)^2 / 2 + lam||a||_1 - (D^T r)^T a / s);
``converged`` means gap <= tol * P(a). Signals that fail (active set above ``max_active``, cycling, or a
gap above tol) are gathered into a small fixed-size buffer and finished by FISTA (warm start,
``sparsejax.solve.iterate``) followed by a Newton polish from the FISTA sign pattern; ``Solution.state`` reports which signals needed it.

The batch is processed in chunks (``lax.map``) so memory and time per signal stay flat in B.
``method="fista"`` runs only the FISTA path (vmapped, per-signal stop), for reference.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import Dense, LinearOperator
from sparsejax.pursuit.ista import fista_solver
from sparsejax.solve import Solution, Solver, iterate

__all__ = ["lasso_batch", "duality_gap"]

METHODS = ("auto", "active_set", "fista")


class BatchState(NamedTuple):
    """Per-signal diagnostics of ``lasso_batch`` (each of shape (B,))."""

    gap: jax.Array          # duality gap P(a) - D(theta) (an upper bound on P(a) - P*)
    newton_steps: jax.Array  # active-set (Newton) iterations
    fallback: jax.Array     # True when the signal was finished by FISTA
    fallback_steps: jax.Array


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


def _gap_batch(atoms, Y, A, lam, nonneg):
    R = Y - A @ atoms.T
    Gr = R @ atoms
    return jax.vmap(lambda g, r, a: _dual_gap(g, r, a, lam, nonneg))(Gr, R, A)


@partial(jax.jit, static_argnames=("max_iter", "nonneg", "method", "max_active", "max_new", "chunk",
                                   "fallback_size", "fallback_iter"))
def _lasso_batch(atoms, Y, lam, tol, *, max_iter, nonneg, method, max_active, max_new, chunk,
                 fallback_size, fallback_iter):
    B, n = Y.shape
    m = atoms.shape[1]
    dtype = Y.dtype
    L = jnp.linalg.eigvalsh(atoms @ atoms.T if n <= m else atoms.T @ atoms)[-1]

    def fista_one(y, a0):
        fs = fista_solver(Dense(atoms), y, lam, L, a0, nonneg, restart=True)

        def rel_gap(old, new):  # stop FISTA on the certified relative duality gap
            r = y - atoms @ new.x
            gap, obj = _dual_gap(atoms.T @ r, r, new.x, lam, nonneg)
            return gap / jnp.maximum(obj, jnp.finfo(dtype).tiny)

        tol_f = jnp.maximum(tol, 256 * jnp.finfo(dtype).eps)
        sol = iterate(fs._replace(error=rel_gap), max_iter=fallback_iter, tol=tol_f, mode="while")
        return sol.codes, sol.num_steps

    if method == "fista":
        A, steps = jax.vmap(fista_one)(Y, jnp.zeros((B, m), dtype))
        gap, obj = _gap_batch(atoms, Y, A, lam, nonneg)
        conv = gap <= tol * jnp.maximum(obj, jnp.finfo(dtype).tiny)
        st = BatchState(gap, jnp.zeros((B,), jnp.int32), jnp.ones((B,), bool), steps)
        return Solution(A, steps, conv, ~jnp.all(jnp.isfinite(A), axis=1), obj, gap / jnp.maximum(obj, jnp.finfo(dtype).tiny), st)

    G = atoms.T @ atoms
    shrink_factor = jnp.asarray(0.5, dtype)
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
    gap, obj = _gap_batch(atoms, Y, A, lam, nonneg)
    # the gap itself is only computable to ~100 eps relative (rounding in r and D^T r)
    tol_eff = jnp.maximum(tol, 256 * jnp.finfo(dtype).eps)
    ok = done & (gap <= tol_eff * jnp.maximum(obj, jnp.finfo(dtype).tiny))

    # fallback: FISTA on the failures, gathered fallback_size at a time
    F = min(fallback_size, B)
    zeros_i = jnp.zeros((B,), jnp.int32)

    def fb_cond(carry):
        _, todo, _, rnd = carry
        return jnp.any(todo) & (rnd < -(-B // F))

    def fb_body(carry):
        A, todo, fsteps, rnd = carry
        _, sel = lax.top_k(todo.astype(jnp.int32), F)
        valid = todo[sel]
        # warm start from the Newton iterate unless it is worse than zero (ill-conditioned solve)
        Ysel, Asel = Y[sel], A[sel]
        Rs = Ysel - Asel @ atoms.T
        worse = 0.5 * jnp.sum(Rs * Rs, 1) + lam * jnp.sum(jnp.abs(Asel), 1) > 0.5 * jnp.sum(Ysel * Ysel, 1)
        worse = worse | ~jnp.all(jnp.isfinite(Asel), 1)
        codes, ns = jax.vmap(fista_one)(Ysel, jnp.where(worse[:, None], 0, Asel))
        codes, ns2 = jax.vmap(polish)(Y[sel], codes)
        ns = ns + ns2
        A = A.at[sel].set(jnp.where(valid[:, None], codes, A[sel]))
        fsteps = fsteps.at[sel].add(jnp.where(valid, ns, 0))
        todo = todo.at[sel].set(jnp.where(valid, False, todo[sel]))
        return A, todo, fsteps, rnd + 1

    def polish(y, a0):
        # Newton polish of the FISTA result: exact KKT once its sign pattern is right
        solver = _ssn_solver(atoms, G, y, atoms.T @ y, lam, lam, max_active=max_active, max_new=max_new,
                             shrink_factor=shrink_factor, nonneg=nonneg, a0=a0)
        sol = iterate(solver, max_iter=max(max_iter, 5), tol=0.5, mode="while")
        return jnp.where(sol.state.done, sol.codes, a0), sol.num_steps

    todo0 = ~ok
    A, _, fsteps, _ = lax.while_loop(fb_cond, fb_body, (A, todo0, zeros_i, jnp.asarray(0)))
    gap, obj = _gap_batch(atoms, Y, A, lam, nonneg)
    rel = gap / jnp.maximum(obj, jnp.finfo(dtype).tiny)
    conv = rel <= tol_eff
    diverged = ~jnp.all(jnp.isfinite(A), axis=1)
    st = BatchState(gap, steps, todo0, fsteps)
    return Solution(A, steps + fsteps, conv & ~diverged, diverged, obj, rel, st)


def lasso_batch(D, Y, lam, *, tol=1e-6, max_iter: int = 30, nonneg: bool = False, method: str = "auto",
                max_active: int | None = None, max_new: int = 6, chunk: int = 512, fallback_size: int = 128,
                fallback_iter: int = 5000) -> Solution:
    """Solve B Lasso problems min_a 1/2||y_b - D a||^2 + lam||a||_1 with one dictionary, fast.

    Args:
      D: (n, m) atoms or a ``Dense`` operator.
      Y: (B, n) signals (one per row).
      lam: scalar l1 weight >= 0 (traced: changing it does not recompile).
      tol: target relative duality gap (gap / objective), the per-signal convergence test. The gap is
        only computable to about 100 eps relative, so the test uses max(tol, 256 eps) (3e-5 in
        float32); Newton-terminated signals satisfy the KKT conditions to rounding error anyway.
      max_iter: active-set (Newton) iterations per signal before falling back to FISTA.
      nonneg: constrain a >= 0.
      method: "auto"/"active_set" (semismooth-Newton active set + FISTA fallback) or "fista".
      max_active: static size of the gathered active set, default min(32, 3n/4, m) (signals needing
        more go to FISTA).
      max_new: newcomers admitted per Newton step (damping).
      chunk: signals per ``lax.map`` chunk.
      fallback_size, fallback_iter: FISTA fallback buffer size and iteration cap.

    Returns:
      ``Solution`` with codes (B, m) and per-signal ``num_steps``, ``converged`` (relative duality gap
      <= tol), ``diverged``, ``objective``, ``error`` (the relative duality gap) and ``state`` a
      ``BatchState`` (gap, newton_steps, fallback, fallback_steps).

    References: Ito & Kunisch (2008); Fan, Jiao & Lu (2014, PDASC); Osborne, Presnell & Turlach (2000);
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
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    m = D.shape[1]
    max_active = min(32, m, max(1, (3 * D.shape[0]) // 4)) if max_active is None else max_active
    max_active = V.check_positive_int("max_active", max_active, upper=min(m, D.shape[0]),
                                      upper_name="min(n, m): a larger active set is rank deficient")
    max_new = V.check_positive_int("max_new", max_new, upper=m)
    chunk = V.check_positive_int("chunk", chunk)
    fallback_size = V.check_positive_int("fallback_size", fallback_size)
    fallback_iter = V.check_positive_int("fallback_iter", fallback_iter)
    dtype = jnp.result_type(D.dtype, Y.dtype)
    B = Y.shape[0]
    if B == 0:
        raise ValueError("Y must hold at least one signal")
    chunk = min(chunk, B)
    method = "active_set" if method == "auto" else method
    return _lasso_batch(D.astype(dtype), Y.astype(dtype), lam.astype(dtype), jnp.asarray(tol, dtype),
                        max_iter=max_iter, nonneg=nonneg, method=method, max_active=max_active,
                        max_new=max_new, chunk=chunk, fallback_size=fallback_size,
                        fallback_iter=fallback_iter)
