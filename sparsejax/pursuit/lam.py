"""The default l1 weight of the Lasso: lam = 0.1 max |D^T y| (SPORCO's default for BPDN, its ``lmbda=None``).

lam_max = max |D^T y| is the smallest lam whose Lasso solution is 0 (the optimality condition |D^T (y - D a)| <= lam
at a = 0), so lam = 0.1 lam_max keeps some atoms for any signal and scales with y and D. The pursuits that take a
``lam`` (``ista``, ``fista``, ``bpdn_admm``, ``elastic_net``, ``bpdn_joint``) accept ``lam="auto"`` for it, computed
per signal (per batch for ``bpdn_joint``, whose signals share a support), traced (no recompilation per signal).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax.operators import as_operator
from sparsejax.pursuit.problem import prepare_problem

__all__ = ["default_lam", "resolve_lam", "AUTO_FRACTION"]

AUTO_FRACTION = 0.1   # SPORCO's 0.1 max |D^T s|


def _lam_of(op, y, fraction):
    return fraction * jnp.max(jnp.abs(op.adjoint(y)))


def default_lam(D, y, fraction=AUTO_FRACTION) -> jax.Array:
    """lam = fraction max |D^T y| (default fraction 0.1, SPORCO's BPDN default).

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      y: one signal of shape ``D.signal_shape``, or a batch of signals (B, *signal_shape): then the max over the
        batch (SPORCO's rule over all the columns of S).
      fraction: the fraction of lam_max = max |D^T y| (above which the Lasso solution is 0), > 0.

    Returns:
      the scalar lam, of the problem's dtype (0 for y = 0).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.lam import default_lam
      >>> round(float(default_lam(jnp.eye(2), jnp.array([3.0, -5.0]))), 6)
      0.5
    """
    op = as_operator(D)
    sig = tuple(op.signal_shape)
    y = jnp.asarray(y)
    if not (isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and fraction > 0):
        raise ValueError(f"fraction must be a number > 0, got {fraction!r}")
    if y.ndim == len(sig) + 1 and tuple(y.shape[1:]) == sig:
        op, _, _, dtype = prepare_problem(op, y[0], None)
        y = V.as_float_array("y", y)
        V.check_finite("y", y)
        return jnp.max(jax.vmap(lambda s: _lam_of(op, s.astype(dtype), fraction))(y))
    op, y, _, dtype = prepare_problem(op, y, None)
    return _lam_of(op, y, fraction).astype(dtype)


def resolve_lam(D, y, lam):
    """``lam`` itself, or ``default_lam(D, y)`` for ``lam="auto"`` (any other string: ValueError naming lam).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.pursuit.lam import resolve_lam
      >>> round(float(resolve_lam(jnp.eye(2), jnp.array([3.0, -5.0]), "auto")), 6), resolve_lam(None, None, 0.2)
      (0.5, 0.2)
    """
    if isinstance(lam, str):
        if lam != "auto":
            raise ValueError(f"lam must be a number >= 0, an array of them, or 'auto' (0.1 max|D^T y|), got {lam!r}")
        return default_lam(D, y)
    return lam
