"""Multi-layer CSC pursuits: layered thresholding (the CNN forward pass) and ML-ISTA / ML-FISTA.

Model: y = D_1 G_1, G_1 = D_2 G_2, ..., G_{K-1} = D_K G_K. ``layers`` is a tuple (D_1, ..., D_K) of
``LinearOperator`` s (``Dense`` or ``Conv``) whose shapes chain: ``layers[i].signal_shape ==
layers[i-1].code_shape`` and ``y.shape == layers[0].signal_shape``.

* ``layered_thresholding``: G_0 = y, G_i = P_{b_i}(D_i^T G_{i-1}) (Papyan, Romano, Elad, "Convolutional neural
  networks analyzed via convolutional sparse coding", JMLR 18, 2017). With P = S+ (``nonneg_soft``) and
  D_i a ``Conv`` with boundary "full" and stride s, D_i^T is the VALID strided correlation, so
  G_i = ReLU(conv(G_{i-1}) - b_i): a CNN layer with bias -b_i.
* ``ml_ista`` (Sulam, Aberdam, Beck, Elad, "On multi-layer basis pursuit, efficient algorithms and convolutional
  neural networks", IEEE TPAMI 42(8), 2020) for the ML-BP problem

      min_{G_K} 1/2||y - D^{(1,K)} G_K||^2 + sum_{i<K} lam_i ||D^{(i+1,K)} G_K||_1 + lam_K ||G_K||_1.

  One iteration from G_K (ML-FISTA: from the momentum point z instead):
      Gh_i = D_{i+1} ... D_K G_K                                  (back-projection, Gh_K = G_K)
      G_1 = P_1(Gh_1 - r_1 D_1^T(D_1 Gh_1 - y))
      G_i = P_i(Gh_i - r_i D_i^T(D_i Gh_i - G_{i-1}))              i = 2..K
  P_i = S_{r_i lam_i} (``prox="nonneg_soft"``: S+_{r_i lam_i}), default r_i = 1/||D_i||_2^2.
  ML-FISTA puts Beck-Teboulle momentum on G_K only; no convergence rate is claimed for it (the
  published O(1/k^2) claim was withdrawn).

Exact facts (tested in tests/multilayer/test_layered.py):
  * From G_K = 0 the first iteration is layered thresholding with the scaled layers r_i D_i and
    thresholds r_i lam_i; for steps r_i = 1 it is exactly the CNN forward pass with thresholds lam_i.
  * K = 2, lam_1 = 0, soft (not nonneg: S+_0 = ReLU is not the identity): P_1 = identity and
    G_2 <- S_{r_2 lam_2}(G_2 - r_1 r_2 (D_1 D_2)^T (D_1 D_2 G_2 - y)), i.e. ISTA on D_1 D_2 with step
    r_1 r_2 and l1 weight lam_2 / r_1.

Both return an ``MLSolution`` (``sparsejax.multilayer.result``); ``layered_thresholding_codes`` is the bare
forward pass, the tuple (G_1, ..., G_K).
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
from sparsejax.multilayer.result import MLSolution
from sparsejax.solve import Solver, check_iteration, iterate, relative_change

__all__ = ["layered_thresholding", "layered_thresholding_codes", "ml_ista", "ml_ista_solver", "ml_bp_objective",
           "MLISTAState", "MLFISTAState", "ml_ista_step", "objective_weights", "check_steps", "layer_prox_grad_step",
           "back_project", "check_layers", "check_finite_layers", "nan_if_negative"]


# ----------------------------------------------------------------------------------------------------
# layered thresholding
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


def _prepare_thresholding(layers, y, thresholds, prox):
    shrink.get(prox)
    layers = check_finite_layers(layers)
    y = check_y(layers, y)
    dtype = common_dtype(layers, y)
    return layers, y.astype(dtype), nan_if_negative(per_layer("thresholds", thresholds, layers, dtype))


def check_finite_layers(layers):
    """``check_layers``, and every layer's atoms / filters finite (when concrete: a ValueError naming the layer).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> check_finite_layers((sj.Dense(jnp.eye(2)), sj.Dense(jnp.full((2, 2), jnp.nan))))
      Traceback (most recent call last):
      ...
      ValueError: layers[1] contains NaN or infinite values
    """
    layers = check_layers(layers)
    for i, D in enumerate(layers):
        V.check_operator_finite(f"layers[{i}]", D)
    return layers


def nan_if_negative(weights):
    """Per-layer weights with traced negative entries turned into NaN (``_validate.nan_if_negative``): the pursuit
    then reports an invalid problem (``Status.NONFINITE_INPUT``) instead of a success.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> jax.jit(nan_if_negative)((jnp.array(0.5), jnp.array(-1.0)))[1].tolist()
      nan
    """
    return tuple(V.nan_if_negative(w) for w in weights)


def layered_thresholding_codes(layers, y, thresholds, prox="nonneg_soft") -> Tuple[jax.Array, ...]:
    """The bare layered-thresholding pass: the tuple (G_1, ..., G_K) of ``layered_thresholding`` without the
    flags, for networks and experiments that only need the codes.

    Args and maths as in ``layered_thresholding``.

    Returns:
      The tuple (G_1, ..., G_K).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.multilayer.layered import layered_thresholding_codes
      >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
      >>> G1, G2 = layered_thresholding_codes(layers, jnp.array([2.0, -1.0, 0.5]), (0.5, 1.0))
      >>> G1.tolist(), G2.tolist()
      ([1.5, 0.0, 0.0], [0.5, 0.0, 0.0])
    """
    layers, y, b = _prepare_thresholding(layers, y, thresholds, prox)
    return _layered(layers, y, b, prox=prox)


@partial(jax.jit, static_argnames=("prox",))
def _layered_result(layers, y, thresholds, *, prox):
    inputs_ok = [V.all_finite(D, b) for D, b in zip(layers, thresholds)]
    inputs_ok[0] = inputs_ok[0] & V.all_finite(y)
    return MLSolution.from_forward_pass(_layered(layers, y, thresholds, prox=prox), inputs_ok)


def layered_thresholding(layers, y, thresholds, prox="nonneg_soft") -> MLSolution:
    """Layered thresholding: G_0 = y, G_i = P_{b_i}(D_i^T G_{i-1}), i = 1..K.

    With ``prox="nonneg_soft"`` and ``Conv`` layers with boundary "full" this is the forward pass of a CNN
    (VALID strided correlations, bias -b_i, ReLU). Papyan, Romano, Elad, "Convolutional neural networks analyzed
    via convolutional sparse coding", JMLR 18, 2017 (its stability, Thms 10-11, is
    ``sparsejax.theory.multilayer.lt_bound``).

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      thresholds: a length-K sequence (or one value for all layers) of thresholds b_i >= 0, each a scalar
        or broadcastable to layer i's code shape (per-atom / per-channel, e.g. (M, 1, 1) for 2-D Conv).
        Traced (differentiable).
      prox: the shrinkage P: "nonneg_soft" (default), "soft", "hard", or a callable ``(z, threshold) -> z``.

    Returns:
      ``MLSolution`` with ``codes`` = (G_1, ..., G_K), one step per layer, no objective (NaN). Never a silent
      success: under ``jit`` a layer with a non-finite dictionary or threshold, a negative threshold, or a
      non-finite ``y`` gives that layer (and the result) status ``NONFINITE_INPUT``; a code that is not finite, or
      one computed from a failed layer, is ``DIVERGED`` (``MLSolution.from_forward_pass``); ``converged`` only when
      every layer is valid and finite. ``layered_thresholding_codes`` returns the bare tuple.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
      >>> sol = sj.layered_thresholding(layers, jnp.array([2.0, -1.0, 0.5]), (0.5, 1.0))
      >>> sol.codes[-1].tolist(), bool(sol.converged)
      ([0.5, 0.0, 0.0], True)
    """
    layers, y, b = _prepare_thresholding(layers, y, thresholds, prox)
    return _layered_result(layers, y, b, prox=prox)


# ----------------------------------------------------------------------------------------------------
# ML-ISTA / ML-FISTA
# ----------------------------------------------------------------------------------------------------
class MLISTAState(NamedTuple):
    """The state of ML-ISTA: ``G`` = (G_1, ..., G_K) of the last sweep; the iterate is G_K.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.multilayer.layered import MLISTAState
      >>> len(MLISTAState((jnp.zeros(3), jnp.zeros(2))).G)
      2
    """

    G: Tuple[jax.Array, ...]


class MLFISTAState(NamedTuple):
    """The state of ML-FISTA: ``G`` the last proximal point (all layers), ``z`` the momentum point for G_K,
    ``t`` the momentum scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.multilayer.layered import MLFISTAState
      >>> MLFISTAState((jnp.zeros(2),), jnp.zeros(2), jnp.float32(1.0)).t.tolist()
      1.0
    """

    G: Tuple[jax.Array, ...]
    z: jax.Array
    t: jax.Array


def ml_bp_objective(layers, y, GK, lams) -> jax.Array:
    """The ML-BP objective at the deepest code G_K (Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020):

        1/2||y - D^{(1,K)} G_K||^2 + sum_{i<K} sum(lam_i |D^{(i+1,K)} G_K|) + sum(lam_K |G_K|).

    Args:
      layers: tuple (D_1, ..., D_K).
      y: the signal.
      GK: the deepest code G_K (one array).
      lams: length-K sequence of weights lam_i (scalars or arrays broadcastable to layer i's codes).

    Returns:
      The scalar objective.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(jnp.eye(2)))
      >>> float(sj.ml_bp_objective(layers, jnp.array([1.0, 0.0]), jnp.array([1.0, 0.0]), (0.5, 0.25)))
      0.75
    """
    if isinstance(GK, (tuple, list)):
        raise TypeError("ml_bp_objective takes (layers, y, GK, lams): the deepest code is one array and the "
                        f"weights come last, got GK as a {type(GK).__name__}")
    K = len(layers)
    val = jnp.sum(lams[K - 1] * jnp.abs(GK))
    G = GK
    for i in range(K - 1, 0, -1):   # G <- D_{i+1} G = Gh_i
        G = layers[i].apply(G)
        val = val + jnp.sum(lams[i - 1] * jnp.abs(G))
    r = layers[0].apply(G) - y
    return 0.5 * jnp.sum(r * r) + val


def layer_prox_grad_step(D, G, target, lam, step, prox="soft"):
    """One proximal-gradient (ISTA) step on one layer: P_{r lam}(G - r D^T(D G - target)).

    The building block shared by ML-ISTA, layered BP (unfolded) and the unfolded networks.

    Args:
      D: the layer's LinearOperator.
      G: current code of the layer (shape ``D.code_shape``).
      target: what the layer should synthesise (the previous layer's code, or y).
      lam: l1 weight (scalar or broadcastable to ``G``).
      step: step size r (scalar).
      prox: the shrinkage: a name ("soft", "nonneg_soft", "hard") or a callable ``(z, threshold) -> z``.

    Returns:
      The new code of the layer.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.multilayer.layered import layer_prox_grad_step
      >>> G = layer_prox_grad_step(sj.Dense(jnp.eye(2)), jnp.zeros(2), jnp.array([1.0, -0.2]), 0.5, 1.0)
      >>> [round(float(v), 6) for v in G]
      [0.5, 0.0]
    """
    P = shrink.get(prox)
    return P(G - step * D.adjoint(D.apply(G) - target), step * lam)


def ml_ista_step(layers, y, lams, steps, GK, prox="soft") -> Tuple[jax.Array, ...]:
    """One ML-ISTA sweep from the point G_K (Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020): back-project
    Gh_i = D^{(i+1,K)} G_K, then G_1 = P(Gh_1 - r_1 D_1^T(D_1 Gh_1 - y)) and
    G_i = P(Gh_i - r_i D_i^T(D_i Gh_i - G_{i-1})) for i = 2..K, P with threshold r_i lam_i.

    Args:
      layers: tuple (D_1, ..., D_K). y: the signal.
      lams, steps: length-K sequences of weights lam_i and step sizes r_i.
      GK: the point G_K to sweep from.
      prox: the shrinkage (a name or a callable ``(z, threshold) -> z``).

    Returns:
      The tuple (G_1, ..., G_K) of the sweep.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.multilayer.layered import ml_ista_step
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(jnp.eye(2)))
      >>> G1, G2 = ml_ista_step(layers, jnp.array([1.0, 0.0]), (0.0, 0.5), (1.0, 1.0), jnp.zeros(2))
      >>> G2.tolist()
      [0.5, 0.0]
    """
    P = shrink.get(prox)
    Gh = back_project(layers, GK)
    out = []
    prev = y
    for i in range(len(layers)):
        G = layer_prox_grad_step(layers[i], Gh[i], prev, lams[i], steps[i], P)
        out.append(G)
        prev = G
    return tuple(out)


def objective_weights(lams, steps):
    """The ML-BP weights whose problem the iteration with thresholds r_i lam_i targets:
    w_i = lam_i / (r_1 ... r_{i-1}) (w_1 = lam_1).

    Why: in a sweep the gradient of layer i is taken with step r_i on the residual G_{i-1}, itself produced with step
    r_{i-1}, ...; for lam_1 = ... = lam_{K-1} = 0 the sweep is ISTA on D^{(1,K)} with step r_1 ... r_K and threshold
    r_K lam_K, i.e. l1 weight lam_K / (r_1 ... r_{K-1}). With unit steps (the CNN convention) w = lam.

    Example:
      >>> from sparsejax.multilayer.layered import objective_weights
      >>> objective_weights((0.1, 0.2, 0.3), (0.5, 0.5, 0.5))
      (0.1, 0.4, 1.2)
    """
    out, scale = [], 1.0
    for lam, r in zip(lams, steps):
        out.append(lam / scale)
        scale = scale * r
    return tuple(out)


def ml_ista_solver(layers, y, lams, steps, G0, prox="soft", fista=False) -> Solver:
    """The ``Solver`` (init, step, ...) of ML-ISTA (``fista=True``: ML-FISTA, momentum on G_K), for
    ``sparsejax.solve.iterate`` (Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020).

    The stopping measure is the relative change of G_K; the objective the ML-BP objective with the weights the
    iteration targets (``objective_weights``); the fixed-point map (``mode="implicit"``) is the ML-ISTA sweep on
    G_K, for ML-FISTA too (its fixed point is the same).

    Args:
      layers, y, lams, steps: as in ``ml_ista_step`` (arrays, traced).
      G0: the tuple of starting codes (G_1, ..., G_K); only G_K enters the first sweep.
      prox: the shrinkage (a name or a callable ``(z, threshold) -> z``).
      fista: momentum on G_K (ML-FISTA).

    Returns:
      The ``Solver``; its states are ``MLISTAState`` (``MLFISTAState`` for ML-FISTA).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.multilayer.layered import ml_ista_solver
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(jnp.eye(2)))
      >>> G0 = (jnp.zeros(2), jnp.zeros(2))
      >>> solver = ml_ista_solver(layers, jnp.array([1.0, 0.0]), (0.0, 0.5), (1.0, 1.0), G0)
      >>> sol = sj.solve.iterate(solver, max_iter=10, tol=1e-6)
      >>> sol.codes.tolist(), bool(sol.converged)
      ([0.5, 0.0], True)
    """
    P = shrink.get(prox)
    w = objective_weights(lams, steps)
    objective = lambda s: ml_bp_objective(layers, y, s.G[-1], w)  # noqa: E731
    error = lambda a, b: relative_change(a.G[-1], b.G[-1])  # noqa: E731
    sweep = lambda GK: ml_ista_step(layers, y, lams, steps, GK, P)  # noqa: E731
    fixed_point = lambda GK: sweep(GK)[-1]  # noqa: E731
    if not fista:
        return Solver(init=lambda: MLISTAState(tuple(G0)), step=lambda s: MLISTAState(sweep(s.G[-1])),
                      codes=lambda s: s.G[-1], error=error, objective=objective, fixed_point=fixed_point)

    def step(s):
        G = sweep(s.z)
        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.t * s.t))
        z = G[-1] + ((s.t - 1.0) / t_next) * (G[-1] - s.G[-1])
        return MLFISTAState(G, z, t_next)

    one = jnp.asarray(1.0, G0[-1].dtype)
    return Solver(init=lambda: MLFISTAState(tuple(G0), G0[-1], one), step=step,
                  codes=lambda s: s.G[-1], error=error, objective=objective, fixed_point=fixed_point)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "fista"))
def _ml_ista(layers, y, lams, steps, tol, *, max_iter, mode, prox, fista):
    dtype = y.dtype
    if steps is None:
        steps = tuple((1.0 / D.lipschitz()).astype(dtype) for D in layers)
    G0 = tuple(jnp.zeros(tuple(D.code_shape), dtype) for D in layers)
    solver = ml_ista_solver(layers, y, lams, steps, G0, prox=prox, fista=fista)
    sol = iterate(solver, max_iter=max_iter, tol=tol, mode=mode)
    if mode == "implicit":
        # only G_K = sol.codes carries the implicit derivative (the state is not differentiated): the other layers
        # are the sweep from it, equal to the last sweep's at the fixed point
        G = ml_ista_step(layers, y, lams, steps, sol.codes, prox)[:-1] + (sol.codes,)
    else:
        G = sol.state.G
    return MLSolution.from_solution(G, sol)


def ml_ista(layers, y, lams, *, steps=None, max_iter: int = 100, tol=1e-6, mode: str = "while",
            prox="soft", fista: bool = False) -> MLSolution:
    """ML-ISTA / ML-FISTA for the ML-BP problem, from G = 0 (Sulam, Aberdam, Beck, Elad, "On multi-layer basis
    pursuit, efficient algorithms and convolutional neural networks", IEEE TPAMI 42(8), 2020):

        min_{G_K} 1/2||y - D^{(1,K)} G_K||^2 + sum_{i<K} lam_i ||D^{(i+1,K)} G_K||_1 + lam_K ||G_K||_1.

    Args:
      layers: tuple (D_1, ..., D_K) of LinearOperators whose shapes chain.
      y: the signal, shape ``layers[0].signal_shape`` (one signal; batch with ``jax.vmap``).
      lams: length-K sequence (or one value for all layers) of l1 weights lam_i >= 0, each a scalar or
        broadcastable to layer i's code shape.
      steps: length-K step sizes r_i > 0 (default 1/||D_i||_2^2, computed inside the jitted core).
      max_iter, tol: stop when ||G_K^k - G_K^{k-1}|| / ||G_K^k|| <= tol or after max_iter sweeps.
      mode: one of ``sparsejax.solve.MODES``, passed to ``iterate``: "while" (early stop), "scan" (exactly
        max_iter sweeps, reverse-differentiable), "checkpoint", "implicit".
      prox: the shrinkage P_i: "soft" (default), "nonneg_soft" (S+, ReLU: the non-negative ML-BP), "hard", or a
        callable ``(z, threshold) -> z``.
      fista: ML-FISTA (momentum on G_K). No rate is claimed.

    Returns:
      ``MLSolution`` with ``codes`` = (G_1, ..., G_K) of the last sweep (G_i, i < K, is the thresholded layer,
      not the back-projection D^{(i+1,K)} G_K; with ``mode="implicit"`` the sweep from the returned G_K, so that
      every layer carries the implicit derivative), ``objective`` the ML-BP objective at G_K (without the
      nonnegativity indicator) with the weights the iteration targets, w_i = lam_i / (r_1 ... r_{i-1})
      (``objective_weights``; w = lam for unit steps: to solve ML-BP with weights w pass
      lam_i = w_i r_1 ... r_{i-1}), ``state`` the ``MLISTAState`` / ``MLFISTAState``; one joint solve, so
      every layer repeats its flags.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(jnp.eye(2)))
      >>> sol = sj.ml_ista(layers, jnp.array([1.0, 0.0]), (0.0, 0.5), steps=(1.0, 1.0))
      >>> sol.codes[-1].tolist(), bool(sol.converged), sol.layer_num_steps.tolist()
      ([0.5, 0.0], True, [2, 2])
    """
    layers = check_finite_layers(layers)
    y = check_y(layers, y)
    check_iteration(max_iter, tol, mode)
    shrink.get(prox)
    dtype = common_dtype(layers, y)
    lams = nan_if_negative(per_layer("lams", lams, layers, dtype))
    steps = check_steps(steps, layers, dtype)
    return _ml_ista(layers, y.astype(dtype), lams, steps, jnp.asarray(tol, dtype), max_iter=max_iter,
                    mode=mode, prox=prox, fista=fista)
