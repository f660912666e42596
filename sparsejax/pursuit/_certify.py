"""Certificates of Lasso optimality used by the batched Lasso: the duality gap and the KKT test.

For P(a) = 1/2 ||y - D a||^2 + lam ||a||_1 (non-negative codes: + indicator(a >= 0)) and r = y - D a, the dual point
theta = r / s with s = max(1, ||D^T r||_inf / lam) (non-negative: max_j (D^T r)_j instead of the absolute value) is
feasible, so the gap P(a) - D(theta) bounds P(a) - P* from above (Kim, Koh, Lustig, Boyd & Gorinevsky, "An
interior-point method for large-scale l1-regularized least squares", IEEE J. Sel. Topics Signal Process. 2007,
section II.B). It is computed in the cancellation-free form

    gap = ||r||^2 (1 - 1/s)^2 / 2 + lam ||a||_1 - (D^T r)^T a / s.

The KKT test: (D^T r)_j = lam sign(a_j) on the support and |(D^T r)_j| <= lam off it (Osborne, Presnell & Turlach,
"On the LASSO and its dual", J. Comput. Graph. Stat. 2000, section 2).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["dual_gap", "gap_batch", "kkt_ok"]


def dual_gap(g, r, a, lam, nonneg):
    """(gap, objective) of one signal from its residual r = y - D a and g = D^T r.

    Example:
      >>> import jax.numpy as jnp
      >>> gap, obj = dual_gap(jnp.array([0.5]), jnp.array([0.5]), jnp.array([0.5]), 0.5, False)
      >>> float(gap), float(obj)
      (0.0, 0.375)
    """
    dtype = r.dtype
    gmax = jnp.max(g) if nonneg else jnp.max(jnp.abs(g))
    s = jnp.maximum(1.0, gmax / jnp.maximum(lam, jnp.finfo(dtype).tiny))
    rr = jnp.sum(r * r)
    l1 = jnp.sum(jnp.abs(a))
    gap = 0.5 * rr * (1.0 - 1.0 / s) ** 2 + lam * l1 - jnp.sum(g * a) / s
    obj = 0.5 * rr + lam * l1
    return jnp.maximum(gap, 0.0), obj


def gap_batch(atoms, Y, A, lam, nonneg):
    """(gap, objective), each (B,), for the codes A (B, m) of the signals Y (B, n).

    Example:
      >>> import jax.numpy as jnp
      >>> gap, obj = gap_batch(jnp.eye(2), jnp.array([[2.0, 0.1]]), jnp.array([[1.5, 0.0]]), 0.5, False)
      >>> round(float(gap[0]), 6)
      0.0
    """
    R = Y - A @ atoms.T
    Gr = R @ atoms
    return jax.vmap(lambda g, r, a: dual_gap(g, r, a, lam, nonneg))(Gr, R, A)


def kkt_ok(Gr, A, lam, nonneg, tol_abs):
    """Per signal: the codes A (B, m) meet the Lasso KKT conditions to ``tol_abs``, given Gr = D^T (y - D a).

    Example:
      >>> import jax.numpy as jnp
      >>> kkt_ok(jnp.array([[0.5, 0.2]]), jnp.array([[1.0, 0.0]]), 0.5, False, 1e-6).tolist()
      [True]
    """
    on = A != 0
    if nonneg:
        off = jnp.where(on, -jnp.inf, Gr)
        onv = jnp.where(on, jnp.abs(Gr - lam), 0.0)
        sgn = jnp.all(A >= 0, axis=1)
    else:
        off = jnp.where(on, -jnp.inf, jnp.abs(Gr))
        onv = jnp.where(on, jnp.abs(Gr - lam * jnp.sign(A)), 0.0)
        sgn = True
    return (jnp.max(off, axis=1) <= lam + tol_abs) & (jnp.max(onv, axis=1) <= tol_abs) & sgn
