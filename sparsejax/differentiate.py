"""Differentiating through a pursuit: the Lasso codes a*(D, y, lam) as a differentiable function.

    a*(D, y, lam) = argmin_a 1/2 ||y - D a||_2^2 + sum(lam |a|)        (prox="nonneg_soft": s.t. a >= 0)

How derivatives in D (atoms or filters: any ``LinearOperator`` pytree), y and lam are taken is the driver's
``mode`` (``sparsejax.solve.iterate``, one of ``sparsejax.solve.MODES``), chosen per call:

* ``"scan"``: ``max_iter`` FISTA steps (Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for
  linear inverse problems", SIAM J. Imaging Sci. 2009) in a ``lax.scan``; reverse mode differentiates the
  iterations themselves, as in unrolled networks (Gregor & LeCun, "Learning fast approximations of sparse
  coding", ICML 2010). Memory O(max_iter) (every step's intermediates are kept).
* ``"checkpoint"``: the same scan with ``jax.checkpoint`` on the step (Griewank & Walther, "Evaluating
  Derivatives", SIAM 2008, ch. 12): only the carried state is stored per step, the step's intermediates are
  recomputed in the backward pass. Same numbers as ``"scan"``, less memory, about one extra forward pass of time.
* ``"implicit"``: forward solve to convergence (a while loop, no tape), backward by the implicit function
  theorem on the support S of a* (assumed locally stable; Mairal, Bach & Ponce, "Task-driven dictionary
  learning", IEEE TPAMI 2012, section 3). There the optimality condition is
      F(a, D, y, lam) = D_S^T (D a - y) + lam_S sign(a_S) = 0,
  so da_S = -(D_S^T D_S)^{-1} dF|_a and da = 0 off S; e.g. da/dy = D_S (D_S^T D_S)^{-1} on S.
  The VJP solves (D_S^T D_S) w = g_S (a dense solve of the masked Gram, or matrix-free conjugate gradients)
  and returns -(dF/d(D, y, lam))^T w. This is the Lasso's own, direct form of the driver's generic implicit
  mode (which iterates the fixed-point equation of the solver's map instead of solving the linear system);
  memory O(1) in the iterations.
* ``"while"``: the same forward solve without a custom derivative: forward mode (``jax.jvp``) only.

``fixed_point_implicit`` is the generic version for any contraction x = T(x, params), the driver's
``mode="implicit"`` on the map T (Blondel et al., "Efficient and modular implicit differentiation",
NeurIPS 2022): forward by iteration, backward by solving (I - dT/dx)^T u = g with the same fixed-point iteration.
"""
from __future__ import annotations

import warnings
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import Dense
from sparsejax.pursuit.ista import fista_solver
from sparsejax.pursuit.problem import l1_objective, prepare_problem
from sparsejax.solve import Solution, Solver, check_iteration, iterate, relative_change

__all__ = ["lasso_codes", "fixed_point_implicit", "GRAD_MODES"]

# deprecated alias: the values of lasso_codes' former ``grad=`` argument, each mapped to its ``mode=``
GRAD_MODES = ("unrolled", "checkpointed", "implicit")
_GRAD_TO_MODE = {"unrolled": "scan", "checkpointed": "checkpoint", "implicit": "implicit"}
LINEAR_SOLVERS = ("auto", "dense", "cg")
_DEFAULT_ITERS = {"scan": 200, "checkpoint": 200, "implicit": 2000, "while": 2000}


def _fista(op, y, lam, L, prox: str) -> Solver:
    x0 = jnp.zeros(op.code_shape, y.dtype)
    return fista_solver(op, y, lam, L, x0, prox=prox)


def _result(sol: Solution) -> Solution:
    """The solution without the solver's state and history (what ``lasso_codes`` returns)."""
    return sol._replace(state=None, history=None)


def _support_solve(op, a, g, linear_solver):
    """w with (D_S^T D_S + delta I) w_S = g_S on the support S = {a != 0} of ``a``, w = 0 off S.

    delta = 100 eps max_j ||d_j||^2 (about 1e-5 in float32, 2e-14 in float64) keeps the solve finite when the
    support's Gram matrix is numerically singular (large supports of coherent atoms), at a relative perturbation
    below the solver's own accuracy."""
    mask = (a != 0).astype(a.dtype)
    ridge = 100.0 * jnp.finfo(a.dtype).eps
    b = mask * g
    if linear_solver == "auto":
        linear_solver = "dense" if isinstance(op, Dense) else "cg"
    if linear_solver == "dense":
        m = a.size
        if isinstance(op, Dense):
            G = op.gram()
        else:  # columns D^T D e_j of the Gram, built by vmap (small code sizes only)
            eye = jnp.eye(m, dtype=a.dtype).reshape((m,) + a.shape)
            G = jax.vmap(op.normal)(eye).reshape(m, m)
        mf = mask.reshape(m)
        Gm = G * (mf[:, None] * mf[None, :]) + jnp.diag(1.0 - mf)  # identity off the support
        Gm = Gm + ridge * jnp.max(jnp.diag(G)) * jnp.diag(mf)
        return jnp.linalg.solve(Gm, b.reshape(m)).reshape(a.shape) * mask

    scale = op.lipschitz() if not isinstance(op, Dense) else jnp.max(jnp.sum(op.atoms * op.atoms, axis=0))
    delta = ridge * scale

    def normal_s(v):
        return mask * op.normal(mask * v) + delta * mask * v + (1.0 - mask) * v

    rtol = float(np.sqrt(np.finfo(a.dtype).eps)) * 1e-2
    w, _ = jax.scipy.sparse.linalg.cg(normal_s, b, tol=rtol, maxiter=10 * a.size)
    return w * mask


def _solve_to_convergence(op, y, lam, L, tol, max_iter, prox):
    return _result(iterate(_fista(op, y, lam, L, prox), max_iter=max_iter, tol=tol, mode="while"))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _implicit(max_iter, prox, linear_solver, op, y, lam, L, tol):
    return _solve_to_convergence(op, y, lam, L, tol, max_iter, prox)


def _implicit_fwd(max_iter, prox, linear_solver, op, y, lam, L, tol):
    sol = _solve_to_convergence(op, y, lam, L, tol, max_iter, prox)
    return sol, (op, y, lam, L, tol, sol.codes)


def _implicit_bwd(max_iter, prox, linear_solver, res, ct):
    op, y, lam, L, tol, a = res
    a = lax.stop_gradient(a)
    s = jnp.sign(a)  # nonneg: a >= 0, so sign(a) = 1 on the support as well

    def F(op_, y_, lam_):  # optimality residual, zero on the support at the solution
        return op_.adjoint(op_.apply(a) - y_) + lam_ * s

    def obj(op_, y_, lam_):  # envelope theorem: dF*/dtheta = partial derivative at fixed a*
        return l1_objective(op_, y_, a, lam_)

    w = _support_solve(op, a, ct.codes, linear_solver)
    _, vjp_F = jax.vjp(F, op, y, lam)
    _, vjp_obj = jax.vjp(obj, op, y, lam)
    gF = vjp_F(-w)
    gO = vjp_obj(jnp.asarray(ct.objective, a.dtype))
    grads = jax.tree_util.tree_map(jnp.add, gF, gO)
    return grads + (jnp.zeros_like(L), jnp.zeros_like(tol))


_implicit.defvjp(_implicit_fwd, _implicit_bwd)


@partial(jax.jit, static_argnames=("mode", "max_iter", "prox", "linear_solver"))
def _lasso(op, y, lam, L, tol, *, mode, max_iter, prox, linear_solver):
    if L is None:
        L = op.lipschitz()
    if mode == "implicit":
        return _implicit(max_iter, prox, linear_solver, op, y, lam, lax.stop_gradient(L), tol)
    if mode != "while":  # the fixed-length modes run every step: converged only at an exact fixed point
        tol = jnp.zeros_like(tol)
    return _result(iterate(_fista(op, y, lam, L, prox), max_iter=max_iter, tol=tol, mode=mode))


def _mode_from_grad(mode, grad):
    """``mode``, or the ``mode`` of the deprecated ``grad=`` value; default ``"scan"``."""
    if grad is None:
        return "scan" if mode is None else mode
    if mode is not None:
        raise ValueError(f"give mode= (got {mode!r}) or its deprecated alias grad= (got {grad!r}), not both")
    V.check_choice("grad", grad, GRAD_MODES)
    warnings.warn(f"lasso_codes(grad={grad!r}) is deprecated: use mode={_GRAD_TO_MODE[grad]!r}",
                  DeprecationWarning, stacklevel=3)
    return _GRAD_TO_MODE[grad]


def lasso_codes(D, y, lam, *, mode: str | None = None, max_iter: int | None = None, tol=1e-6, prox: str = "soft",
                L=None, linear_solver: str = "auto", return_solution: bool = False, grad: str | None = None):
    """Differentiable Lasso codes a*(D, y, lam) of one signal (batch with ``jax.vmap``).

    Args:
      D: ``LinearOperator`` (``Dense``, ``Conv``, ...) or an (n, m) array of atoms; differentiable.
      y: signal of shape ``D.signal_shape``; differentiable.
      lam: l1 weight >= 0, scalar or broadcastable to the codes; differentiable.
      mode: how to differentiate, one of ``sparsejax.solve.MODES``: ``"scan"`` (default), ``"checkpoint"``,
        ``"implicit"`` or ``"while"`` (module docstring).
      max_iter: FISTA steps (exactly this many for ``"scan"`` / ``"checkpoint"``; the cap of the while loop for
        ``"implicit"`` / ``"while"``). Default 200 for the fixed-length modes, 2000 for the others.
      tol: stopping tolerance on FISTA's relative prox-gradient residual ||x_k - z_k|| / ||x_k||
        (``"implicit"`` / ``"while"`` only).
      prox: ``"soft"`` (signed codes) or ``"nonneg_soft"`` (a >= 0), one of ``sparsejax.shrink.SIGN_PROXES``.
      L: Lipschitz constant ||D||_2^2 (default: ``D.lipschitz()``; differentiated through in the scan
        modes, irrelevant to the implicit derivative).
      linear_solver: ``"implicit"`` backward solve on the support: ``"dense"`` (Gram matrix),
        ``"cg"`` (matrix-free conjugate gradients) or ``"auto"`` (dense for ``Dense``, else CG).
      return_solution: return the whole ``Solution`` (codes, num_steps, converged, diverged, objective,
        error, status) instead of the codes alone. Its ``objective`` is differentiable too.
      grad: deprecated alias of ``mode``: ``"unrolled"`` (= ``"scan"``), ``"checkpointed"``
        (= ``"checkpoint"``), ``"implicit"``.

    Returns:
      The codes (shape ``D.code_shape``), or a ``Solution`` with ``return_solution=True``: check
      ``converged`` / ``diverged`` there, the implicit derivative is exact only at a converged solution.

    Example: with D = I the codes are soft(y, lam), so da/dy is 1 on the support and 0 off it.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> y = jnp.array([2.0, 0.5, -1.5])
      >>> sj.lasso_codes(jnp.eye(3), y, 1.0, mode="implicit").tolist()
      [1.0, 0.0, -0.5]
      >>> jax.grad(lambda y: sj.lasso_codes(jnp.eye(3), y, 1.0, mode="implicit").sum())(y).tolist()
      [1.0, 0.0, 1.0]
    """
    mode = _mode_from_grad(mode, grad)
    if max_iter is None:
        max_iter = _DEFAULT_ITERS.get(mode, 1)
    check_iteration(max_iter, tol, mode, min_iter=1)
    shrink.get(prox, allowed=shrink.SIGN_PROXES)
    V.check_choice("linear_solver", linear_solver, LINEAR_SOLVERS)
    op, y, lam, dtype = prepare_problem(D, y, lam)
    if L is not None:
        L = V.check_nonnegative_scalar("L", L, strict=True).astype(dtype)
    sol = _lasso(op, y, lam, L, jnp.asarray(tol, dtype), mode=mode, max_iter=max_iter, prox=prox,
                 linear_solver=linear_solver)
    return sol if return_solution else sol.codes


def fixed_point_implicit(step_fn: Callable, x0, params, *, tol: float = 1e-8, max_iter: int = 10000):
    """The fixed point x* = T(x*, params) of a contraction T, differentiable in ``params`` implicitly.

    Forward: x_{k+1} = T(x_k, params) from ``x0`` until ||x_{k+1} - x_k|| / ||x_{k+1}|| <= tol.
    Backward (implicit function theorem; Blondel et al., "Efficient and modular implicit differentiation",
    NeurIPS 2022): dx*/dparams = (I - dT/dx)^{-1} dT/dparams, so the VJP solves u = g + (dT/dx)^T u by the same
    iteration (it converges whenever T contracts at x*) and returns (dT/dparams)^T u. No tape of the iterations.
    This is ``sparsejax.solve.iterate(..., mode="implicit")`` on the map T. With T the ISTA map
    x -> S_{lam/L}(x - D^T(D x - y)/L) it is the Lasso's implicit derivative (``lasso_codes(mode="implicit")``
    solves the same system directly on the support).

    Args:
      step_fn: ``T(x, params) -> x`` (same shape/dtype as x), jax-traceable.
      x0: starting point (an array; no derivative flows to it).
      params: pytree of arrays, the differentiable parameters.
      tol, max_iter: stopping rule of both the forward and the backward iterations (static max_iter).

    Returns:
      x* (an array).

    Example: the Babylonian map x -> (x + p / x) / 2 has the fixed point sqrt(p), d sqrt(p)/dp = 1 / (2 sqrt(p)).
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> root = lambda p: sj.fixed_point_implicit(lambda x, p: 0.5 * (x + p / x), jnp.asarray(1.0), p)
      >>> round(float(root(4.0)), 6), round(float(jax.grad(root)(4.0)), 6)
      (2.0, 0.25)
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    check_iteration(max_iter, tol, min_iter=1)
    x0 = V.as_float_array("x0", x0)
    solver = Solver(init=lambda: x0, step=lambda x: step_fn(x, params), codes=lambda x: x, error=relative_change)
    return iterate(solver, max_iter=max_iter, tol=tol, mode="implicit").codes
