"""ADMM for BPDN and for constrained basis pursuit (Boyd, Parikh, Chu, Peleato & Eckstein, "Distributed optimization
and statistical learning via the alternating direction method of multipliers", Found. Trends ML 2011, sections 3.3,
6.4): ``bpdn_admm`` and ``bpdn_constrained_admm``, with their ``Solver`` factories.

BPDN (split a = z, scaled dual u):

    min 1/2||y - D a||^2 + lam||z||_1  s.t.  a = z
    a <- (D^T D + rho I)^{-1} (D^T y + rho (z - u))
    z <- S_{lam/rho}(a + u)          (prox="nonneg_soft": S+)
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
from sparsejax.pursuit.problem import l1_objective, prepare_init, prepare_problem, sign_constraint
from sparsejax.solve import Solution, Solver, Status, check_iteration, iterate

__all__ = ["bpdn_admm", "bpdn_constrained_admm", "bpdn_admm_solver", "bpdn_constrained_admm_solver",
           "ADMMState", "ADMMConstrainedState",
           "admm_bpdn", "admm_constrained", "admm_bpdn_solver", "admm_constrained_solver"]


def _norm(x):
    return jnp.sqrt(jnp.sum(x * x))


def _tiny(dtype):
    return jnp.finfo(dtype).tiny


def _shrinkage(prox):
    return shrink.nonneg_soft if sign_constraint(prox, "ADMM") else shrink.soft


class ADMMState(NamedTuple):
    """State of ``bpdn_admm``.

    Attributes:
      a: the least-squares variable.
      z: the sparse variable (the returned codes).
      u: the scaled dual variable.
      primal_res: ||a - z||.
      dual_res: rho ||z - z_old||.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit import bpdn_admm
      >>> st = bpdn_admm(jnp.eye(2), jnp.array([2.0, 0.1]), 0.5, tol=1e-8).state
      >>> bool(st.primal_res < 1e-6), bool(st.dual_res < 1e-6)
      (True, True)
    """

    a: jax.Array
    z: jax.Array
    u: jax.Array
    primal_res: jax.Array
    dual_res: jax.Array


def bpdn_admm_solver(op, y, lam, rho, x0, prox="soft", cg_iter=20) -> Solver:
    """The (init, step) pair of ADMM for BPDN from ``x0`` with penalty ``rho``; codes are the sparse variable z.

    Args:
      op: the dictionary (``LinearOperator``). y: the signal. lam: the l1 weight(s). rho: the penalty (> 0).
      x0: the starting codes. prox: "soft" or "nonneg_soft". cg_iter: CG steps per x-update (matrix-free ``op``).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit import bpdn_admm_solver
      >>> solver = bpdn_admm_solver(sj.Dense(jnp.eye(2)), jnp.array([2.0, -0.1]), 0.5, 1.0, jnp.zeros(2))
      >>> [round(v, 4) for v in sj.iterate(solver, max_iter=500, tol=1e-8).codes.tolist()]
      [1.5, 0.0]
    """
    prox = _shrinkage(prox)
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
                  objective=lambda s: l1_objective(op, y, s.z, lam))


def _check(max_iter, tol, mode, rho, prox):
    check_iteration(max_iter, tol, mode)
    sign_constraint(prox, "ADMM")
    if rho is not None:
        V.as_float_array("rho", rho)
        V.check_nonnegative("rho", rho, strict=True)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "cg_iter"))
def _bpdn_admm(op, y, lam, rho, x0, tol, *, max_iter, mode, prox, cg_iter):
    solver = bpdn_admm_solver(op, y, lam, rho, x0, prox, cg_iter)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def bpdn_admm(D, y, lam, *, rho=None, x0=None, max_iter: int = 2000, tol=1e-6, mode: str = "while",
              prox="soft", cg_iter: int = 20) -> Solution:
    """ADMM for min_a 1/2||y - D a||^2 + lam||a||_1 (one signal; batch with ``jax.vmap``).

    The split a = z with the scaled dual u (Boyd et al. 2011, section 6.4): a least-squares a-update, a shrinkage
    z-update and a dual ascent step, stopped on the relative primal and dual residuals (section 3.3).

    Args:
      D: ``LinearOperator`` or (n, m) atoms. Dense: exact solves with one Cholesky factor;
        other operators: ``cg_iter`` warm-started CG steps per iteration.
      y: signal of shape ``D.signal_shape``.
      lam: l1 weight >= 0 (scalar or broadcastable to the codes; traced).
      rho: ADMM penalty > 0 (traced); default 1 (atoms of unit norm).
      x0: warm start for a and z (default zeros).
      max_iter, tol: stop when max(relative primal, relative dual residual) <= tol.
      mode: a mode of ``sparsejax.solve.iterate`` ("while", "scan", ...).
      prox: "soft" (signed codes) or "nonneg_soft" (constrain a >= 0).

    Returns:
      ``Solution``: codes = z (exactly sparse); ``state`` is an ``ADMMState`` with ``primal_res`` and
      ``dual_res``; ``error`` = max of the relative residuals.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit import bpdn_admm
      >>> sol = bpdn_admm(jnp.eye(3), jnp.array([2.0, -1.0, 0.1]), 0.5, tol=1e-8)
      >>> [round(v, 4) for v in sol.codes.tolist()], bool(sol.converged)
      ([1.5, -0.5, 0.0], True)
      >>> [round(v, 4) for v in bpdn_admm(jnp.eye(3), jnp.array([2.0, -1.0, 0.1]), 0.5, tol=1e-8,
      ...                                  prox="nonneg_soft").codes.tolist()]
      [1.5, 0.0, 0.0]
    """
    op, y, lam, dtype = prepare_problem(D, y, lam)
    _check(max_iter, tol, mode, rho, prox)
    rho = jnp.asarray(1.0 if rho is None else rho, dtype)
    x0 = prepare_init(x0, op, dtype)
    cg_iter = V.check_positive_int("cg_iter", cg_iter)
    return _bpdn_admm(op, y, lam, rho, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                      prox=prox, cg_iter=cg_iter)


class ADMMConstrainedState(NamedTuple):
    """State of ``bpdn_constrained_admm``.

    Attributes:
      a: the least-squares variable.
      z: the sparse codes.
      v: D a projected onto the ball ||v - y|| <= eps.
      u1, u2: the scaled duals of z = a and v = D a.
      primal_res, dual_res: the ADMM residuals.
      violation: max(||D z - y|| - eps, 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit import bpdn_constrained_admm
      >>> round(float(bpdn_constrained_admm(jnp.eye(2), jnp.array([2.0, 0.1]), 0.5).state.violation), 4)
      0.0
    """

    a: jax.Array
    z: jax.Array
    v: jax.Array
    u1: jax.Array
    u2: jax.Array
    primal_res: jax.Array
    dual_res: jax.Array
    violation: jax.Array


def bpdn_constrained_admm_solver(op, y, eps, rho, x0, prox="soft", cg_iter=20) -> Solver:
    """The (init, step) pair of ADMM for min ||a||_1 s.t. ||D a - y|| <= eps from ``x0``; codes are z.

    It defines no objective (||z||_1 starts at 0 from x0 = 0, which the driver's divergence test would misread);
    ``bpdn_constrained_admm`` reports ||z||_1.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit import bpdn_constrained_admm_solver
      >>> solver = bpdn_constrained_admm_solver(sj.Dense(jnp.eye(2)), jnp.array([2.0, 0.1]), 0.5, 1.0, jnp.zeros(2))
      >>> sol = sj.iterate(solver, max_iter=5000, tol=1e-7)
      >>> round(float(sol.state.violation), 4), bool(sol.converged)
      (0.0, True)
    """
    prox = _shrinkage(prox)
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


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "cg_iter"))
def _bpdn_constrained_admm(op, y, eps, rho, x0, tol, *, max_iter, mode, prox, cg_iter):
    solver = bpdn_constrained_admm_solver(op, y, eps, rho, x0, prox, cg_iter)
    sol = iterate(solver, max_iter=max_iter, tol=tol, mode=mode)
    # the solver has no objective, so the driver cannot see a non-finite problem from it: mark it here
    bad_input = ~(jnp.all(jnp.isfinite(y)) & jnp.isfinite(eps))
    status = jnp.where(bad_input, Status.NONFINITE_INPUT, sol.status).astype(jnp.int32)
    return sol._replace(objective=jnp.sum(jnp.abs(sol.codes)), status=status)


def bpdn_constrained_admm(D, y, eps, *, rho=None, x0=None, max_iter: int = 5000, tol=1e-7, mode: str = "while",
                          prox="soft", cg_iter: int = 20) -> Solution:
    """ADMM for min_a ||a||_1 s.t. ||D a - y||_2 <= eps (basis pursuit with noise, Donoho, Elad & Temlyakov,
    "Stable recovery of sparse overcomplete representations in the presence of noise", IEEE Trans. Inf. Theory
    2006; eps = 0: basis pursuit, Chen, Donoho & Saunders, SIAM J. Sci. Comput. 1998).

    The splits z = a and v = D a (Boyd et al. 2011, section 3.1): a least-squares a-update with (I + D^T D), a
    shrinkage z-update, a projection of D a onto the ball ||v - y|| <= eps, and two dual ascent steps.

    Args:
      D: ``LinearOperator`` or (n, m) atoms (dense: exact Cholesky solves; else CG, see module doc).
      y: signal of shape ``D.signal_shape``.
      eps: radius of the data-fit ball, >= 0 (traced). eps = 0 gives basis pursuit D a = y.
      rho: ADMM penalty > 0 (traced); default 1.
      x0, max_iter, tol, mode, prox: as in ``bpdn_admm``.

    Returns:
      ``Solution``: codes = z; objective = ||z||_1; ``state.violation`` = max(||D z - y|| - eps, 0)
      (the constraint holds up to the ADMM primal residual), ``state.primal_res``, ``state.dual_res``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit import bpdn_constrained_admm
      >>> sol = bpdn_constrained_admm(jnp.eye(2), jnp.array([2.0, 0.1]), 0.5)
      >>> [round(v, 3) for v in sol.codes.tolist()], round(float(sol.objective), 3)   # soft(y, sqrt(0.24))
      ([1.51, 0.0], 1.51)
    """
    op, y, _, dtype = prepare_problem(D, y, None)
    eps = V.as_float_array("eps", eps)
    if eps.ndim != 0:
        raise ValueError(f"eps must be a scalar, got shape {tuple(eps.shape)}")
    V.check_nonnegative("eps", eps)
    _check(max_iter, tol, mode, rho, prox)
    rho = jnp.asarray(1.0 if rho is None else rho, dtype)
    x0 = prepare_init(x0, op, dtype)
    cg_iter = V.check_positive_int("cg_iter", cg_iter)
    return _bpdn_constrained_admm(op, y, eps.astype(dtype), rho, x0, jnp.asarray(tol, dtype), max_iter=max_iter,
                                  mode=mode, prox=prox, cg_iter=cg_iter)


# deprecated aliases (the names before the <problem>_<algorithm> convention)
admm_bpdn = bpdn_admm
admm_constrained = bpdn_constrained_admm
admm_bpdn_solver = bpdn_admm_solver
admm_constrained_solver = bpdn_constrained_admm_solver
