"""Layered basis pursuit (REFERENCE A6) and projection pursuit (A7) for the ML-CSC model.

Model: y = D_1 G_1 + E, G_{i-1} = D_i G_i (``layers = (D_1, ..., D_K)``, shapes chain; ``Dense``/``Conv``).

* Layered BP (Papyan, Romano, Elad, JMLR 2017): G_0 = y and, layer by layer,

      G_i = argmin_G 1/2||G_{i-1} - D_i G||_2^2 + xi_i ||G||_1       (theory, T6: xi_i = 4 eps_{i-1}),

  each Lasso solved to a tolerance by FISTA (``layered_bp``), or unfolded (``layered_bp_unfolded``):
  per layer the thresholding start G_i^0 = P_{r xi}(r D_i^T G_{i-1}) (one ISTA step from 0) then T ISTA
  steps G <- P_{r xi}(G - r D_i^T(D_i G - G_{i-1})). T = 0 is layered thresholding with the scaled layers
  r_i D_i and thresholds r_i xi_i (the LBP network of the unfolded-networks issue).
* Projection pursuit (Sulam, Papyan, Romano, Elad, IEEE TSP 2018):

      G_K = argmin_G 1/2||y - D^{(1,K)} G||_2^2 + lam ||G||_1,   then G_i = D^{(i+1,K)} G_K,

  by FISTA with the effective dictionary applied as a ``Chain`` (never formed). Guarantee (T7, verify):
  ||G_K^ - G_K||^2 <= 4 eps^2 / (1 - (2 k_K - 1) mu(D^{(1,K)})) when k_K < (1 + 1/mu)/2.

All three take one signal (batch with ``jax.vmap``; in the while-loop forms each instance stops on its
own), validate their arguments before tracing and report convergence per layer (``Solution`` fields).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.multilayer._checks import (
    check_layers,
    check_steps,
    check_y,
    common_dtype,
    per_layer,
)
from sparsejax.multilayer.layered import layer_prox_grad_step
from sparsejax.multilayer.model import Chain, back_project
from sparsejax.pursuit.ista import ISTAState, fista_solver
from sparsejax.pursuit.problem import objective_l1
from sparsejax.solve import Solution, Solver, iterate, relative_change

__all__ = ["LayeredSolution", "ProjectionSolution", "layered_bp", "layered_bp_unfolded",
           "projection_pursuit"]


class LayeredSolution(NamedTuple):
    """Result of a layered pursuit.

    Attributes:
      codes: (G_1, ..., G_K).
      layers: one ``Solution`` per layer (num_steps, converged, diverged, objective = that layer's Lasso
        objective 1/2||G_{i-1} - D_i G_i||^2 + xi_i ||G_i||_1, error, state).
    """

    codes: Tuple[jax.Array, ...]
    layers: Tuple[Solution, ...]

    @property
    def converged(self) -> jax.Array:
        """True when every layer converged."""
        return jnp.all(jnp.stack([s.converged for s in self.layers]), axis=0)

    @property
    def diverged(self) -> jax.Array:
        """True when some layer diverged."""
        return jnp.any(jnp.stack([s.diverged for s in self.layers]), axis=0)


class ProjectionSolution(NamedTuple):
    """Result of projection pursuit: codes = (D^{(2,K)} G_K, ..., D_K G_K, G_K); solution = the FISTA
    ``Solution`` of the deepest layer (on the effective dictionary D^{(1,K)})."""

    codes: Tuple[jax.Array, ...]
    solution: Solution

    converged = property(lambda self: self.solution.converged)
    diverged = property(lambda self: self.solution.diverged)


# ----------------------------------------------------------------------------------------------------
# validation (before tracing)
# ----------------------------------------------------------------------------------------------------
def _check_iter(max_iter, tol):
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative Python int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)


def _prepare(layers, y, xis, name):
    layers = check_layers(layers)
    y = check_y(layers, y)
    dtype = common_dtype(layers, y)
    return layers, y.astype(dtype), per_layer(name, xis, layers, dtype), dtype


# ----------------------------------------------------------------------------------------------------
# layered BP, each layer solved to tolerance (A6)
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("max_iter", "nonneg"))
def _layered_bp(layers, y, xis, tol, *, max_iter, nonneg):
    prev, codes, sols = y, [], []
    for D, xi in zip(layers, xis):
        x0 = jnp.zeros(tuple(D.code_shape), y.dtype)
        solver = fista_solver(D, prev, xi, D.lipschitz().astype(y.dtype), x0, nonneg)
        sol = iterate(solver, max_iter=max_iter, tol=tol, mode="while")
        codes.append(sol.codes)
        sols.append(sol)
        prev = sol.codes
    return LayeredSolution(tuple(codes), tuple(sols))


def layered_bp(layers, y, xis, *, max_iter: int = 1000, tol=1e-6, nonneg: bool = False) -> LayeredSolution:
    """Layered basis pursuit (REFERENCE A6): G_0 = y, G_i = argmin 1/2||G_{i-1} - D_i G||^2 + xi_i ||G||_1.

    Each layer's Lasso is solved by FISTA (step 1/||D_i||_2^2) from 0 until the relative change of the
    iterate is <= ``tol`` or ``max_iter`` steps; its result is the next layer's signal.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      xis: length-K sequence (or one value for all layers) of l1 weights xi_i >= 0, each a scalar or
        broadcastable to layer i's code shape. Theory (T6): xi_i = 4 eps_{i-1}.
      max_iter, tol: per-layer FISTA stopping rule.
      nonneg: constrain every G_i >= 0 (shrinkage S+).

    Returns:
      ``LayeredSolution(codes=(G_1, ..., G_K), layers=(Solution_1, ..., Solution_K))``; ``.converged`` /
      ``.diverged`` summarise all layers.
    """
    _check_iter(max_iter, tol)
    layers, y, xis, dtype = _prepare(layers, y, xis, "xis")
    return _layered_bp(layers, y, xis, jnp.asarray(tol, dtype), max_iter=max_iter, nonneg=nonneg)


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
                  objective=lambda s: objective_l1(D, target, xi, s.x))


@partial(jax.jit, static_argnames=("T", "prox"))
def _layered_bp_unfolded(layers, y, xis, steps, *, T, prox):
    P = shrink.get(prox)
    if steps is None:
        steps = tuple((1.0 / D.lipschitz()).astype(y.dtype) for D in layers)
    prev, codes, sols = y, [], []
    for D, xi, r in zip(layers, xis, steps):
        sol = iterate(_unfolded_layer_solver(D, prev, xi, r, P), max_iter=T, tol=0.0, mode="scan")
        codes.append(sol.codes)
        sols.append(sol)
        prev = sol.codes
    return LayeredSolution(tuple(codes), tuple(sols))


def layered_bp_unfolded(layers, y, xis, T: int, *, steps=None, nonneg: bool = False,
                        prox: Optional[str] = None) -> LayeredSolution:
    """Unfolded layered BP (the LBP network): per layer the thresholding start, then T ISTA steps.

        G_i^0 = P_{r_i xi_i}(r_i D_i^T G_{i-1}),
        G_i^{t+1} = P_{r_i xi_i}(G_i^t - r_i D_i^T(D_i G_i^t - G_{i-1})),   t < T,   G_0 = y.

    T = 0 is layered thresholding with the layers r_i D_i and thresholds r_i xi_i (the CNN forward pass for
    r_i = 1 and P = S+); T -> infinity (soft/S+) gives ``layered_bp``. Pure and fixed-length (``lax.scan``):
    jit, vmap and reverse-mode ``jax.grad`` (w.r.t. y, xis, steps and the layers' filters) work.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape``.
      xis: length-K sequence (or one value) of thresholds xi_i >= 0 (scalar or per-code arrays).
      T: non-negative int, ISTA steps per layer after the start.
      steps: length-K step sizes r_i > 0 (or one value); default 1/||D_i||_2^2 (computed inside, traced).
      nonneg: use S+ (ReLU) instead of soft thresholding.
      prox: "soft" | "nonneg_soft" | "hard" (overrides ``nonneg``; "hard" runs iterative hard thresholding).

    Returns:
      ``LayeredSolution``; per layer ``Solution`` with num_steps = T, error = the last relative change,
      objective = that layer's Lasso objective, converged only if the last step left the iterate
      unchanged (fixed length: no early stop), diverged if it blew up.
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 0:
        raise ValueError(f"T must be a non-negative Python int (ISTA steps per layer), got {T!r}")
    if prox is None:
        prox = "nonneg_soft" if nonneg else "soft"
    V.check_choice("prox", prox, ("soft", "nonneg_soft", "hard"))
    if nonneg and prox != "nonneg_soft":
        raise ValueError(f"nonneg=True needs prox='nonneg_soft' (or prox=None), got prox={prox!r}")
    layers, y, xis, dtype = _prepare(layers, y, xis, "xis")
    steps = check_steps(steps, layers, dtype)
    return _layered_bp_unfolded(layers, y, xis, steps, T=T, prox=prox)


# ----------------------------------------------------------------------------------------------------
# projection pursuit (A7)
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("max_iter", "nonneg"))
def _projection(layers, y, lam, tol, *, max_iter, nonneg):
    D = layers[0] if len(layers) == 1 else Chain(layers)
    x0 = jnp.zeros(tuple(D.code_shape), y.dtype)
    solver = fista_solver(D, y, lam, D.lipschitz().astype(y.dtype), x0, nonneg)
    sol = iterate(solver, max_iter=max_iter, tol=tol, mode="while")
    return ProjectionSolution(back_project(layers, sol.codes), sol)


def projection_pursuit(layers, y, lam, *, max_iter: int = 1000, tol=1e-6,
                       nonneg: bool = False) -> ProjectionSolution:
    """Projection pursuit (REFERENCE A7): the deepest code by FISTA on the effective dictionary, then the
    intermediate layers by back-projection.

        G_K = argmin_G 1/2||y - D_1 ... D_K G||_2^2 + lam ||G||_1,    G_i = D_{i+1} ... D_K G_K.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      lam: l1 weight >= 0, scalar or broadcastable to the deepest code shape.
      max_iter, tol: FISTA stopping rule (relative change of G_K).
      nonneg: constrain G_K >= 0 (the back-projected layers are not constrained).

    Returns:
      ``ProjectionSolution(codes=(G_1, ..., G_K), solution=Solution of the G_K problem)``.
    """
    _check_iter(max_iter, tol)
    layers = check_layers(layers)
    y = check_y(layers, y)
    dtype = common_dtype(layers, y)
    lam = V.as_float_array("lam", lam)
    V.broadcastable("lam", lam, tuple(layers[-1].code_shape), "the deepest layer's codes")
    V.check_nonnegative("lam", lam)
    lam = lam.astype(dtype)
    if lam.ndim > 0:
        lam = jnp.broadcast_to(lam, tuple(layers[-1].code_shape))
    return _projection(layers, y.astype(dtype), lam, jnp.asarray(tol, dtype), max_iter=max_iter,
                       nonneg=nonneg)
