"""Thresholding pursuit: one shrinkage of the correlations D^T y.

    a = P_lam(D^T y)                         P in {hard, soft, nonneg_soft} (``sparsejax.shrink``)
    a = (D^T y) restricted to the k largest |D^T y|      (with ``k``; ``debias``: LS on that support)

The simplest pursuit and the first layer of a CNN (layered thresholding, Papyan, Romano & Elad, "Convolutional
neural networks analyzed via convolutional sparse coding", JMLR 2017, section 4). For unit-norm atoms it
recovers the support of y = D a + v when |a_min| - (2k - 1) mu |a_max| > 2 eps (Elad, *Sparse and
Redundant Representations*, Springer 2010, theorem 5.1).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax.pursuit.problem import prepare_problem, resolve_prox
from sparsejax.solve import Solution, stop_status

__all__ = ["thresholding", "one_step_solution"]


@partial(jax.jit, static_argnames=("k", "prox", "debias"))
def _thresholding(op, y, lam, *, k, prox, debias):
    dtype = y.dtype
    c = op.adjoint(y)
    if k is None:
        a = resolve_prox(prox)(c, lam)
    else:
        score = c if prox == "nonneg_soft" else jnp.abs(c)
        flat = score.reshape(-1)
        _, idx = lax.top_k(flat, k)
        if debias:
            atoms = op.atoms
            DS = atoms[:, idx]
            coef, *_ = jnp.linalg.lstsq(DS, y)
            a = jnp.zeros(flat.shape, dtype).at[idx].set(coef).reshape(c.shape)
        else:
            mask = jnp.zeros(flat.shape, bool).at[idx].set(True).reshape(c.shape)
            a = jnp.where(mask, c, jnp.zeros_like(c))
        if prox == "nonneg_soft" and not debias:
            a = jnp.maximum(a, 0)
    r = y - op.apply(a)
    rr = jnp.sum(r * r)
    return one_step_solution(a, rr, V.all_finite(op, y, lam))


def one_step_solution(codes, residual_sq, inputs_ok) -> Solution:
    """The ``Solution`` of a one-step pursuit (thresholding) from its codes, ||y - D a||^2 and whether its
    problem was valid (dictionary, signal and threshold finite, threshold >= 0; a traced negative threshold is NaN
    by then, ``_validate.nan_if_negative``).

    status NONFINITE_INPUT when ``inputs_ok`` is False; DIVERGED when the codes or the residual overflow (not
    finite); else CONVERGED. ``converged`` only for CONVERGED; ``diverged`` when the output is not finite.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.solve import status_name
      >>> sol = one_step_solution(jnp.array([1e30]), jnp.array(jnp.inf), jnp.array(True))
      >>> bool(sol.converged), bool(sol.diverged), status_name(sol.status)
      (False, True, 'diverged')
    """
    output_ok = jnp.all(jnp.isfinite(codes)) & jnp.isfinite(residual_sq)
    converged = output_ok & inputs_ok
    return Solution(codes=codes, num_steps=jnp.asarray(1, jnp.int32), converged=converged, diverged=~output_ok,
                    objective=0.5 * residual_sq, error=jnp.sqrt(residual_sq),
                    status=stop_status(converged, ~output_ok, ~inputs_ok))


def thresholding(D, y, *, lam=None, k: int | None = None, prox="hard", debias: bool = False) -> Solution:
    """Thresholding pursuit for one signal (batch with ``jax.vmap``).

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      y: the signal, shape ``D.signal_shape``.
      lam: threshold (>= 0, scalar or broadcastable to the codes; traced): a = P_lam(D^T y).
      k: instead of ``lam``, keep the k largest |D^T y| (static Python int; ties to the lowest index).
        With ``prox="nonneg_soft"`` the k largest D^T y are kept and negative values zeroed.
      prox: "hard" (z 1{|z| > lam}), "soft" (sign(z) max(|z| - lam, 0)), "nonneg_soft" (max(z - lam, 0))
        or a callable ``(z, lam) -> z``; used with ``lam``.
      debias: with ``k`` (dense ``D`` only): replace the kept values by the least-squares fit
        argmin ||y - D_S a_S||_2 on the kept support S.

    Returns:
      ``Solution``: codes, num_steps = 1, objective = ||y - D a||^2 / 2, error = ||y - D a||_2. Never a silent
      success: under ``jit`` (where values cannot be checked before tracing) a non-finite signal, dictionary or
      ``lam``, or a negative ``lam``, gives status ``NONFINITE_INPUT``; codes or a residual that overflow give
      ``DIVERGED`` (``diverged`` True); ``converged`` only otherwise.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D, y = jnp.eye(3), jnp.array([2.0, -1.0, 0.1])
      >>> sj.thresholding(D, y, lam=0.5, prox="soft").codes.tolist()
      [1.5, -0.5, 0.0]
      >>> sj.thresholding(D, y, k=1).codes.tolist()
      [2.0, 0.0, 0.0]
      >>> sj.thresholding(D, y, lam=0.5, prox="nonneg_soft").codes.tolist()
      [1.5, 0.0, 0.0]
    """
    if (lam is None) == (k is None):
        raise ValueError("give exactly one of lam (a threshold) or k (number of atoms kept)")
    resolve_prox(prox)
    op, y, lam, dtype = prepare_problem(D, y, lam)
    if k is not None:
        size = 1
        for s in op.code_shape:
            size *= s
        k = V.check_positive_int("k", k, upper=size, upper_name="number of atoms")
        if debias:
            if not hasattr(op, "atoms"):
                raise TypeError("debias=True needs a dense dictionary (an (n, m) array or Dense)")
            n = op.atoms.shape[0]
            if k > n:
                raise ValueError(f"k must be <= n = {n} with debias=True (least squares on k atoms), got {k}")
        if callable(prox):
            prox = "hard"
    elif debias:
        raise ValueError("debias=True needs k (the support of the k largest correlations)")
    return _thresholding(op, y, lam, k=k, prox=prox, debias=bool(debias))
