"""Certificates of Lasso optimality used by the batched Lasso: the duality gap and the KKT test.

For P(a) = 1/2 ||y - D a||^2 + lam ||a||_1 (non-negative codes: + indicator(a >= 0)) and r = y - D a, the dual point
theta = r / s with s = max(1, ||D^T r||_inf / lam) (non-negative: max_j (D^T r)_j instead of the absolute value) is
feasible, so the gap P(a) - D(theta) bounds P(a) - P* from above (Kim, Koh, Lustig, Boyd & Gorinevsky, "An
interior-point method for large-scale l1-regularized least squares", IEEE J. Sel. Topics Signal Process. 2007,
section II.B). It is computed in the cancellation-free form

    gap = ||r||^2 (1 - 1/s)^2 / 2 + lam ||a||_1 - (D^T r)^T a / s.

The KKT test: (D^T r)_j = lam sign(a_j) on the support and |(D^T r)_j| <= lam off it (Osborne, Presnell & Turlach,
"On the LASSO and its dual", J. Comput. Graph. Stat. 2000, section 2).

Rounding. In floating point the entries of g = D^T r carry an error of about

    g_tol = 4 eps max_j ||d_j|| (||y|| + max_j ||d_j|| ||a||_1)          (``rounding_level``),

so the dual scaling uses s = max(1, ||g||_inf / (lam + g_tol)) (an exact least-squares fit at lam = 0 has
g = rounding, not 0), and the gap itself is only known to about g_tol ||a||_1 (its terms lam ||a||_1 and g^T a cancel
at the solution). ``relative_gap`` therefore measures (gap - g_tol ||a||_1)^+ / P(a): 0 for codes that are optimal to
the rounding of the data, whatever the scale of y and lam (lam = 0 and P* = 0 included), and a relative accuracy above
that level.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["dual_gap", "gap_batch", "kkt_ok", "rounding_level", "relative_gap", "certify_batch"]


def rounding_level(ynorm, a_l1, dmax, dtype):
    """The rounding level g_tol of the entries of D^T (y - D a) (module docstring), from ||y||, ||a||_1 and the
    largest atom norm.

    Example:
      >>> import jax.numpy as jnp
      >>> float(rounding_level(1.0, 0.0, 1.0, jnp.float32)) == 4 * float(jnp.finfo(jnp.float32).eps)
      True
    """
    return 4 * jnp.finfo(dtype).eps * dmax * (ynorm + dmax * a_l1)


def dual_gap(g, r, a, lam, nonneg, g_tol=0.0):
    """(gap, objective) of one signal from its residual r = y - D a and g = D^T r; the dual scaling tolerates an
    error ``g_tol`` in g (``rounding_level``).

    Example:
      >>> import jax.numpy as jnp
      >>> gap, obj = dual_gap(jnp.array([0.5]), jnp.array([0.5]), jnp.array([0.5]), 0.5, False)
      >>> float(gap), float(obj)
      (0.0, 0.375)
    """
    dtype = r.dtype
    gmax = jnp.max(g) if nonneg else jnp.max(jnp.abs(g))
    s = jnp.maximum(1.0, gmax / jnp.maximum(lam + g_tol, jnp.finfo(dtype).tiny))
    rr = jnp.sum(r * r)
    l1 = jnp.sum(jnp.abs(a))
    gap = 0.5 * rr * (1.0 - 1.0 / s) ** 2 + lam * l1 - jnp.sum(g * a) / s
    obj = 0.5 * rr + lam * l1
    return jnp.maximum(gap, 0.0), obj


def relative_gap(gap, obj, floor):
    """The certified relative accuracy (gap - floor)^+ / P(a), ``floor`` = g_tol ||a||_1 the gap's rounding level
    (0 when the gap is at rounding level, +inf when P(a) = 0 and the gap is above it).

    Example:
      >>> import jax.numpy as jnp
      >>> relative_gap(jnp.array([1e-3, 1e-9]), jnp.array([1.0, 0.0]), jnp.array([1e-6, 1e-8])).tolist()
      [0.000999..., 0.0]
    """
    excess = jnp.maximum(gap - floor, 0.0)
    return jnp.where(excess > 0, excess / jnp.maximum(obj, jnp.finfo(jnp.result_type(obj)).tiny), 0.0)


def certify_batch(atoms, Y, A, R, Gr, lam, nonneg):
    """Gap, objective, g_tol and relative gap (each (B,)) of the codes A (B, m), with residuals R = Y - A D^T and
    correlations Gr = R D.

    Example:
      >>> import jax.numpy as jnp
      >>> Y, A = jnp.array([[2.0, 0.1]]), jnp.array([[1.5, 0.0]])
      >>> R = Y - A
      >>> gap, obj, g_tol, rel = certify_batch(jnp.eye(2), Y, A, R, R, 0.5, False)
      >>> float(rel[0])
      0.0
    """
    dmax = jnp.sqrt(jnp.max(jnp.sum(atoms * atoms, axis=0)))
    l1 = jnp.sum(jnp.abs(A), axis=1)
    g_tol = rounding_level(jnp.sqrt(jnp.sum(Y * Y, axis=1)), l1, dmax, Y.dtype)
    gap, obj = jax.vmap(lambda g, r, a, t: dual_gap(g, r, a, lam, nonneg, t))(Gr, R, A, g_tol)
    return gap, obj, g_tol, relative_gap(gap, obj, g_tol * l1)


def gap_batch(atoms, Y, A, lam, nonneg):
    """(gap, objective, g_tol, relative gap), each (B,), for the codes A (B, m) of the signals Y (B, n).

    Example:
      >>> import jax.numpy as jnp
      >>> gap, obj, _, rel = gap_batch(jnp.eye(2), jnp.array([[2.0, 0.1]]), jnp.array([[1.5, 0.0]]), 0.5, False)
      >>> round(float(gap[0]), 6), float(rel[0])
      (0.0, 0.0)
    """
    R = Y - A @ atoms.T
    return certify_batch(atoms, Y, A, R, R @ atoms, lam, nonneg)


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
