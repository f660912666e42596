"""The l1-ball constrained form of sparse coding (Tibshirani's original Lasso; SPORCO's ``BPDNProjL1``):

    min_a 1/2 ||y - D a||_2^2   s.t.   ||a||_1 <= gamma          (prox="nonneg_soft": and a >= 0)

Solved by FISTA (``sparsejax.pursuit.ista.fista_prox_solver``) whose proximal step is the exact projection onto the
ball, ``sparsejax.shrink.project_l1_ball`` (one sort per step; Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient
projections onto the l1-ball for learning in high dimensions", ICML 2008). The constraint holds at every iterate.

Its solution is that of the penalised Lasso for some lam (gamma = ||a*_lam||_1), so the path of one is the path of
the other; gamma >= ||least-squares solution||_1 leaves the constraint inactive.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.pursuit.ista import check_backtracking, fista_prox_solver
from sparsejax.pursuit.problem import prepare_init, prepare_problem, sign_constraint
from sparsejax.solve import Solution, check_iteration, iterate

__all__ = ["bpdn_proj_l1"]


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "backtracking", "restart", "history"))
def _bpdn_proj_l1(op, y, gamma, L, x0, tol, *, max_iter, mode, nonneg, backtracking, restart, history):
    if L is None:
        L = op.lipschitz().astype(y.dtype)
    solver = fista_prox_solver(op, y, lambda v, Lk: shrink.project_l1_ball(v, gamma, nonneg=nonneg),
                               lambda a: jnp.zeros((), y.dtype), L, x0, backtracking=backtracking, restart=restart)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode, history=history)


def bpdn_proj_l1(D, y, gamma, *, prox="soft", L=None, x0=None, max_iter: int = 2000, tol=1e-6,
                 mode: str = "while", backtracking=False, restart: bool = True, history: bool = False) -> Solution:
    """min_a 1/2 ||y - D a||^2 s.t. ||a||_1 <= gamma (one signal; batch with ``jax.vmap``): FISTA with the projection
    onto the l1 ball as its proximal step (module docstring), the gradient restart on by default.

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      y: the signal, shape ``D.signal_shape``.
      gamma: the radius of the l1 ball, a scalar >= 0 (traced).
      prox: "soft" (signed codes) or "nonneg_soft" (codes >= 0: the ball's non-negative part).
      L: the step 1 / L (default ||D||_2^2; the starting value with backtracking, default 1).
      x0: the starting codes (default zeros; projected by the first step).
      max_iter, tol: stop when the relative proximal-gradient residual ||x_k - z_k|| / ||x_k|| <= tol.
      mode: a mode of ``sparsejax.solve.iterate``. history: per-step objective (scan modes).
      backtracking: False, True or "adaptive" (``sparsejax.pursuit.ista.fista_prox_solver``).
      restart: the gradient restart of the momentum.

    Returns:
      ``Solution``: codes with ||codes||_1 <= gamma (up to rounding), objective 1/2 ||y - D a||^2, status.

    Example: with D = I the solution is the projection of y onto the ball.
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.l1ball import bpdn_proj_l1
      >>> sol = bpdn_proj_l1(jnp.eye(3), jnp.array([3.0, -2.0, 0.5]), 3.0)
      >>> [round(v, 4) for v in sol.codes.tolist()], bool(sol.converged)
      ([2.0, -1.0, 0.0], True)
    """
    nonneg = sign_constraint(prox, "bpdn_proj_l1")
    op, y, _, dtype = prepare_problem(D, y, None)
    check_iteration(max_iter, tol, mode)
    check_backtracking(backtracking)
    gamma = V.nan_if_negative(V.check_nonnegative_scalar("gamma", gamma).astype(dtype))
    if L is not None:
        L = V.check_nonnegative_scalar("L", L, strict=True).astype(dtype)
    elif backtracking:
        L = jnp.asarray(1.0, dtype)
    x0 = prepare_init(x0, op, dtype)
    return _bpdn_proj_l1(op, y, gamma, L, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode, nonneg=nonneg,
                         backtracking=backtracking, restart=bool(restart), history=bool(history))
