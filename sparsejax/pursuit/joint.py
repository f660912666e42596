"""Joint (group) sparsity across signals: signals that share a support are coded together.

Dense (SPORCO's ``BPDNJoint``; with lam = 0 the multi-task Lasso), signals as the rows of S (B, n), codes X (B, m):

    min_X 1/2 ||S - X D^T||_F^2 + lam ||X||_1 + mu sum_j ||X_{:,j}||_2

The l2,1 term couples the B codes of each atom j: an atom is used by all the signals or by none (Obozinski, Taskar &
Jordan, "Joint covariate selection and joint subspace selection for multiple classification problems", Stat.
Comput. 2010; Tropp, Gilbert & Strauss, "Algorithms for simultaneous sparse approximation", Signal Process. 2006).
Solved by FISTA (``sparsejax.pursuit.ista.fista_prox_solver``) with the prox ``sparsejax.shrink.joint_soft`` on the
columns of X. SPORCO's layout is the transpose (S (n, K), X (M, K)): ``BPDNJoint(D, S.T, lam, mu)`` solves
``bpdn_joint(D, S, lam, mu)``. scikit-learn's ``MultiTaskLasso(alpha, fit_intercept=False)`` fitted on (D, S.T)
minimises 1/(2 n) ||S^T - D W||_F^2 + alpha ||W||_2,1 (W (m, B), rows of W the groups): its ``coef_`` (B, m) is
``bpdn_joint(D, S, lam=0, mu=n alpha).codes``.

Convolutional (SPORCO's ``ConvBPDNJoint``): single-channel filters d_m, a C-channel signal s_c, codes x_{c,m}:

    min_x 1/2 sum_c ||sum_m d_m * x_{c,m} - s_c||^2 + lam sum ||x||_1 + mu sum_{m,n} ||x_{:,m,n}||_2

the Fourier-domain ADMM of ``sparsejax.pursuit.csc.cbpdn_admm`` with its ``mu`` (the z-update a ``joint_soft``
along the channel axis).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import Dense
from sparsejax.pursuit.csc import cbpdn_admm
from sparsejax.pursuit.ista import check_backtracking, fista_prox_solver
from sparsejax.pursuit.lam import default_lam
from sparsejax.pursuit.problem import prepare_batch, sign_constraint
from sparsejax.solve import Solution, check_iteration, iterate

__all__ = ["bpdn_joint", "joint_objective", "conv_bpdn_joint"]


class _Rows:
    """The dictionary acting on a batch of codes as rows: X (B, m) -> X D^T (B, n)."""

    def __init__(self, atoms):
        self.atoms = atoms

    def apply(self, X):
        return X @ self.atoms.T

    def adjoint(self, R):
        return R @ self.atoms

    def lipschitz(self):
        return Dense(self.atoms).lipschitz()


def _penalty(X, lam, mu):
    return jnp.sum(lam * jnp.abs(X)) + mu * jnp.sum(jnp.sqrt(jnp.sum(X * X, axis=0)))


def joint_objective(D, S, X, lam, mu) -> jax.Array:
    """F(X) = 1/2 ||S - X D^T||_F^2 + lam ||X||_1 + mu sum_j ||X_{:,j}||_2 (signals and codes as rows).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.joint import joint_objective
      >>> float(joint_objective(jnp.eye(2), jnp.array([[3.0, 0.0], [4.0, 0.0]]), jnp.array([[3.0, 0.0], [4.0, 0.0]]),
      ...                       0.0, 1.0))   # the column (3, 4) has norm 5
      5.0
    """
    R = jnp.asarray(X) @ jnp.asarray(D).T - jnp.asarray(S)
    return 0.5 * jnp.sum(R * R) + _penalty(jnp.asarray(X), lam, mu)


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "backtracking", "restart"))
def _bpdn_joint(atoms, S, lam, mu, L, X0, tol, *, max_iter, mode, nonneg, backtracking, restart):
    op = _Rows(atoms)
    if L is None:
        L = op.lipschitz().astype(S.dtype)
    solver = fista_prox_solver(
        op, S, lambda V_, Lk: shrink.joint_soft(V_, lam / Lk, mu / Lk, axis=0, nonneg=nonneg),
        lambda X: _penalty(X, lam, mu), L, X0, backtracking=backtracking, restart=restart)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def bpdn_joint(D, Y, lam, mu=0.0, *, prox="soft", L=None, x0=None, max_iter: int = 2000, tol=1e-6,
               mode: str = "while", backtracking=False, restart: bool = True) -> Solution:
    """Joint sparse coding of the rows of Y: min_X 1/2 ||Y - X D^T||_F^2 + lam ||X||_1 + mu sum_j ||X_{:,j}||_2
    (module docstring; SPORCO's BPDNJoint, the multi-task Lasso for lam = 0).

    FISTA with the prox of the penalty (``sparsejax.shrink.joint_soft`` on each atom's column of codes), restart
    on by default.

    Args:
      D: (n, m) atoms (an array or ``sparsejax.Dense``).
      Y: signals (B, n), one per row (SPORCO's S transposed).
      lam: l1 weight >= 0 (scalar or broadcastable to the codes (B, m)); "auto": SPORCO's default
        0.1 max |D^T Y| over the whole batch.
      mu: l2,1 weight >= 0 (a scalar), the joint term.
      prox: "soft" (signed codes) or "nonneg_soft" (codes >= 0).
      L: the step 1 / L (default ||D||_2^2; the starting value with backtracking, default 1).
      x0: starting codes (B, m) (default zeros).
      max_iter, tol: stop when the relative proximal-gradient residual <= tol (``sparsejax.pursuit.ista``).
      mode: a mode of ``sparsejax.solve.iterate``.
      backtracking: False, True or "adaptive" (``sparsejax.pursuit.ista.fista_prox_solver``).
      restart: the gradient restart of the momentum.

    Returns:
      ``Solution``: codes X (B, m), objective F(X), status.

    Example: two signals built from atoms 0 and 2 of the identity select the same two atoms.
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.joint import bpdn_joint
      >>> S = jnp.array([[2.0, 0.1, 1.0], [1.0, -0.1, 2.0]])
      >>> sol = bpdn_joint(jnp.eye(3), S, 0.0, 0.5)
      >>> (jnp.abs(sol.codes).sum(axis=0) > 0).tolist(), bool(sol.converged)
      ([True, False, True], True)
    """
    nonneg = sign_constraint(prox, "bpdn_joint")
    atoms, S, dtype = prepare_batch(D, Y, "bpdn_joint")
    check_iteration(max_iter, tol, mode)
    check_backtracking(backtracking)
    if isinstance(lam, str):
        if lam != "auto":
            raise ValueError(f"lam must be a number >= 0, an array of them, or 'auto' (0.1 max|D^T Y|), got {lam!r}")
        lam = default_lam(atoms, S)
    lam = V.as_float_array("lam", lam)
    code_shape = (S.shape[0], atoms.shape[1])
    V.broadcastable("lam", lam, code_shape)
    V.check_nonnegative("lam", lam)
    lam = jnp.broadcast_to(V.nan_if_negative(lam.astype(dtype)), code_shape)
    mu = V.nan_if_negative(V.check_nonnegative_scalar("mu", mu).astype(dtype))
    if L is not None:
        L = V.check_nonnegative_scalar("L", L, strict=True).astype(dtype)
    elif backtracking:
        L = jnp.asarray(1.0, dtype)
    if x0 is None:
        x0 = jnp.zeros(code_shape, dtype)
    else:
        x0 = V.as_float_array("x0", x0)
        V.check_shape("x0", x0, code_shape, "(B, m): one row of codes per signal")
        x0 = x0.astype(dtype)
    return _bpdn_joint(atoms, S, lam, mu, L, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                       nonneg=nonneg, backtracking=backtracking, restart=bool(restart))


def conv_bpdn_joint(D, s, lam, mu, **kwargs) -> Solution:
    """Convolutional joint sparse coding of a C-channel signal with single-channel filters (SPORCO's
    ConvBPDNJoint): min_x 1/2 sum_c ||sum_m d_m * x_{c,m} - s_c||^2 + lam ||x||_1 + mu sum_{m,n} ||x_{:,m,n}||_2.

    ``sparsejax.pursuit.csc.cbpdn_admm`` with its joint weight ``mu`` (the module docstring there: Fourier-domain
    ADMM, rho balancing, stopping rule).

    Args:
      D: single-channel filters (M, 1, h[, w]) or a ``Conv`` of them.
      s: the signal (C, *N); each channel gets its own maps, their supports tied by the l2,1 term.
      lam: l1 weight >= 0 (scalar or broadcastable to the codes (C, M, *N)).
      mu: l2,1 weight >= 0, a scalar.
      **kwargs: the options of ``cbpdn_admm`` (``rho``, ``max_iter``, ``tol``, ``prox``, ``mask``, ...).

    Returns:
      ``Solution`` of ``cbpdn_admm``: codes (C, M, *N) (or (M, *N) for C = 1), objective with the l2,1 term.

    Example (the run is checked against SPORCO in tests/pursuit/test_joint.py; here the argument check only):
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.joint import conv_bpdn_joint
      >>> conv_bpdn_joint(jnp.ones((4, 3, 3, 3)), jnp.ones((3, 12, 12)), 0.05, 0.3)
      Traceback (most recent call last):
      ...
      ValueError: D must have single-channel filters (M, 1, ...) for the joint form ... shape (4, 3, 3, 3)
    """
    filters = D.filters if hasattr(D, "filters") else V.as_float_array("D", D)
    if filters.ndim >= 2 and filters.shape[1] != 1:
        raise ValueError(f"D must have single-channel filters (M, 1, ...) for the joint form (the channels of s "
                         f"get their own maps), got filters of shape {tuple(filters.shape)}")
    if "mesh" in kwargs:
        raise ValueError("conv_bpdn_joint does not take mesh")
    return cbpdn_admm(D, s, lam, mu=mu, **kwargs)
