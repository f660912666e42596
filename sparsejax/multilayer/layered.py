"""Multi-layer CSC pursuits (REFERENCE section 1 ML-CSC, A5, A8).

Model: y = D_1 G_1, G_1 = D_2 G_2, ..., G_{K-1} = D_K G_K. ``layers`` is a tuple (D_1, ..., D_K) of
``LinearOperator`` s (``Dense`` or ``Conv``) whose shapes chain: ``layers[i].signal_shape ==
layers[i-1].code_shape`` and ``y.shape == layers[0].signal_shape``.

* ``layered_thresholding`` (A5, the CNN forward pass): G_0 = y, G_i = P_{b_i}(D_i^T G_{i-1}).
  With P = S+ (``nonneg_soft``) and D_i a ``Conv`` with boundary "full" and stride s, D_i^T is the VALID
  strided correlation, so G_i = ReLU(conv(G_{i-1}) - b_i): a CNN layer with bias -b_i.
* ``ml_ista`` (A8, Sulam, Aberdam, Beck, Elad, TPAMI 2020) for the ML-BP problem

      min_{G_K} 1/2||y - D^{(1,K)} G_K||^2 + sum_{i<K} lam_i ||D^{(i+1,K)} G_K||_1 + lam_K ||G_K||_1.

  One iteration from G_K (ML-FISTA: from the momentum point z instead):
      Gh_i = D_{i+1} ... D_K G_K                                  (back-projection, Gh_K = G_K)
      G_1 = P_1(Gh_1 - r_1 D_1^T(D_1 Gh_1 - y))
      G_i = P_i(Gh_i - r_i D_i^T(D_i Gh_i - G_{i-1}))              i = 2..K
  P_i = S_{r_i lam_i} (nonneg: S+_{r_i lam_i}), default r_i = 1/||D_i||_2^2.
  ML-FISTA puts Beck-Teboulle momentum on G_K only; no convergence rate is claimed for it (the
  published O(1/k^2) claim was withdrawn).

Exact facts (tested in tests/test_layered.py):
  * From G_K = 0 the first iteration is layered thresholding with the scaled layers r_i D_i and
    thresholds r_i lam_i; for steps r_i = 1 it is exactly the CNN forward pass with thresholds lam_i.
  * K = 2, lam_1 = 0, soft (not nonneg: S+_0 = ReLU is not the identity): P_1 = identity and
    G_2 <- S_{r_2 lam_2}(G_2 - r_1 r_2 (D_1 D_2)^T (D_1 D_2 G_2 - y)), i.e. ISTA on D_1 D_2 with step
    r_1 r_2 and l1 weight lam_2 / r_1.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Tuple

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
from sparsejax.multilayer.model import back_project
from sparsejax.solve import Solution, Solver, iterate, relative_change

__all__ = ["layered_thresholding", "ml_ista", "ml_ista_solver", "ml_bp_objective", "MLISTAState",
           "MLFISTAState", "ml_ista_step", "objective_weights", "check_steps", "layer_prox_grad_step", "back_project",
           "check_layers"]


# ----------------------------------------------------------------------------------------------------
# validation (before tracing)
# ----------------------------------------------------------------------------------------------------










# ----------------------------------------------------------------------------------------------------
# layered thresholding (A5)
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("prox",))
def _layered(layers, y, thresholds, *, prox):
    P = shrink.get(prox)
    G = y
    out = []
    for D, b in zip(layers, thresholds):
        G = P(D.adjoint(G), b)
        out.append(G)
    return tuple(out)


def layered_thresholding(layers, y, thresholds, prox: str = "nonneg_soft") -> Tuple[jax.Array, ...]:
    """Layered thresholding (REFERENCE A5): G_0 = y, G_i = P_{b_i}(D_i^T G_{i-1}), i = 1..K.

    With ``prox="nonneg_soft"`` and ``Conv`` layers with boundary "full" this is the forward pass of a CNN
    (VALID strided correlations, bias -b_i, ReLU).

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      thresholds: a length-K sequence (or one value for all layers) of thresholds b_i >= 0, each a scalar
        or broadcastable to layer i's code shape (per-atom / per-channel, e.g. (M, 1, 1) for 2-D Conv).
        Traced (differentiable).
      prox: "nonneg_soft" | "soft" | "hard".

    Returns:
      The tuple (G_1, ..., G_K).
    """
    V.check_choice("prox", prox, ("nonneg_soft", "soft", "hard"))
    layers = check_layers(layers)
    y = check_y(layers, y)
    dtype = common_dtype(layers, y)
    b = per_layer("thresholds", thresholds, layers, dtype)
    return _layered(layers, y.astype(dtype), b, prox=prox)


# ----------------------------------------------------------------------------------------------------
# ML-ISTA / ML-FISTA (A8)
# ----------------------------------------------------------------------------------------------------
class MLISTAState(NamedTuple):
    G: Tuple[jax.Array, ...]      # (G_1, ..., G_K); the iterate is G_K


class MLFISTAState(NamedTuple):
    G: Tuple[jax.Array, ...]      # last proximal point, all layers
    z: jax.Array                  # momentum point for G_K
    t: jax.Array                  # momentum scalar


def ml_bp_objective(layers, y, lams, GK) -> jax.Array:
    """1/2||y - D^{(1,K)} G_K||^2 + sum_{i<K} sum(lam_i |D^{(i+1,K)} G_K|) + sum(lam_K |G_K|)."""
    K = len(layers)
    val = jnp.sum(lams[K - 1] * jnp.abs(GK))
    G = GK
    for i in range(K - 1, 0, -1):   # G <- D_{i+1} G = Gh_i
        G = layers[i].apply(G)
        val = val + jnp.sum(lams[i - 1] * jnp.abs(G))
    r = layers[0].apply(G) - y
    return 0.5 * jnp.sum(r * r) + val


def layer_prox_grad_step(D, G, target, lam, step, prox=shrink.soft):
    """One proximal-gradient (ISTA) step on one layer: P_{r lam}(G - r D^T(D G - target)).

    The building block shared by ML-ISTA, layered BP (unfolded) and the unfolded networks.

    Args:
      D: the layer's LinearOperator.
      G: current code of the layer (shape ``D.code_shape``).
      target: what the layer should synthesise (the previous layer's code, or y).
      lam: l1 weight (scalar or broadcastable to ``G``).
      step: step size r (scalar).
      prox: a shrinkage function ``prox(z, threshold)`` (default soft).
    """
    return prox(G - step * D.adjoint(D.apply(G) - target), step * lam)




def ml_ista_step(layers, y, lams, steps, GK, prox=shrink.soft) -> Tuple[jax.Array, ...]:
    """One ML-ISTA sweep (REFERENCE A8) from the point G_K; returns (G_1, ..., G_K).

    ``lams`` and ``steps`` are length-K sequences; ``prox`` a shrinkage function ``prox(z, threshold)``."""
    Gh = back_project(layers, GK)
    out = []
    prev = y
    for i in range(len(layers)):
        G = layer_prox_grad_step(layers[i], Gh[i], prev, lams[i], steps[i], prox)
        out.append(G)
        prev = G
    return tuple(out)



def objective_weights(lams, steps):
    """The ML-BP weights whose problem the iteration with thresholds r_i lam_i targets:
    w_i = lam_i / (r_1 ... r_{i-1}) (w_1 = lam_1).

    Why: in a sweep the gradient of layer i is taken with step r_i on the residual G_{i-1}, itself produced with step
    r_{i-1}, ...; for lam_1 = ... = lam_{K-1} = 0 the sweep is ISTA on D^{(1,K)} with step r_1 ... r_K and threshold
    r_K lam_K, i.e. l1 weight lam_K / (r_1 ... r_{K-1}). With unit steps (the CNN convention) w = lam."""
    out, scale = [], 1.0
    for lam, r in zip(lams, steps):
        out.append(lam / scale)
        scale = scale * r
    return tuple(out)


def ml_ista_solver(layers, y, lams, steps, G0, nonneg=False, fista=False) -> Solver:
    """The (init, step) pair of ML-ISTA (``fista=True``: ML-FISTA, momentum on G_K).

    ``G0`` is the tuple of starting codes (G_1, ..., G_K); only G_K enters the first sweep."""
    P = shrink.nonneg_soft if nonneg else shrink.soft
    w = objective_weights(lams, steps)
    objective = lambda s: ml_bp_objective(layers, y, w, s.G[-1])  # noqa: E731
    error = lambda a, b: relative_change(a.G[-1], b.G[-1])  # noqa: E731
    if not fista:
        return Solver(init=lambda: MLISTAState(tuple(G0)),
                      step=lambda s: MLISTAState(ml_ista_step(layers, y, lams, steps, s.G[-1], P)),
                      codes=lambda s: s.G[-1], error=error, objective=objective)

    def step(s):
        G = ml_ista_step(layers, y, lams, steps, s.z, P)
        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.t * s.t))
        z = G[-1] + ((s.t - 1.0) / t_next) * (G[-1] - s.G[-1])
        return MLFISTAState(G, z, t_next)

    one = jnp.asarray(1.0, G0[-1].dtype)
    return Solver(init=lambda: MLFISTAState(tuple(G0), G0[-1], one), step=step,
                  codes=lambda s: s.G[-1], error=error, objective=objective)


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "fista"))
def _ml_ista(layers, y, lams, steps, tol, *, max_iter, mode, nonneg, fista):
    dtype = y.dtype
    if steps is None:
        steps = tuple((1.0 / D.lipschitz()).astype(dtype) for D in layers)
    G0 = tuple(jnp.zeros(tuple(D.code_shape), dtype) for D in layers)
    solver = ml_ista_solver(layers, y, lams, steps, G0, nonneg=nonneg, fista=fista)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode)


def ml_ista(layers, y, lams, *, steps=None, max_iter: int = 100, tol=1e-6, mode: str = "while",
            nonneg: bool = False, fista: bool = False) -> Solution:
    """ML-ISTA / ML-FISTA for the ML-BP problem (REFERENCE A8), from G = 0.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      lams: length-K sequence (or one value for all layers) of l1 weights lam_i >= 0, each a scalar or
        broadcastable to layer i's code shape.
      steps: length-K step sizes r_i > 0 (default 1/||D_i||_2^2, computed inside the jitted core).
      max_iter, tol: stop when ||G_K^k - G_K^{k-1}|| / ||G_K^k|| <= tol or after max_iter sweeps.
      mode: "while" (early stop) or "scan" (exactly max_iter sweeps, reverse-differentiable).
      nonneg: P_i = S+_{r_i lam_i} (ReLU) instead of S_{r_i lam_i}.
      fista: ML-FISTA (momentum on G_K). No rate is claimed.

    Returns:
      ``Solution`` with ``codes`` = G_K, ``objective`` the ML-BP objective at G_K (without the
      nonnegativity indicator) with the weights the iteration targets, w_i = lam_i / (r_1 ... r_{i-1})
      (``objective_weights``; w = lam for unit steps: to solve ML-BP with weights w pass lam_i = w_i r_1 ... r_{i-1}),
      and ``state.G`` = (G_1, ..., G_K) of the last sweep. Note G_i (i < K) is the
      thresholded layer, not the back-projection D^{(i+1,K)} G_K.
    """
    layers = check_layers(layers)
    y = check_y(layers, y)
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    V.check_choice("mode", mode, ("while", "scan"))
    dtype = common_dtype(layers, y)
    lams = per_layer("lams", lams, layers, dtype)
    steps = check_steps(steps, layers, dtype)
    return _ml_ista(layers, y.astype(dtype), lams, steps, jnp.asarray(tol, dtype), max_iter=max_iter,
                    mode=mode, nonneg=nonneg, fista=fista)
