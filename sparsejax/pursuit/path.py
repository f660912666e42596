"""Regularisation paths of the Lasso, batched over signals: the exact LARS knots (``lars_path``) and the solutions on a
grid of lam (``lasso_path``).

For one signal y the Lasso solution a(lam) = argmin_a 1/2 ||y - D a||^2 + lam ||a||_1 is piecewise linear in lam
(Osborne, Presnell & Turlach, "A new approach to variable selection in least squares problems", IMA J. Numer. Anal.
2000; Efron, Hastie, Johnstone & Tibshirani, "Least angle regression", Ann. Statist. 2004): between two knots the
active set S and the signs s are fixed and

    a_S(lam) = G_SS^{-1} (D_S^T y - lam s),

and a knot is where an atom joins (|d_j^T r| reaches lam) or a coefficient crosses zero (the atom drops).
``lars_path`` records the knots of every signal with the batched homotopy of ``lasso_batch`` (``_lars``), with the
codes at each knot recomputed from the formula above (no drift along the path). ``lasso_path`` solves the batch on a
decreasing grid of lam by ``lasso_batch``, each solve warm-started from the previous one (continuation) and certified
by its duality gap.

Scaling: scikit-learn's ``lars_path`` / ``lasso_path`` minimise 1/(2 N) ||y - X w||^2 + alpha ||w||_1 with N = n
(signal length), so lam = N alpha (``sparsejax.interop.lam_from_sklearn_alpha``); their X is our D and their
``coefs`` (m, knots) is our ``coefs[b].T``.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sparsejax import _validate as V
from sparsejax.pursuit._batch_omp import scatter_slots
from sparsejax.pursuit._lars import inverse_gram_mv, lars_init, lars_step
from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.omp import check_gram_matches
from sparsejax.pursuit.problem import prepare_batch, sign_constraint
from sparsejax.solve import stop_status

__all__ = ["lars_path", "LarsPath", "lasso_path", "LassoPath", "lam_grid"]


class LarsPath(NamedTuple):
    """Knots of the Lasso path of every signal (leading axis B; one signal: no leading axis).

    Attributes:
      lams: (B, S + 1) lam at each knot, decreasing from lam_max = ||D^T y||_inf (knot 0) to ``lam_min``; after the
        last knot (``num_knots``) the last value repeats.
      coefs: (B, S + 1, m) the Lasso solution at each knot (zero at knot 0; repeats after the last knot).
      num_knots: (B,) knots recorded (the path has num_knots - 1 linear pieces).
      converged: (B,) the path reached ``lam_min``.
      dependent: (B,) the path stopped because a joining atom was (numerically) linearly dependent on the active set
        or the active set outgrew ``max_active``.
      status: (B,) ``Status``: converged, or max steps (more knots than ``max_steps``, or ``dependent``).
    """

    lams: jax.Array
    coefs: jax.Array
    num_knots: jax.Array
    converged: jax.Array
    dependent: jax.Array
    status: jax.Array


@partial(jax.jit, static_argnames=("nonneg", "K", "max_steps"))
def _lars_path(atoms, G, Y, lam_min, *, nonneg, K, max_steps):
    C0 = Y @ atoms
    m = atoms.shape[1]
    st = lars_init(C0, lam_min, K, nonneg)
    lam0 = jnp.max(C0, axis=1) if nonneg else jnp.max(jnp.abs(C0), axis=1)
    lam0 = jnp.maximum(lam0, lam_min)

    def knot(st):
        used = st.idx >= 0
        safe = jnp.maximum(st.idx, 0)
        rhs = jnp.where(used, jnp.take_along_axis(C0, safe, axis=1) - st.lam_c[:, None] * st.s, 0.0)
        x = jnp.where(used, inverse_gram_mv(st.U, rhs), 0.0)
        # a coefficient that reaches zero at this knot (its drop is pending) is exactly zero there
        x = jnp.where(jnp.arange(K)[None, :] == st.drop[:, None], 0.0, x)
        return scatter_slots(st.idx, x, m)

    def body(st, _):
        st = lars_step(st, G, lam_min, nonneg=nonneg, ns=K, max_steps=max_steps)
        return st, (st.lam_c, knot(st))

    st, (lams, coefs) = lax.scan(body, st, None, length=max_steps)
    lams = jnp.concatenate([lam0[:, None], lams.T], axis=1)
    coefs = jnp.concatenate([jnp.zeros_like(C0)[:, None], jnp.swapaxes(coefs, 0, 1)], axis=1)
    finite = jnp.all(jnp.isfinite(coefs), axis=(1, 2)) & jnp.all(jnp.isfinite(lams), axis=1)
    converged = st.done & ~st.bad & finite
    return LarsPath(lams, coefs, st.nsteps + 1, converged, st.bad,
                    stop_status(converged, ~finite, ~jnp.all(jnp.isfinite(Y), axis=1)))


def lars_path(D, Y, *, lam_min=0.0, max_steps: int | None = None, max_active: int | None = None,
              prox="soft", gram=None) -> LarsPath:
    """The exact Lasso path of every signal by the LARS-Lasso homotopy: the knots (lam, a(lam)) from
    lam_max = ||D^T y||_inf down to ``lam_min`` (scikit-learn's ``lars_path(..., method="lasso")``, batched).

    Between knots a_S(lam) = G_SS^{-1} (D_S^T y - lam s) (module docstring); the solution at any lam in
    [lam_min, lam_max] is the linear interpolation of the two knots around it. All signals advance in lockstep,
    one knot per step, as array operations over the batch (``_lars.lars_step``).

    Args:
      D: (n, m) atoms or ``sparsejax.Dense``.
      Y: (B, n) signals (rows), or one signal (n,).
      lam_min: where the path stops (scalar >= 0; lam = n alpha for scikit-learn's ``alpha_min``). At 0 with
        m > n the path ends where the active set spans the signal space (a dependent atom: ``dependent``).
      max_steps: knots after the first, static (default 4 max_active).
      max_active: static slot count of the active set (default min(n, m)).
      prox: "soft" (signed codes) or "nonneg_soft" (the non-negative Lasso path, scikit-learn's ``positive=True``).
      gram: optional precomputed D^T D, checked against D before compilation.

    Returns:
      ``LarsPath`` (lams, coefs, num_knots, converged, dependent, status).

    Example:
      >>> import jax.numpy as jnp
      >>> p = lars_path(jnp.eye(2), jnp.array([3.0, -1.0]))
      >>> int(p.num_knots), p.lams[:3].tolist(), p.coefs[:3].tolist()
      (3, [3.0, 1.0, 0.0], [[0.0, 0.0], [2.0, 0.0], [3.0, -1.0]])
    """
    nonneg = sign_constraint(prox, "lars_path")
    single = np.ndim(Y) == 1
    atoms, Y, dtype = prepare_batch(D, Y[None] if single else Y, "lars_path")
    n, m = atoms.shape
    lam_min = V.check_nonnegative_scalar("lam_min", lam_min)
    K = min(n, m) if max_active is None else V.check_positive_int(
        "max_active", max_active, upper=m, upper_name="m, the number of atoms")
    max_steps = 4 * K if max_steps is None else V.check_positive_int("max_steps", max_steps)
    G = _gram(gram, atoms, dtype)
    p = _lars_path(atoms, G, Y, lam_min.astype(dtype), nonneg=nonneg, K=K, max_steps=max_steps)
    return jax.tree_util.tree_map(lambda x: x[0], p) if single else p


def _gram(gram, atoms, dtype):
    if gram is None:
        return atoms.T @ atoms
    gram = V.as_float_array("gram", gram)
    m = atoms.shape[1]
    V.check_shape("gram", gram, (m, m), "G = D^T D, atoms x atoms")
    V.check_finite("gram", gram)
    check_gram_matches(gram, atoms)
    return gram.astype(dtype)


def lam_grid(D, Y, n_lams: int = 100, eps: float = 1e-3):
    """The default grid of ``lasso_path``: ``n_lams`` values from lam_max = max_b ||D^T y_b||_inf (all codes zero)
    down to eps lam_max, evenly spaced in log scale (scikit-learn's alphas grid, times N).

    Example:
      >>> import jax.numpy as jnp
      >>> lam_grid(jnp.eye(2), jnp.array([[4.0, 1.0]]), n_lams=3, eps=0.25).tolist()
      [4.0, 2.0, 1.0]
    """
    n_lams = V.check_positive_int("n_lams", n_lams)
    if not (isinstance(eps, (int, float, np.floating)) and 0 < eps <= 1):
        raise ValueError(f"eps must be a number in (0, 1] (lam_min / lam_max), got {eps!r}")
    atoms = np.asarray(D.atoms if hasattr(D, "atoms") else D)
    lam_max = float(np.max(np.abs(np.asarray(Y) @ atoms)))
    return np.geomspace(lam_max, lam_max * eps, n_lams)


class LassoPath(NamedTuple):
    """Solutions of the batch on a grid of lam (leading axis: the grid).

    Attributes:
      lams: (L,) the grid, decreasing.
      codes: (L, B, m) the Lasso codes of every signal at every lam.
      converged: (L, B) certified by the duality gap (``lasso_batch``'s ``converged``).
      gap: (L, B) duality gaps.
      num_steps: (L, B) the steps each solve took (from the previous lam's codes, after the first).
    """

    lams: np.ndarray
    codes: jax.Array
    converged: jax.Array
    gap: jax.Array
    num_steps: jax.Array


def lasso_path(D, Y, lams=None, *, n_lams: int = 100, eps: float = 1e-3, tol=1e-6, prox="soft", gram=None,
               **options) -> LassoPath:
    """The Lasso solutions of every signal on a decreasing grid of lam, by continuation: the solve at each lam
    (``lasso_batch``, certified by its duality gap) starts from the codes of the previous one (``x0``), so each solve
    is a few Newton steps (scikit-learn's ``lasso_path``, batched; lam = N alpha).

    Args:
      D: (n, m) atoms or ``sparsejax.Dense``.
      Y: (B, n) signals (rows).
      lams: the grid (1-D, values >= 0; sorted decreasing here). Default ``lam_grid(D, Y, n_lams, eps)``.
      n_lams, eps: the default grid (``n_lams`` values from lam_max down to eps lam_max).
      tol: relative duality gap of every solve (``lasso_batch``).
      prox: "soft" or "nonneg_soft" (non-negative codes, scikit-learn's ``positive=True``).
      gram: optional precomputed D^T D (computed once otherwise), checked against D.
      **options: further ``lasso_batch`` options (``max_active``, ``fallback_iter``, ...).

    Returns:
      ``LassoPath`` (lams, codes (L, B, m), converged, gap, num_steps).

    Example:
      >>> import jax.numpy as jnp
      >>> p = lasso_path(jnp.eye(2), jnp.array([[3.0, -1.0]]), [2.0, 0.5])
      >>> p.codes[:, 0].tolist(), p.converged.tolist()
      ([[1.0, 0.0], [2.5, -0.5]], [[True], [True]])
    """
    atoms, Y, dtype = prepare_batch(D, Y, "lasso_path")
    if "x0" in options:
        raise ValueError("lasso_path warm-starts each solve from the previous lam itself; x0 is not an option here")
    if lams is None:
        lams = lam_grid(atoms, Y, n_lams, eps)
    lams = np.asarray(lams, np.float64)
    if lams.ndim != 1 or lams.size == 0:
        raise ValueError(f"lams must be a non-empty 1-D sequence of lam values, got shape {lams.shape}")
    if not np.all(np.isfinite(lams)) or np.any(lams < 0):
        raise ValueError("lams must be finite and >= 0")
    lams = np.sort(lams)[::-1]
    G = _gram(gram, atoms, dtype)
    codes, conv, gap, steps = [], [], [], []
    x0 = None
    for lam in lams:
        sol = lasso_batch(atoms, Y, float(lam), tol=tol, prox=prox, gram=G, x0=x0, **options)
        x0 = sol.codes
        codes.append(sol.codes)
        conv.append(sol.converged)
        gap.append(sol.state.gap)
        steps.append(sol.num_steps)
    return LassoPath(lams, jnp.stack(codes), jnp.stack(conv), jnp.stack(gap), jnp.stack(steps))
