"""The Elastic Net (Zou & Hastie, "Regularization and variable selection via the elastic net", J. R. Stat. Soc. B
2005; SPORCO's ``ElasticNet``):

    min_a 1/2 ||y - D a||_2^2 + lam ||a||_1 + (mu / 2) ||a||_2^2          (prox="nonneg_soft": and a >= 0)

Solved by FISTA (``sparsejax.pursuit.ista.fista_prox_solver``) with the prox of the whole penalty,
``sparsejax.shrink.elastic_soft``: a_k = soft(v, lam / L) / (1 + mu / L), so the step stays 1 / ||D||_2^2 and the
ridge term's strong convexity is used by the prox instead of raising L. For mu > 0 the solution is unique even for
correlated atoms, which the Lasso then selects in groups.

scikit-learn's ``ElasticNet(alpha, l1_ratio, fit_intercept=False)`` minimises
1/(2 n) ||y - D w||^2 + alpha l1_ratio ||w||_1 + (alpha (1 - l1_ratio) / 2) ||w||^2: multiplied by n, it is this
problem with lam = n alpha l1_ratio and mu = n alpha (1 - l1_ratio) (``from_sklearn``).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.pursuit.ista import check_backtracking, fista_prox_solver
from sparsejax.pursuit.lam import resolve_lam
from sparsejax.pursuit.problem import prepare_init, prepare_problem, sign_constraint
from sparsejax.solve import Solution, check_iteration, iterate

__all__ = ["elastic_net", "elastic_net_objective", "from_sklearn"]


def elastic_net_objective(D, y, a, lam, mu) -> jax.Array:
    """F(a) = 1/2 ||y - D a||^2 + sum(lam |a|) + (mu / 2) ||a||^2 for an (n, m) array ``D`` or a ``LinearOperator``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.elastic_net import elastic_net_objective
      >>> float(elastic_net_objective(jnp.eye(2), jnp.array([1.0, 0.0]), jnp.array([0.5, 0.0]), 0.2, 2.0))
      0.475
    """
    op, y, lam, _ = prepare_problem(D, y, lam)
    a = jnp.asarray(a)
    r = op.apply(a) - y
    return 0.5 * jnp.sum(r * r) + jnp.sum(lam * jnp.abs(a)) + 0.5 * mu * jnp.sum(a * a)


def from_sklearn(alpha, l1_ratio, n_samples):
    """(lam, mu) of scikit-learn's ``ElasticNet(alpha, l1_ratio)`` on ``n_samples`` rows (module docstring):
    lam = n alpha l1_ratio, mu = n alpha (1 - l1_ratio).

    Example:
      >>> from sparsejax.pursuit.elastic_net import from_sklearn
      >>> from_sklearn(0.1, 0.5, 20)
      (1.0, 1.0)
    """
    if not (0.0 <= float(l1_ratio) <= 1.0):
        raise ValueError(f"l1_ratio must lie in [0, 1], got {l1_ratio!r}")
    if float(alpha) < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    n = V.check_positive_int("n_samples", n_samples)
    return n * float(alpha) * float(l1_ratio), n * float(alpha) * (1.0 - float(l1_ratio))


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "backtracking", "restart", "history"))
def _elastic_net(op, y, lam, mu, L, x0, tol, *, max_iter, mode, nonneg, backtracking, restart, history):
    if L is None:
        L = op.lipschitz().astype(y.dtype)
    l1 = shrink.nonneg_soft if nonneg else shrink.soft

    def prox_step(v, Lk):
        return l1(v, lam / Lk) / (1.0 + mu / Lk)

    def penalty(a):
        return jnp.sum(lam * jnp.abs(a)) + 0.5 * mu * jnp.sum(a * a)

    solver = fista_prox_solver(op, y, prox_step, penalty, L, x0, backtracking=backtracking, restart=restart)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode, history=history)


def elastic_net(D, y, lam, mu, *, prox="soft", L=None, x0=None, max_iter: int = 2000, tol=1e-6,
                mode: str = "while", backtracking=False, restart: bool = True, history: bool = False) -> Solution:
    """The Elastic Net min_a 1/2 ||y - D a||^2 + lam ||a||_1 + (mu / 2) ||a||^2 (one signal; batch with
    ``jax.vmap``): FISTA with the prox ``sparsejax.shrink.elastic_soft`` (module docstring), restart on by default.

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      y: the signal, shape ``D.signal_shape``.
      lam: l1 weight >= 0 (scalar or broadcastable to the codes; traced); "auto": SPORCO's 0.1 max |D^T y|.
      mu: l2 weight >= 0, a scalar (traced). mu = 0 is the Lasso.
      prox: "soft" (signed codes) or "nonneg_soft" (codes >= 0).
      L: the step 1 / L (default ||D||_2^2; the starting value with backtracking, default 1).
      x0: warm start (default zeros).
      max_iter, tol: stop when the relative proximal-gradient residual <= tol (``sparsejax.pursuit.ista``).
      mode: a mode of ``sparsejax.solve.iterate``. history: per-step objective (scan modes).
      backtracking: False, True or "adaptive" (``sparsejax.pursuit.ista.fista_prox_solver``).
      restart: the gradient restart of the momentum.

    Returns:
      ``Solution``: codes, objective F, status.

    Example: with D = I, a = soft(y, lam) / (1 + mu).
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.elastic_net import elastic_net
      >>> sol = elastic_net(jnp.eye(3), jnp.array([3.0, -2.0, 0.5]), 1.0, 1.0)
      >>> [round(v, 4) for v in sol.codes.tolist()], bool(sol.converged)
      ([1.0, -0.5, 0.0], True)
    """
    nonneg = sign_constraint(prox, "elastic_net")
    op, y, lam, dtype = prepare_problem(D, y, resolve_lam(D, y, lam))
    check_iteration(max_iter, tol, mode)
    check_backtracking(backtracking)
    mu = V.nan_if_negative(V.check_nonnegative_scalar("mu", mu).astype(dtype))
    if L is not None:
        L = V.check_nonnegative_scalar("L", L, strict=True).astype(dtype)
    elif backtracking:
        L = jnp.asarray(1.0, dtype)
    x0 = prepare_init(x0, op, dtype)
    return _elastic_net(op, y, lam, mu, L, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                        nonneg=nonneg, backtracking=backtracking, restart=bool(restart), history=bool(history))
