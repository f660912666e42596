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

import math
from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import shifted_normal_family, shifted_normal_solver
from sparsejax.pursuit.lam import resolve_lam
from sparsejax.pursuit.problem import l1_objective, prepare_init, prepare_problem, sign_constraint
from sparsejax.solve import RhoBalancing, Solution, Solver, Status, check_balancing, check_iteration, iterate

__all__ = ["bpdn_admm", "bpdn_constrained_admm", "bpdn_admm_solver", "bpdn_constrained_admm_solver",
           "ADMMState", "ADMMConstrainedState", "default_rho", "default_rho_constrained",
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
      u: the scaled dual variable (the unscaled dual is rho u).
      primal_res: ||a - z||.
      dual_res: rho ||z - z_old||.
      rho: the penalty (changes under residual balancing); None in states built by hand before it existed.
      k: iterations done.

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
    rho: Optional[jax.Array] = None
    k: Optional[jax.Array] = None


# The dual residual is measured relative to max(||rho u||, DUAL_FLOOR ||D^T y||): rho u tends to the l1 subgradient
# lam sign(a*), which is 0 for lam = 0, where a test relative to it alone is never met; D^T y (the gradient at a = 0)
# is the problem's own scale for it. The floor matters only for lam below ~1e-3 ||D^T y||_inf.
DUAL_FLOOR = 1.0

# the residual balancing of the dense ADMMs: rho x 2 (or / 2) when one relative residual is 10x the other, checked
# every 10 iterations (SPORCO's dictionary-learning rule; the CBPDN default's larger jumps upset float32 solves)
BALANCING = RhoBalancing(period=10, ratio=10.0, scaling=2.0, auto_scaling=False, target=1.0)


def default_rho(op, y, lam, dtype):
    """The scale-aware starting penalty of ``bpdn_admm``: rho = ||D||_F^2 / m, the mean squared norm of the atoms
    (1 for unit-norm atoms, the former default).

    ADMM's iterates are invariant to scaling y and lam together for a fixed rho, and to scaling D by c (with lam by
    c, the same problem in the codes c a) when rho scales by c^2: this rho keeps both invariances, so unnormalised
    dictionaries take the steps normalised ones take. For a matrix-free operator ||D||_2^2 / m is used in its place.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit.admm import default_rho
      >>> float(default_rho(sj.Dense(2.0 * jnp.eye(2)), jnp.array([1.0, 0.0]), 0.2, jnp.float32))
      4.0
    """
    m = math.prod(tuple(op.code_shape))
    atoms = getattr(op, "atoms", None)
    scale = jnp.sum(atoms * atoms) / m if atoms is not None else op.lipschitz() / m
    scale = scale.astype(dtype)
    return jnp.where(scale > 0, scale, jnp.ones_like(scale))


def bpdn_admm_solver(op, y, lam, rho, x0, prox="soft", cg_iter=20, *, auto_rho: bool = True,
                     auto_rho_iter=50, rho_balancing: RhoBalancing = BALANCING) -> Solver:
    """The (init, step) pair of ADMM for BPDN from ``x0`` with starting penalty ``rho``; codes are the sparse
    variable z.

    Args:
      op: the dictionary (``LinearOperator``). y: the signal. lam: the l1 weight(s). rho: the starting penalty (> 0;
        ``default_rho`` is the scale-aware choice).
      x0: the starting codes. prox: "soft" or "nonneg_soft". cg_iter: CG steps per x-update (matrix-free ``op``).
      auto_rho: residual balancing of rho (``sparsejax.solve.RhoBalancing``, the rule of the CBPDN ADMM): rho is
        multiplied by f and u divided by f after an iteration whose relative residuals are out of balance.
      auto_rho_iter: balance during the first ``auto_rho_iter`` iterations only (then rho is fixed, and ADMM
        converges); traced.
      rho_balancing: the rule (static); default SPORCO's adaptive rule with target ratio 1.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit import bpdn_admm_solver
      >>> solver = bpdn_admm_solver(sj.Dense(jnp.eye(2)), jnp.array([2.0, -0.1]), 0.5, 1.0, jnp.zeros(2))
      >>> [round(v, 4) for v in sj.iterate(solver, max_iter=500, tol=1e-8).codes.tolist()]
      [1.5, 0.0]
    """
    prox = _shrinkage(prox)
    balancing = check_balancing(rho_balancing)
    dtype = y.dtype
    solve = shifted_normal_family(op, cg_iter)
    Dty = op.adjoint(y)
    floor = DUAL_FLOOR * _norm(Dty)
    inf = jnp.asarray(jnp.inf, dtype)
    xi = jnp.asarray(1.0 if balancing.target is None else balancing.target, dtype)

    def relative(a, z, u, rho, primal_res, dual_res):
        rel_p = primal_res / jnp.maximum(jnp.maximum(_norm(a), _norm(z)), _tiny(dtype))
        rel_d = dual_res / jnp.maximum(jnp.maximum(rho * _norm(u), floor), _tiny(dtype))
        return rel_p, rel_d

    def step(s):
        rho = s.rho
        a = solve(Dty + rho * (s.z - s.u), s.a, rho)
        z = prox(a + s.u, lam / rho)
        u = s.u + a - z
        r, d = _norm(a - z), rho * _norm(z - s.z)
        f = jnp.ones_like(rho)
        if auto_rho:
            f = balancing.factor(rho, *relative(a, z, u, rho, r, d), s.k, xi, auto_rho_iter)
        return ADMMState(a, z, u / f, r, d, rho * f, s.k + 1)

    def error(old, new):   # rho u is unchanged by the balancing (rho f, u / f)
        return jnp.maximum(*relative(new.a, new.z, new.u, new.rho, new.primal_res, new.dual_res))

    rho0 = jnp.asarray(rho, dtype)
    return Solver(init=lambda: ADMMState(x0, x0, jnp.zeros_like(x0), inf, inf, rho0, jnp.asarray(0, jnp.int32)),
                  step=step, codes=lambda s: s.z, error=error,
                  objective=lambda s: l1_objective(op, y, s.z, lam))


def _check(max_iter, tol, mode, rho, prox):
    check_iteration(max_iter, tol, mode)
    sign_constraint(prox, "ADMM")
    if rho is not None:
        V.as_float_array("rho", rho)
        V.check_nonnegative("rho", rho, strict=True)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "cg_iter", "auto_rho"))
def _bpdn_admm(op, y, lam, rho, x0, tol, auto_rho_iter, *, max_iter, mode, prox, cg_iter, auto_rho):
    if rho is None:
        rho = default_rho(op, y, lam, y.dtype)
    solver = bpdn_admm_solver(op, y, lam, rho, x0, prox, cg_iter, auto_rho=auto_rho, auto_rho_iter=auto_rho_iter)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def bpdn_admm(D, y, lam, *, rho=None, auto_rho: bool = True, auto_rho_iter: int = 50, x0=None,
              max_iter: int = 2000, tol=1e-6, mode: str = "while", prox="soft", cg_iter: int = 20) -> Solution:
    """ADMM for min_a 1/2||y - D a||^2 + lam||a||_1 (one signal; batch with ``jax.vmap``).

    The split a = z with the scaled dual u (Boyd et al. 2011, section 6.4): a least-squares a-update, a shrinkage
    z-update and a dual ascent step, stopped on the relative primal and dual residuals (section 3.3), with the
    penalty rho balanced between them (section 3.4.1; ``sparsejax.solve.RhoBalancing``).

    Args:
      D: ``LinearOperator`` or (n, m) atoms. Dense: exact solves from one eigendecomposition (any rho);
        other operators: ``cg_iter`` warm-started CG steps per iteration.
      y: signal of shape ``D.signal_shape``.
      lam: l1 weight >= 0 (scalar or broadcastable to the codes; traced); "auto": SPORCO's default
        0.1 max |D^T y| (``sparsejax.pursuit.lam.default_lam``).
      rho: starting ADMM penalty > 0 (traced); default ``default_rho``: ||D||_2^2 (1 + 50 max(lam) / ||D^T y||_inf),
        invariant to the amplitude of y and the scale of D.
      auto_rho: residual balancing of rho (default on): each iteration whose relative residuals differ by more
        than 1.2x multiplies rho by sqrt(r / s) (at most 1000x) and divides u by it.
      auto_rho_iter: balancing stops after this many iterations (traced int), so that ADMM then converges.
      x0: warm start for a and z (default zeros).
      max_iter, tol: stop when max(relative primal, relative dual residual) <= tol: ||a - z|| / max(||a||, ||z||)
        and rho ||z - z_old|| / max(||rho u||, 1e-3 ||D^T y||) (the floor keeps lam = 0, where u = 0, meaningful).
      mode: a mode of ``sparsejax.solve.iterate`` ("while", "scan", ...).
      prox: "soft" (signed codes) or "nonneg_soft" (constrain a >= 0).

    Returns:
      ``Solution``: codes = z (exactly sparse); ``state`` is an ``ADMMState`` with ``primal_res``,
      ``dual_res`` and the final ``rho``; ``error`` = max of the relative residuals.

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
    op, y, lam, dtype = prepare_problem(D, y, resolve_lam(D, y, lam))
    _check(max_iter, tol, mode, rho, prox)
    rho = None if rho is None else jnp.asarray(rho, dtype)
    x0 = prepare_init(x0, op, dtype)
    cg_iter = V.check_positive_int("cg_iter", cg_iter)
    auto_rho_iter = V.check_int("auto_rho_iter", auto_rho_iter)
    return _bpdn_admm(op, y, lam, rho, x0, jnp.asarray(tol, dtype), jnp.asarray(auto_rho_iter, jnp.int32),
                      max_iter=max_iter, mode=mode, prox=prox, cg_iter=cg_iter, auto_rho=bool(auto_rho))


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
    rho: Optional[jax.Array] = None
    k: Optional[jax.Array] = None


def default_rho_constrained(op, y, dtype):
    """The scale-aware starting penalty of ``bpdn_constrained_admm``: rho = ||D||_2^2 / ||D^T y||_inf (1 where
    D^T y = 0). The z-update shrinks by 1 / rho, so rho must scale as 1 / (the size of the codes): this rho does,
    for signals of any amplitude and dictionaries of any scale.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit.admm import default_rho_constrained
      >>> float(default_rho_constrained(sj.Dense(2.0 * jnp.eye(2)), jnp.array([4.0, 0.0]), jnp.float32))  # 4 / 8
      0.5
    """
    L = op.lipschitz().astype(dtype)
    g = jnp.max(jnp.abs(op.adjoint(y))).astype(dtype)
    return jnp.where((L > 0) & (g > 0), L / jnp.maximum(g, _tiny(dtype)), jnp.ones_like(L))


def bpdn_constrained_admm_solver(op, y, eps, rho, x0, prox="soft", cg_iter=20, *, auto_rho: bool = True,
                                 auto_rho_iter=50, rho_balancing: RhoBalancing = BALANCING) -> Solver:
    """The (init, step) pair of ADMM for min ||a||_1 s.t. ||D a - y|| <= eps from ``x0``; codes are z.

    It defines no objective (||z||_1 starts at 0 from x0 = 0, which the driver's divergence test would misread);
    ``bpdn_constrained_admm`` reports ||z||_1. ``auto_rho``, ``auto_rho_iter``, ``rho_balancing``: the residual
    balancing of rho, as in ``bpdn_admm_solver`` (the a-update does not depend on rho: one factorisation).

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
    balancing = check_balancing(rho_balancing)
    dtype = y.dtype
    solve = shifted_normal_solver(op, jnp.asarray(1.0, dtype), cg_iter)
    inf = jnp.asarray(jnp.inf, dtype)
    xi = jnp.asarray(1.0 if balancing.target is None else balancing.target, dtype)

    def project(w):
        d = w - y
        nd = _norm(d)
        return y + d * jnp.minimum(1.0, eps / jnp.maximum(nd, _tiny(dtype)))

    def violation(z):
        return jnp.maximum(_norm(op.apply(z) - y) - eps, 0.0)

    def relative(st):   # rho u1, rho u2 are unchanged by the balancing (rho f, u / f)
        Ax = jnp.sqrt(jnp.sum(st.a ** 2) + jnp.sum(op.apply(st.a) ** 2))
        Bz = jnp.sqrt(jnp.sum(st.z ** 2) + jnp.sum(st.v ** 2))
        rel_p = st.primal_res / jnp.maximum(jnp.maximum(Ax, Bz), _tiny(dtype))
        # A^T u = u1 + D^T u2 vanishes at the optimum (a has no cost): scale by its parts instead
        scale = st.rho * jnp.maximum(_norm(st.u1), _norm(op.adjoint(st.u2)))
        rel_d = st.dual_res / jnp.maximum(scale, _tiny(dtype))
        return rel_p, rel_d

    def step(s):
        rho = s.rho
        a = solve(s.z - s.u1 + op.adjoint(s.v - s.u2), s.a)
        Da = op.apply(a)
        z = prox(a + s.u1, 1.0 / rho)
        v = project(Da + s.u2)
        u1 = s.u1 + a - z
        u2 = s.u2 + Da - v
        r = jnp.sqrt(jnp.sum((a - z) ** 2) + jnp.sum((Da - v) ** 2))
        d = rho * _norm((z - s.z) + op.adjoint(v - s.v))
        new = ADMMConstrainedState(a, z, v, u1, u2, r, d, violation(z), rho, s.k + 1)
        if not auto_rho:
            return new
        f = balancing.factor(rho, *relative(new), s.k, xi, auto_rho_iter)
        return new._replace(u1=u1 / f, u2=u2 / f, rho=rho * f)

    def error(old, new):
        return jnp.maximum(*relative(new))

    rho0 = jnp.asarray(rho, dtype)

    def init():
        v0 = project(op.apply(x0))
        return ADMMConstrainedState(x0, x0, v0, jnp.zeros_like(x0), jnp.zeros_like(y), inf, inf, violation(x0),
                                    rho0, jnp.asarray(0, jnp.int32))

    # no objective for iterate: ||z||_1 starts at 0 from x0 = 0, which iterate's divergence test
    # (growth over the starting value) would misread; the wrapper fills it in
    return Solver(init=init, step=step, codes=lambda s: s.z, error=error)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "cg_iter", "auto_rho"))
def _bpdn_constrained_admm(op, y, eps, rho, x0, tol, auto_rho_iter, *, max_iter, mode, prox, cg_iter, auto_rho):
    if rho is None:
        rho = default_rho_constrained(op, y, y.dtype)
    solver = bpdn_constrained_admm_solver(op, y, eps, rho, x0, prox, cg_iter, auto_rho=auto_rho,
                                          auto_rho_iter=auto_rho_iter)
    sol = iterate(solver, max_iter=max_iter, tol=tol, mode=mode)
    # the solver has no objective, so the driver cannot see a non-finite problem from it: mark it here
    bad_input = ~(jnp.all(jnp.isfinite(y)) & jnp.isfinite(eps))
    status = jnp.where(bad_input, Status.NONFINITE_INPUT, sol.status).astype(jnp.int32)
    return sol._replace(objective=jnp.sum(jnp.abs(sol.codes)), status=status)


def bpdn_constrained_admm(D, y, eps, *, rho=None, auto_rho: bool = True, auto_rho_iter: int = 50, x0=None,
                          max_iter: int = 5000, tol=1e-7, mode: str = "while", prox="soft",
                          cg_iter: int = 20) -> Solution:
    """ADMM for min_a ||a||_1 s.t. ||D a - y||_2 <= eps (basis pursuit with noise, Donoho, Elad & Temlyakov,
    "Stable recovery of sparse overcomplete representations in the presence of noise", IEEE Trans. Inf. Theory
    2006; eps = 0: basis pursuit, Chen, Donoho & Saunders, SIAM J. Sci. Comput. 1998).

    The splits z = a and v = D a (Boyd et al. 2011, section 3.1): a least-squares a-update with (I + D^T D), a
    shrinkage z-update, a projection of D a onto the ball ||v - y|| <= eps, and two dual ascent steps.

    Args:
      D: ``LinearOperator`` or (n, m) atoms (dense: exact Cholesky solves; else CG, see module doc).
      y: signal of shape ``D.signal_shape``.
      eps: radius of the data-fit ball, >= 0 (traced). eps = 0 gives basis pursuit D a = y.
      rho: starting ADMM penalty > 0 (traced); default ``default_rho_constrained``: ||D||_2^2 / ||D^T y||_inf.
      auto_rho, auto_rho_iter: residual balancing of rho, as in ``bpdn_admm``.
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
    rho = None if rho is None else jnp.asarray(rho, dtype)
    x0 = prepare_init(x0, op, dtype)
    cg_iter = V.check_positive_int("cg_iter", cg_iter)
    auto_rho_iter = V.check_int("auto_rho_iter", auto_rho_iter)
    return _bpdn_constrained_admm(op, y, eps.astype(dtype), rho, x0, jnp.asarray(tol, dtype),
                                  jnp.asarray(auto_rho_iter, jnp.int32), max_iter=max_iter, mode=mode, prox=prox,
                                  cg_iter=cg_iter, auto_rho=bool(auto_rho))


# deprecated aliases (the names before the <problem>_<algorithm> convention)
admm_bpdn = bpdn_admm
admm_constrained = bpdn_constrained_admm
admm_bpdn_solver = bpdn_admm_solver
admm_constrained_solver = bpdn_constrained_admm_solver
