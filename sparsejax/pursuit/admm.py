"""ADMM for BPDN and for constrained basis pursuit (REFERENCE A4; Boyd, Parikh, Chu, Peleato & Eckstein,
"Distributed optimization and statistical learning via ADMM", Found. Trends ML 2011, sections 3.3, 6.4).

BPDN (split a = z, scaled dual u):

    min 1/2||y - D a||^2 + lam||z||_1  s.t.  a = z
    a <- (D^T D + rho I)^{-1} (D^T y + rho (z - u))
    z <- S_{lam/rho}(a + u)          (nonneg: S+)
    u <- u + a - z

Constrained BP (split z = a, v = D a):

    min ||z||_1 + indicator(||v - y||_2 <= eps)  s.t.  z = a, v = D a
    a <- (I + D^T D)^{-1} (z - u1 + D^T (v - u2))
    z <- S_{1/rho}(a + u1),  v <- Proj_{B(y, eps)}(D a + u2)
    u1 <- u1 + a - z,  u2 <- u2 + D a - v

The linear solves use one Cholesky factor computed per call (rho is traced): for a dense D the smaller of
(D^T D + rho I) (m x m) and (D D^T + rho I) (n x n), the latter through the matrix inversion lemma
(D^T D + rho I)^{-1} q = (q - D^T (D D^T + rho I)^{-1} D q) / rho. A general ``LinearOperator`` without
``.atoms`` (e.g. convolutional) is solved by ``cg_iter`` conjugate-gradient steps warm-started from the
previous iterate (inexact ADMM; increase ``cg_iter`` for accuracy).

Stopping (Boyd et al. 2011, sec. 3.3): primal residual r = ||A x - B z|| and dual residual
s = rho ||A^T B (z - z_old)||; the stopping measure (``Solution.error``) is
max(r / max(||A x||, ||B z||), s / ||rho A^T u||), both residuals are kept in the state (for the
constrained form, where A^T u = u1 + D^T u2 -> 0, the dual scale is rho max(||u1||, ||D^T u2||)).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import shifted_normal_solver
from sparsejax.pursuit.problem import objective_l1, prepare_init, prepare_problem
from sparsejax.solve import Solution, Solver, iterate

__all__ = ["admm_bpdn", "admm_constrained", "admm_bpdn_solver", "admm_constrained_solver"]


def _norm(x):
    return jnp.sqrt(jnp.sum(x * x))


def _tiny(dtype):
    return jnp.finfo(dtype).tiny




class ADMMState(NamedTuple):
    a: jax.Array       # x-variable (least-squares side)
    z: jax.Array       # sparse variable (the returned codes)
    u: jax.Array       # scaled dual variable
    primal_res: jax.Array
    dual_res: jax.Array


def admm_bpdn_solver(op, y, lam, rho, x0, nonneg=False, cg_iter=20) -> Solver:
    """The (init, step) pair of ADMM for BPDN; codes are the sparse variable z."""
    prox = shrink.nonneg_soft if nonneg else shrink.soft
    dtype = y.dtype
    solve = shifted_normal_solver(op, rho, cg_iter)
    Dty = op.adjoint(y)
    inf = jnp.asarray(jnp.inf, dtype)

    def step(s):
        a = solve(Dty + rho * (s.z - s.u), s.a)
        z = prox(a + s.u, lam / rho)
        u = s.u + a - z
        return ADMMState(a, z, u, _norm(a - z), rho * _norm(z - s.z))

    def error(old, new):
        rel_p = new.primal_res / jnp.maximum(jnp.maximum(_norm(new.a), _norm(new.z)), _tiny(dtype))
        rel_d = new.dual_res / jnp.maximum(rho * _norm(new.u), _tiny(dtype))
        return jnp.maximum(rel_p, rel_d)

    return Solver(init=lambda: ADMMState(x0, x0, jnp.zeros_like(x0), inf, inf),
                  step=step, codes=lambda s: s.z, error=error,
                  objective=lambda s: objective_l1(op, y, lam, s.z))


def _check(max_iter, tol, mode, rho):
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    V.check_choice("mode", mode, ("while", "scan"))
    if rho is not None:
        V.as_float_array("rho", rho)
        V.check_nonnegative("rho", rho, strict=True)


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "cg_iter"))
def _admm_bpdn(op, y, lam, rho, x0, tol, *, max_iter, mode, nonneg, cg_iter):
    solver = admm_bpdn_solver(op, y, lam, rho, x0, nonneg, cg_iter)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def admm_bpdn(D, y, lam, *, rho=None, x0=None, max_iter: int = 2000, tol=1e-6, mode: str = "while",
              nonneg: bool = False, cg_iter: int = 20) -> Solution:
    """ADMM for min_a 1/2||y - D a||^2 + lam||a||_1 (one signal; batch with ``jax.vmap``).

    Args:
      D: ``LinearOperator`` or (n, m) atoms. Dense: exact solves with one Cholesky factor;
        other operators: ``cg_iter`` warm-started CG steps per iteration.
      y: signal of shape ``D.signal_shape``.
      lam: l1 weight >= 0 (scalar or broadcastable to the codes; traced).
      rho: ADMM penalty > 0 (traced); default 1 (atoms of unit norm).
      x0: warm start for a and z (default zeros).
      max_iter, tol: stop when max(relative primal, relative dual residual) <= tol.
      mode: "while" or "scan" (see ``sparsejax.solve.iterate``).
      nonneg: constrain a >= 0.

    Returns:
      ``Solution``: codes = z (exactly sparse); ``state`` is an ``ADMMState`` with ``primal_res`` and
      ``dual_res``; ``error`` = max of the relative residuals.
    """
    op, y, lam, dtype = prepare_problem(D, y, lam)
    _check(max_iter, tol, mode, rho)
    rho = jnp.asarray(1.0 if rho is None else rho, dtype)
    x0 = prepare_init(x0, op, dtype)
    cg_iter = V.check_positive_int("cg_iter", cg_iter)
    return _admm_bpdn(op, y, lam, rho, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                      nonneg=nonneg, cg_iter=cg_iter)


class ADMMConstrainedState(NamedTuple):
    a: jax.Array
    z: jax.Array       # sparse codes
    v: jax.Array       # D a projected onto the ball
    u1: jax.Array
    u2: jax.Array
    primal_res: jax.Array
    dual_res: jax.Array
    violation: jax.Array   # max(||D z - y|| - eps, 0)


def admm_constrained_solver(op, y, eps, rho, x0, nonneg=False, cg_iter=20) -> Solver:
    """The (init, step) pair of ADMM for min ||a||_1 s.t. ||D a - y|| <= eps; codes are z."""
    prox = shrink.nonneg_soft if nonneg else shrink.soft
    dtype = y.dtype
    solve = shifted_normal_solver(op, jnp.asarray(1.0, dtype), cg_iter)
    inf = jnp.asarray(jnp.inf, dtype)

    def project(w):
        d = w - y
        nd = _norm(d)
        return y + d * jnp.minimum(1.0, eps / jnp.maximum(nd, _tiny(dtype)))

    def violation(z):
        return jnp.maximum(_norm(op.apply(z) - y) - eps, 0.0)

    def step(s):
        a = solve(s.z - s.u1 + op.adjoint(s.v - s.u2), s.a)
        Da = op.apply(a)
        z = prox(a + s.u1, 1.0 / rho)
        v = project(Da + s.u2)
        u1 = s.u1 + a - z
        u2 = s.u2 + Da - v
        r = jnp.sqrt(jnp.sum((a - z) ** 2) + jnp.sum((Da - v) ** 2))
        d = rho * _norm((z - s.z) + op.adjoint(v - s.v))
        return ADMMConstrainedState(a, z, v, u1, u2, r, d, violation(z))

    def error(old, new):
        Ax = jnp.sqrt(jnp.sum(new.a ** 2) + jnp.sum(op.apply(new.a) ** 2))
        Bz = jnp.sqrt(jnp.sum(new.z ** 2) + jnp.sum(new.v ** 2))
        rel_p = new.primal_res / jnp.maximum(jnp.maximum(Ax, Bz), _tiny(dtype))
        # A^T u = u1 + D^T u2 vanishes at the optimum (a has no cost): scale by its parts instead
        scale = rho * jnp.maximum(_norm(new.u1), _norm(op.adjoint(new.u2)))
        rel_d = new.dual_res / jnp.maximum(scale, _tiny(dtype))
        return jnp.maximum(rel_p, rel_d)

    def init():
        v0 = project(op.apply(x0))
        return ADMMConstrainedState(x0, x0, v0, jnp.zeros_like(x0), jnp.zeros_like(y), inf, inf, violation(x0))

    # no objective for iterate: ||z||_1 starts at 0 from x0 = 0, which iterate's divergence test
    # (growth over the starting value) would misread; the wrapper fills it in
    return Solver(init=init, step=step, codes=lambda s: s.z, error=error)


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "cg_iter"))
def _admm_constrained(op, y, eps, rho, x0, tol, *, max_iter, mode, nonneg, cg_iter):
    solver = admm_constrained_solver(op, y, eps, rho, x0, nonneg, cg_iter)
    sol = iterate(solver, max_iter=max_iter, tol=tol, mode=mode)
    return sol._replace(objective=jnp.sum(jnp.abs(sol.codes)))


def admm_constrained(D, y, eps, *, rho=None, x0=None, max_iter: int = 5000, tol=1e-7, mode: str = "while",
                     nonneg: bool = False, cg_iter: int = 20) -> Solution:
    """ADMM for min_a ||a||_1 s.t. ||D a - y||_2 <= eps (basis pursuit with noise, T2 experiments).

    Args:
      D: ``LinearOperator`` or (n, m) atoms (dense: exact Cholesky solves; else CG, see module doc).
      y: signal of shape ``D.signal_shape``.
      eps: radius of the data-fit ball, >= 0 (traced). eps = 0 gives basis pursuit D a = y.
      rho: ADMM penalty > 0 (traced); default 1.
      x0, max_iter, tol, mode, nonneg: as in ``admm_bpdn``.

    Returns:
      ``Solution``: codes = z; objective = ||z||_1; ``state.violation`` = max(||D z - y|| - eps, 0)
      (the constraint holds up to the ADMM primal residual), ``state.primal_res``, ``state.dual_res``.
    """
    op, y, _, dtype = prepare_problem(D, y, None)
    eps = V.as_float_array("eps", eps)
    if eps.ndim != 0:
        raise ValueError(f"eps must be a scalar, got shape {tuple(eps.shape)}")
    V.check_nonnegative("eps", eps)
    _check(max_iter, tol, mode, rho)
    rho = jnp.asarray(1.0 if rho is None else rho, dtype)
    x0 = prepare_init(x0, op, dtype)
    cg_iter = V.check_positive_int("cg_iter", cg_iter)
    return _admm_constrained(op, y, eps.astype(dtype), rho, x0, jnp.asarray(tol, dtype), max_iter=max_iter,
                             mode=mode, nonneg=nonneg, cg_iter=cg_iter)
