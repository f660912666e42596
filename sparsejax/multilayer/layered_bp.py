"""Layered basis pursuit and projection pursuit for the ML-CSC model.

Model: y = D_1 G_1 + E, G_{i-1} = D_i G_i (``layers = (D_1, ..., D_K)``, shapes chain; ``Dense``/``Conv``).

* Layered BP (Papyan, Romano, Elad, "Convolutional neural networks analyzed via convolutional sparse coding",
  JMLR 18, 2017): G_0 = y and, layer by layer,

      G_i = argmin_G 1/2||G_{i-1} - D_i G||_2^2 + xi_i ||G||_1       (its Thm 12: xi_i = 4 eps_{i-1}),

  each Lasso solved to a tolerance by FISTA (``layered_bp``), or unfolded (``layered_bp_unfolded``):
  per layer the thresholding start G_i^0 = P_{r xi}(r D_i^T G_{i-1}) (one ISTA step from 0) then T ISTA
  steps G <- P_{r xi}(G - r D_i^T(D_i G - G_{i-1})). T = 0 is layered thresholding with the scaled layers
  r_i D_i and thresholds r_i xi_i (the LBP network of Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020).
* Projection pursuit (Sulam, Papyan, Romano, Elad, "Multilayer convolutional sparse modeling: pursuit and
  dictionary learning", IEEE TSP 66(15), 2018):

      G_K = argmin_G 1/2||y - D^{(1,K)} G||_2^2 + lam ||G||_1,   then G_i = D^{(i+1,K)} G_K,

  by FISTA with the effective dictionary applied as a ``Chain`` (never formed). Its guarantee
  (``sparsejax.theory.multilayer.projection_bound``): ||G_K^ - G_K||^2 <= 4 eps^2 / (1 - (2 k_K - 1) mu(D^{(1,K)}))
  when k_K < (1 + 1/mu)/2.

All three take one signal (batch with ``jax.vmap``; in the while-loop forms each instance stops on its
own), validate their arguments before tracing and return an ``MLSolution`` with per-layer flags.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from sparsejax import shrink
from sparsejax.multilayer._checks import (
    check_steps,
    check_y,
    code_weight,
    common_dtype,
    per_layer,
)
from sparsejax.multilayer.layered import check_finite_layers, layer_prox_grad_step, nan_if_negative
from sparsejax.multilayer.model import Chain, back_project
from sparsejax.multilayer.result import MLSolution
from sparsejax.pursuit.ista import ISTAState, fista_solver
from sparsejax.pursuit.problem import l1_objective
from sparsejax.solve import Solver, check_iteration, iterate, relative_change

__all__ = ["MLSolution", "LayeredSolution", "ProjectionSolution", "layered_bp", "layered_bp_unfolded",
           "projection_pursuit"]

LayeredSolution = MLSolution      # deprecated alias: the result of layered_bp / layered_bp_unfolded
ProjectionSolution = MLSolution   # deprecated alias: the result of projection_pursuit


def _prepare(layers, y, xis, name):
    layers = check_finite_layers(layers)
    y = check_y(layers, y)
    dtype = common_dtype(layers, y)
    return layers, y.astype(dtype), nan_if_negative(per_layer(name, xis, layers, dtype)), dtype


def _fista_lasso(D, target, lam, x0, prox) -> Solver:
    """FISTA on 1/2||target - D x||^2 + lam ||x||_1 (``prox="nonneg_soft"``: x >= 0), step 1/||D||_2^2."""
    return fista_solver(D, target, lam, D.lipschitz().astype(target.dtype), x0, prox)


# ----------------------------------------------------------------------------------------------------
# layered BP, each layer solved to tolerance
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("max_iter", "mode", "prox"))
def _layered_bp(layers, y, xis, tol, *, max_iter, mode, prox):
    prev, sols = y, []
    for D, xi in zip(layers, xis):
        x0 = jnp.zeros(tuple(D.code_shape), y.dtype)
        sol = iterate(_fista_lasso(D, prev, xi, x0, prox), max_iter=max_iter, tol=tol, mode=mode)
        sols.append(sol)
        prev = sol.codes
    return MLSolution.from_layers(sols)


def layered_bp(layers, y, xis, *, max_iter: int = 1000, tol=1e-6, mode: str = "while",
               prox="soft") -> MLSolution:
    """Layered basis pursuit: G_0 = y, G_i = argmin 1/2||G_{i-1} - D_i G||^2 + xi_i ||G||_1 (Papyan, Romano, Elad,
    "Convolutional neural networks analyzed via convolutional sparse coding", JMLR 18, 2017).

    Each layer's Lasso is solved by FISTA (step 1/||D_i||_2^2) from 0 until the relative change of the
    iterate is <= ``tol`` or ``max_iter`` steps; its result is the next layer's signal.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      xis: length-K sequence (or one value for all layers) of l1 weights xi_i >= 0, each a scalar or
        broadcastable to layer i's code shape. Theory (``sparsejax.theory.multilayer.lbp_bound``):
        xi_i = 4 eps_{i-1}.
      max_iter, tol: per-layer FISTA stopping rule.
      mode: one of ``sparsejax.solve.MODES``, passed to ``iterate`` for every layer (default "while").
      prox: "soft" (default) or "nonneg_soft" (every G_i >= 0).

    Returns:
      ``MLSolution``: codes (G_1, ..., G_K); per layer (``layer_*``, ``layers``) the FISTA flags, the layer's
      objective 1/2||G_{i-1} - D_i G_i||^2 + xi_i ||G_i||_1 and its state; overall: the steps added up,
      converged when every layer converged, the sum of the layer objectives.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
      >>> sol = sj.layered_bp(layers, jnp.array([2.0, -1.0, 0.2]), (0.5, 0.5))
      >>> [round(float(v), 4) for v in sol.codes[-1]], bool(sol.converged), sol.layer_converged.tolist()
      ([1.0, -0.0, 0.0], True, [True, True])
    """
    check_iteration(max_iter, tol, mode)
    shrink.get(prox, allowed=shrink.SIGN_PROXES)
    layers, y, xis, dtype = _prepare(layers, y, xis, "xis")
    return _layered_bp(layers, y, xis, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode, prox=prox)


# ----------------------------------------------------------------------------------------------------
# layered BP, unfolded: thresholding start + T ISTA steps per layer (differentiable)
# ----------------------------------------------------------------------------------------------------
def _unfolded_layer_solver(D, target, xi, r, P) -> Solver:
    zero = jnp.zeros(tuple(D.code_shape), target.dtype)
    G0 = layer_prox_grad_step(D, zero, target, xi, r, P)           # = P_{r xi}(r D^T target)
    return Solver(init=lambda: ISTAState(G0),
                  step=lambda s: ISTAState(layer_prox_grad_step(D, s.x, target, xi, r, P)),
                  codes=lambda s: s.x,
                  error=lambda a, b: relative_change(a.x, b.x),
                  objective=lambda s: l1_objective(D, target, s.x, xi))


@partial(jax.jit, static_argnames=("T", "prox"))
def _layered_bp_unfolded(layers, y, xis, steps, *, T, prox):
    P = shrink.get(prox)
    if steps is None:
        steps = tuple((1.0 / D.lipschitz()).astype(y.dtype) for D in layers)
    prev, sols = y, []
    for D, xi, r in zip(layers, xis, steps):
        sol = iterate(_unfolded_layer_solver(D, prev, xi, r, P), max_iter=T, tol=0.0, mode="scan")
        sols.append(sol)
        prev = sol.codes
    return MLSolution.from_layers(sols)


def layered_bp_unfolded(layers, y, xis, T: int, *, steps=None, prox="soft") -> MLSolution:
    """Unfolded layered BP (the LBP network): per layer the thresholding start, then T ISTA steps.

        G_i^0 = P_{r_i xi_i}(r_i D_i^T G_{i-1}),
        G_i^{t+1} = P_{r_i xi_i}(G_i^t - r_i D_i^T(D_i G_i^t - G_{i-1})),   t < T,   G_0 = y.

    T = 0 is layered thresholding with the layers r_i D_i and thresholds r_i xi_i (the CNN forward pass for
    r_i = 1 and P = S+); T -> infinity (soft/S+) gives ``layered_bp``. Pure and fixed-length (``lax.scan``):
    jit, vmap and reverse-mode ``jax.grad`` (w.r.t. y, xis, steps and the layers' filters) work. The network of
    Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020 (layered BP of Papyan, Romano, Elad, JMLR 2017, unfolded).

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape``.
      xis: length-K sequence (or one value) of thresholds xi_i >= 0 (scalar or per-code arrays).
      T: non-negative int, ISTA steps per layer after the start.
      steps: length-K step sizes r_i > 0 (or one value); default 1/||D_i||_2^2 (computed inside, traced).
      prox: "soft" (default), "nonneg_soft" (S+, ReLU), "hard" (iterative hard thresholding), or a callable
        ``(z, threshold) -> z``.

    Returns:
      ``MLSolution``; per layer num_steps = T, error = the last relative change, objective = that layer's Lasso
      objective, converged only if the last step left the iterate unchanged (fixed length: no early stop),
      diverged if it blew up.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
      >>> sol = sj.layered_bp_unfolded(layers, jnp.array([2.0, -1.0, 0.2]), 0.5, 0, steps=1.0, prox="nonneg_soft")
      >>> sol.codes[-1].tolist(), int(sol.num_steps)
      ([1.0, 0.0, 0.0], 0)
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 0:
        raise ValueError(f"T must be a non-negative Python int (ISTA steps per layer), got {T!r}")
    shrink.get(prox)
    layers, y, xis, dtype = _prepare(layers, y, xis, "xis")
    steps = check_steps(steps, layers, dtype)
    return _layered_bp_unfolded(layers, y, xis, steps, T=T, prox=prox)


# ----------------------------------------------------------------------------------------------------
# projection pursuit
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("max_iter", "mode", "prox"))
def _projection(layers, y, lam, tol, *, max_iter, mode, prox):
    D = layers[0] if len(layers) == 1 else Chain(layers)
    x0 = jnp.zeros(tuple(D.code_shape), y.dtype)
    sol = iterate(_fista_lasso(D, y, lam, x0, prox), max_iter=max_iter, tol=tol, mode=mode)
    return MLSolution.from_solution(back_project(layers, sol.codes), sol)


def projection_pursuit(layers, y, lam, *, max_iter: int = 1000, tol=1e-6, mode: str = "while",
                       prox="soft") -> MLSolution:
    """Projection pursuit: the deepest code by FISTA on the effective dictionary, then the intermediate layers by
    back-projection (Sulam, Papyan, Romano, Elad, "Multilayer convolutional sparse modeling: pursuit and
    dictionary learning", IEEE TSP 66(15), 2018).

        G_K = argmin_G 1/2||y - D_1 ... D_K G||_2^2 + lam ||G||_1,    G_i = D_{i+1} ... D_K G_K.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      lam: l1 weight >= 0, scalar or broadcastable to the deepest code shape.
      max_iter, tol: FISTA stopping rule (relative change of G_K).
      mode: one of ``sparsejax.solve.MODES``, passed to ``iterate`` (default "while").
      prox: "soft" (default) or "nonneg_soft" (G_K >= 0; the back-projected layers are not constrained).

    Returns:
      ``MLSolution``: codes (G_1, ..., G_K); the flags, objective 1/2||y - D^{(1,K)} G_K||^2 + lam ||G_K||_1 and
      FISTA state of the one solve (every layer repeats its flags).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(2.0 * jnp.eye(2)))
      >>> sol = sj.projection_pursuit(layers, jnp.array([3.0, 0.5]), 1.0)
      >>> [round(float(v), 3) for v in sol.codes[-1]], [round(float(v), 3) for v in sol.codes[0]]
      ([1.25, 0.0], [2.5, 0.0])
    """
    check_iteration(max_iter, tol, mode)
    shrink.get(prox, allowed=shrink.SIGN_PROXES)
    layers = check_finite_layers(layers)
    y = check_y(layers, y)
    dtype = common_dtype(layers, y)
    lam, = nan_if_negative((code_weight("lam", lam, layers[-1], dtype, "the deepest layer's codes"),))
    return _projection(layers, y.astype(dtype), lam, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                       prox=prox)
