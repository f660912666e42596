"""Differentiating through a pursuit: the Lasso codes a*(D, y, lam) as a differentiable function.

    a*(D, y, lam) = argmin_a 1/2 ||y - D a||_2^2 + sum(lam |a|)        (nonneg: s.t. a >= 0)

Three ways to get derivatives in D (atoms or filters: any ``LinearOperator`` pytree), y and lam,
chosen per call with ``grad=`` (REFERENCE A3, A11):

* ``"unrolled"``: ``max_iter`` FISTA steps in a ``lax.scan`` (``pursuit.ista.fista_solver`` on the
  shared driver ``solve.iterate(mode="scan")``); reverse mode differentiates the iterations
  themselves. Memory O(max_iter) (every step's intermediates are kept).
* ``"checkpointed"``: the same scan with ``jax.checkpoint`` on the step: only the carried state is
  stored per step, the step's intermediates are recomputed in the backward pass. Same numbers as
  ``"unrolled"``, less memory, about one extra forward pass of time.
* ``"implicit"``: forward solve to convergence (``mode="while"``, no tape), backward by the implicit
  function theorem. On the support S of a* (assumed locally stable) the optimality condition is
      F(a, D, y, lam) = D_S^T (D a - y) + lam_S sign(a_S) = 0,
  so da_S = -(D_S^T D_S)^{-1} dF|_a and da = 0 off S; e.g. da/dy = D_S (D_S^T D_S)^{-1} on S.
  The VJP solves (D_S^T D_S) w = g_S (dense Cholesky-free solve of the masked Gram, or matrix-free CG)
  and returns -(dF/d(D, y, lam))^T w. Exact for the Lasso solution; memory O(1) in the iterations.

``fixed_point_implicit`` is the generic version for any contraction x = T(x, params): forward by
iteration, backward by solving (I - dT/dx)^T u = g with the same fixed-point iteration.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax.operators import Dense
from sparsejax.pursuit.ista import fista_solver
from sparsejax.pursuit.problem import objective_l1, prepare_problem
from sparsejax.solve import Solution, Solver, iterate, relative_change

__all__ = ["lasso_codes", "fixed_point_implicit", "GRAD_MODES"]

GRAD_MODES = ("unrolled", "checkpointed", "implicit")
LINEAR_SOLVERS = ("auto", "dense", "cg")
_DEFAULT_ITERS = {"unrolled": 200, "checkpointed": 200, "implicit": 2000}


def _strip(sol: Solution) -> Solution:
    return Solution(sol.codes, sol.num_steps, sol.converged, sol.diverged, sol.objective, sol.error)


def _scan_solve(op, y, lam, L, max_iter, nonneg, checkpointed):
    x0 = jnp.zeros(op.code_shape, y.dtype)
    s = fista_solver(op, y, lam, L, x0, nonneg)
    if checkpointed:
        s = s._replace(step=jax.checkpoint(s.step, prevent_cse=False))
    return _strip(iterate(s, max_iter=max_iter, tol=0.0, mode="scan"))


def _while_solve(op, y, lam, L, tol, max_iter, nonneg):
    x0 = jnp.zeros(op.code_shape, y.dtype)
    return _strip(iterate(fista_solver(op, y, lam, L, x0, nonneg), max_iter=max_iter, tol=tol, mode="while"))


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


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _implicit(max_iter, nonneg, linear_solver, op, y, lam, L, tol):
    return _while_solve(op, y, lam, L, tol, max_iter, nonneg)


def _implicit_fwd(max_iter, nonneg, linear_solver, op, y, lam, L, tol):
    sol = _while_solve(op, y, lam, L, tol, max_iter, nonneg)
    return sol, (op, y, lam, L, tol, sol.codes)


def _implicit_bwd(max_iter, nonneg, linear_solver, res, ct):
    op, y, lam, L, tol, a = res
    a = lax.stop_gradient(a)
    s = jnp.sign(a)  # nonneg: a >= 0, so sign(a) = 1 on the support as well

    def F(op_, y_, lam_):  # optimality residual, zero on the support at the solution
        return op_.adjoint(op_.apply(a) - y_) + lam_ * s

    def obj(op_, y_, lam_):  # envelope theorem: dF*/dtheta = partial derivative at fixed a*
        return objective_l1(op_, y_, lam_, a)

    w = _support_solve(op, a, ct.codes, linear_solver)
    _, vjp_F = jax.vjp(F, op, y, lam)
    _, vjp_obj = jax.vjp(obj, op, y, lam)
    gF = vjp_F(-w)
    gO = vjp_obj(jnp.asarray(ct.objective, a.dtype))
    grads = jax.tree_util.tree_map(jnp.add, gF, gO)
    return grads + (jnp.zeros_like(L), jnp.zeros_like(tol))


_implicit.defvjp(_implicit_fwd, _implicit_bwd)


@partial(jax.jit, static_argnames=("grad", "max_iter", "nonneg", "linear_solver"))
def _lasso(op, y, lam, L, tol, *, grad, max_iter, nonneg, linear_solver):
    if L is None:
        L = op.lipschitz()
    if grad == "implicit":
        return _implicit(max_iter, nonneg, linear_solver, op, y, lam, lax.stop_gradient(L), tol)
    return _scan_solve(op, y, lam, L, max_iter, nonneg, grad == "checkpointed")


def lasso_codes(D, y, lam, *, grad: str = "unrolled", max_iter: int | None = None, tol=1e-6,
                nonneg: bool = False, L=None, linear_solver: str = "auto", return_solution: bool = False):
    """Differentiable Lasso codes a*(D, y, lam) of one signal (batch with ``jax.vmap``).

    Args:
      D: ``LinearOperator`` (``Dense``, ``Conv``, ...) or an (n, m) array of atoms; differentiable.
      y: signal of shape ``D.signal_shape``; differentiable.
      lam: l1 weight >= 0, scalar or broadcastable to the codes; differentiable.
      grad: ``"unrolled"`` | ``"checkpointed"`` | ``"implicit"`` (module docstring).
      max_iter: FISTA steps (exactly this many for the scan modes; the cap of the while loop for
        ``"implicit"``). Default 200 for the scan modes, 2000 for ``"implicit"``.
      tol: stopping tolerance on ||a_k - a_{k-1}|| / ||a_k|| (``"implicit"`` only).
      nonneg: constrain a >= 0.
      L: Lipschitz constant ||D||_2^2 (default: ``D.lipschitz()``; differentiated through in the scan
        modes, irrelevant to the implicit derivative).
      linear_solver: ``"implicit"`` backward solve on the support: ``"dense"`` (Gram matrix),
        ``"cg"`` (matrix-free conjugate gradients) or ``"auto"`` (dense for ``Dense``, else CG).
      return_solution: return the whole ``Solution`` (codes, num_steps, converged, diverged, objective,
        error) instead of the codes alone. Its ``objective`` is differentiable too.

    Returns:
      The codes (shape ``D.code_shape``), or a ``Solution`` with ``return_solution=True``: check
      ``converged`` / ``diverged`` there, the implicit derivative is exact only at a converged solution.
    """
    V.check_choice("grad", grad, GRAD_MODES)
    V.check_choice("linear_solver", linear_solver, LINEAR_SOLVERS)
    if max_iter is None:
        max_iter = _DEFAULT_ITERS[grad]
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    op, y, lam, dtype = prepare_problem(D, y, lam)
    if L is not None:
        V.check_nonnegative("L", L, strict=True)
        L = jnp.asarray(L, dtype)
    sol = _lasso(op, y, lam, L, jnp.asarray(tol, dtype), grad=grad, max_iter=max_iter, nonneg=bool(nonneg),
                 linear_solver=linear_solver)
    return sol if return_solution else sol.codes


# -- generic fixed point ------------------------------------------------------------------------------

def _fp_forward(step_fn, x0, params, tol, max_iter):
    s = Solver(init=lambda: x0, step=lambda x: step_fn(x, params), codes=lambda x: x, error=relative_change)
    return iterate(s, max_iter=max_iter, tol=tol, mode="while").codes


@partial(jax.custom_vjp, nondiff_argnums=(0, 3, 4))
def _fixed_point(step_fn, x0, params, tol, max_iter):
    return _fp_forward(step_fn, x0, params, tol, max_iter)


def _fixed_point_fwd(step_fn, x0, params, tol, max_iter):
    x = _fp_forward(step_fn, x0, params, tol, max_iter)
    return x, (x, params)


def _fixed_point_bwd(step_fn, tol, max_iter, res, g):
    x, params = res
    _, vjp_x = jax.vjp(lambda z: step_fn(z, params), x)
    # u = g + (dT/dx)^T u, by the same contraction
    s = Solver(init=lambda: g, step=lambda u: g + vjp_x(u)[0], codes=lambda u: u, error=relative_change)
    u = iterate(s, max_iter=max_iter, tol=tol, mode="while").codes
    _, vjp_p = jax.vjp(lambda p: step_fn(x, p), params)
    return (jnp.zeros_like(x), vjp_p(u)[0])


_fixed_point.defvjp(_fixed_point_fwd, _fixed_point_bwd)


def fixed_point_implicit(step_fn: Callable, x0, params, *, tol: float = 1e-8, max_iter: int = 10000):
    """The fixed point x* = T(x*, params) of a contraction T, differentiable in ``params`` implicitly.

    Forward: x_{k+1} = T(x_k, params) from ``x0`` until ||x_{k+1} - x_k|| / ||x_{k+1}|| <= tol.
    Backward (implicit function theorem): dx*/dparams = (I - dT/dx)^{-1} dT/dparams, so the VJP solves
    u = g + (dT/dx)^T u by the same iteration (it converges whenever T contracts at x*) and returns
    (dT/dparams)^T u. No tape of the iterations. With T the ISTA map x -> S_{lam/L}(x - D^T(D x - y)/L)
    this is the Lasso's implicit derivative (``lasso_codes(grad="implicit")`` solves the same system
    directly on the support).

    Args:
      step_fn: ``T(x, params) -> x`` (same shape/dtype as x), jax-traceable.
      x0: starting point (an array; no derivative flows to it).
      params: pytree of arrays, the differentiable parameters.
      tol, max_iter: stopping rule of both the forward and the backward iterations (static max_iter).

    Returns:
      x* (an array).
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    x0 = V.as_float_array("x0", x0)
    return _fixed_point(step_fn, x0, params, float(tol), max_iter)
