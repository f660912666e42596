"""The one result type of every multi-layer pursuit: ``MLSolution``.

A multi-layer pursuit returns the codes of every layer, (G_1, ..., G_K), and says how each was obtained. Three
shapes of pursuit exist, and the result is built the same way for each:

* **layer by layer** (layered thresholding, layered BP and its unfolded form): one solve per layer, whose flags
  are the per-layer fields; the overall ones summarise them (steps added up, converged when every layer did,
  diverged when some layer did, the largest final stopping measure, the sum of the per-layer objectives);
* **joint** (ML-ISTA / ML-FISTA, projection pursuit): one solve gives every layer, so every layer repeats its
  flags;
* **in stages** (holistic pursuit): a joint solve repeated with a growing constraint set; ``stages`` keeps each
  stage's flags, and the overall ones summarise them the way the layered ones do (but the objective is the last
  stage's, the one the returned codes minimise).

All fields are arrays (a pytree, as ``sparsejax.solve.Solution``): under ``jax.vmap`` every field gains the batch
axis in front, e.g. ``layer_converged`` of shape (B, K).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from sparsejax.solve import Solution, Status, stop_status

__all__ = ["MLSolution"]


def _stack(values) -> jax.Array:
    """Stack per-layer scalars (or per-layer batches) along a new last axis (the layer axis)."""
    return jnp.stack([jnp.asarray(v) for v in values], axis=-1)


def _repeat(value, K: int) -> jax.Array:
    """One value for each of K layers, along a new last axis."""
    value = jnp.asarray(value)
    return jnp.broadcast_to(value[..., None], value.shape + (K,))


class MLSolution(NamedTuple):
    """Result of a multi-layer pursuit: the codes of every layer, overall and per-layer flags.

    Attributes:
      codes: the tuple (G_1, ..., G_K), G_i of shape ``layers[i-1].code_shape``.
      num_steps: iterations used in all (int32): added over the layers (layer by layer) or the stages.
      converged: True when every layer's (every stage's) stopping measure reached ``tol``.
      diverged: True when some layer's (some stage's) iterates or objective blew up.
      objective: the pursuit's objective at the returned codes (NaN when it has none, as layered thresholding).
      error: the largest final stopping measure over the layers (stages).
      status: why the pursuit stopped, a ``sparsejax.solve.Status`` code (int32): NONFINITE_INPUT when some
        solve saw a non-finite problem, else DIVERGED when some diverged, CONVERGED when all converged, else
        MAX_STEPS.
      layer_num_steps, layer_converged, layer_diverged, layer_objective, layer_error, layer_status: the same per
        layer, arrays with one entry per layer (last axis of length K). A joint solve repeats its own values.
      state: the solver state where one exists: for the layer-by-layer pursuits a tuple with one state per layer,
        otherwise the state of the (last) solve, e.g. ``MLISTAState`` for ML-ISTA.
      history: the per-step objective (``mode="scan"`` with ``history=True``) where the pursuit records it.
      stages: for a pursuit run in stages (holistic pursuit) a ``Solution`` whose fields are stacked along a
        leading stage axis (codes: the deepest code after each stage); None otherwise.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D1 = sj.Dense(jnp.eye(4)[:, :3])
      >>> D2 = sj.Dense(jnp.ones((3, 2)) / 3.0)
      >>> sol = sj.layered_bp((D1, D2), jnp.array([1.0, 0.5, 0.0, 0.0]), 0.1)
      >>> len(sol.codes), sol.layer_converged.shape, sj.solve.status_name(sol.status)
      (2, (2,), 'converged')
    """

    codes: Tuple[jax.Array, ...]
    num_steps: jax.Array
    converged: jax.Array
    diverged: jax.Array
    objective: jax.Array
    error: jax.Array
    status: jax.Array
    layer_num_steps: jax.Array
    layer_converged: jax.Array
    layer_diverged: jax.Array
    layer_objective: jax.Array
    layer_error: jax.Array
    layer_status: jax.Array
    state: Any = None
    history: Optional[jax.Array] = None
    stages: Optional[Solution] = None

    @property
    def depth(self) -> int:
        """K, the number of layers.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
          >>> sj.layered_thresholding(layers, jnp.ones(3), 0.5).depth
          2
        """
        return len(self.codes)

    def layer(self, i: int) -> Solution:
        """The result of layer ``i`` (0-based, as ``codes[i]``) as a ``sparsejax.solve.Solution``.

        Its state is the layer's own solver state for the layer-by-layer pursuits, otherwise None.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
          >>> sol = sj.layered_bp(layers, jnp.array([1.0, -2.0, 0.1]), 0.5)
          >>> first = sol.layer(0)
          >>> bool(first.converged), [round(float(v), 2) for v in first.codes]
          (True, [0.5, -1.5, 0.0])
        """
        if not -self.depth <= i < self.depth:
            raise IndexError(f"layer index {i} out of range for {self.depth} layers")
        i = i % self.depth
        state = self.state[i] if type(self.state) is tuple else None
        return Solution(self.codes[i], self.layer_num_steps[..., i], self.layer_converged[..., i],
                        self.layer_diverged[..., i], self.layer_objective[..., i], self.layer_error[..., i],
                        state, None, self.layer_status[..., i])

    @property
    def layers(self) -> Tuple[Solution, ...]:
        """``(layer(0), ..., layer(K-1))``: one ``Solution`` per layer.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> layers = (sj.Dense(jnp.eye(3)), sj.Dense(jnp.eye(3)))
          >>> sol = sj.layered_bp_unfolded(layers, jnp.ones(3), 0.1, 4)
          >>> [int(s.num_steps) for s in sol.layers]
          [4, 4]
        """
        return tuple(self.layer(i) for i in range(self.depth))

    @classmethod
    def from_layers(cls, solutions) -> "MLSolution":
        """The result of a layer-by-layer pursuit from its per-layer ``Solution`` s (layer 1 first).

        Example:
          >>> import jax.numpy as jnp
          >>> from sparsejax.solve import Solution, Status
          >>> one = Solution(jnp.ones(2), jnp.int32(3), jnp.bool_(True), jnp.bool_(False), jnp.float32(1.0),
          ...                jnp.float32(0.0), None, None, jnp.int32(Status.CONVERGED))
          >>> sol = MLSolution.from_layers((one, one._replace(converged=jnp.bool_(False),
          ...                                                   status=jnp.int32(Status.MAX_STEPS))))
          >>> int(sol.num_steps), bool(sol.converged), int(sol.status) == Status.MAX_STEPS
          (6, False, True)
        """
        solutions = tuple(solutions)
        layer_status = _stack([s.status for s in solutions])
        converged = jnp.all(_stack([s.converged for s in solutions]), axis=-1)
        diverged = jnp.any(_stack([s.diverged for s in solutions]), axis=-1)
        bad_input = jnp.any(layer_status == Status.NONFINITE_INPUT, axis=-1)
        return cls(codes=tuple(s.codes for s in solutions),
                   num_steps=jnp.sum(_stack([s.num_steps for s in solutions]), axis=-1).astype(jnp.int32),
                   converged=converged, diverged=diverged,
                   objective=jnp.sum(_stack([s.objective for s in solutions]), axis=-1),
                   error=jnp.max(_stack([s.error for s in solutions]), axis=-1),
                   status=stop_status(converged, diverged, bad_input),
                   layer_num_steps=_stack([s.num_steps for s in solutions]),
                   layer_converged=_stack([s.converged for s in solutions]),
                   layer_diverged=_stack([s.diverged for s in solutions]),
                   layer_objective=_stack([s.objective for s in solutions]),
                   layer_error=_stack([s.error for s in solutions]),
                   layer_status=layer_status,
                   state=tuple(s.state for s in solutions))

    @classmethod
    def from_solution(cls, codes, solution: Solution, stages: Optional[Solution] = None) -> "MLSolution":
        """The result of a joint solve that gave every layer's codes (``codes``, layer 1 first) at once.

        With ``stages`` (one ``Solution`` with fields stacked along a leading stage axis, the last stage being
        ``solution``) the overall flags summarise the stages: steps added up, converged when every stage
        converged, diverged when some stage diverged, the largest stopping measure; the objective stays the last
        stage's.

        Example:
          >>> import jax.numpy as jnp
          >>> from sparsejax.solve import Solution, Status
          >>> one = Solution(jnp.ones(2), jnp.int32(7), jnp.bool_(True), jnp.bool_(False), jnp.float32(0.5),
          ...                jnp.float32(1e-7), None, None, jnp.int32(Status.CONVERGED))
          >>> sol = MLSolution.from_solution((2.0 * one.codes, one.codes), one)
          >>> sol.layer_num_steps.tolist(), bool(sol.converged)
          ([7, 7], True)
        """
        codes = tuple(codes)
        K = len(codes)
        summary = solution if stages is None else _summarise_stages(solution, stages)
        return cls(codes=codes, num_steps=summary.num_steps, converged=summary.converged,
                   diverged=summary.diverged, objective=summary.objective, error=summary.error,
                   status=summary.status, layer_num_steps=_repeat(summary.num_steps, K),
                   layer_converged=_repeat(summary.converged, K), layer_diverged=_repeat(summary.diverged, K),
                   layer_objective=_repeat(summary.objective, K), layer_error=_repeat(summary.error, K),
                   layer_status=_repeat(summary.status, K), state=solution.state, history=solution.history,
                   stages=stages)

    @classmethod
    def from_forward_pass(cls, codes, inputs_ok=None) -> "MLSolution":
        """The result of a non-iterative pass that computes each layer once from the previous one (layered
        thresholding): one step per layer, error 0, no objective (NaN).

        Layer i's status: NONFINITE_INPUT when its own inputs are invalid (``inputs_ok[i]`` False: a non-finite
        dictionary or threshold, a negative threshold, or for the first layer a non-finite signal); else DIVERGED
        when its code is not finite or an earlier layer failed (its input is then unusable, even if a threshold
        turned it into finite zeros); else CONVERGED. The overall flags summarise the layers (``from_layers``).

        Args:
          codes: the tuple (G_1, ..., G_K).
          inputs_ok: one boolean per layer (traced), or None (all valid).

        Example:
          >>> import jax.numpy as jnp
          >>> from sparsejax.solve import status_name
          >>> sol = MLSolution.from_forward_pass((jnp.ones(3), jnp.zeros(2)))
          >>> int(sol.num_steps), sol.layer_num_steps.tolist(), bool(sol.converged)
          (2, [1, 1], True)
          >>> bad = MLSolution.from_forward_pass((jnp.ones(3), jnp.zeros(2)), (jnp.bool_(False), jnp.bool_(True)))
          >>> [status_name(c) for c in bad.layer_status], status_name(bad.status), bool(bad.converged)
          (['nonfinite_input', 'diverged'], 'nonfinite_input', False)
        """
        codes = tuple(codes)
        dtype = jnp.result_type(*[G.dtype for G in codes])
        if inputs_ok is None:
            inputs_ok = (True,) * len(codes)
        chain_ok = jnp.asarray(True)        # every earlier layer valid and finite
        layers = []
        for G, ok in zip(codes, inputs_ok):
            ok = jnp.asarray(ok)
            diverged = ~jnp.all(jnp.isfinite(G)) | ~chain_ok
            converged = ok & ~diverged
            layers.append(Solution(G, jnp.asarray(1, jnp.int32), converged, diverged, jnp.asarray(jnp.nan, dtype),
                                   jnp.asarray(0, dtype), None, None, stop_status(converged, diverged, ~ok)))
            chain_ok = converged
        layered = cls.from_layers(layers)
        return layered._replace(objective=jnp.asarray(jnp.nan, dtype), state=None)


def _summarise_stages(last: Solution, stages: Solution) -> Solution:
    converged = jnp.all(stages.converged, axis=0)
    diverged = jnp.any(stages.diverged, axis=0)
    bad_input = jnp.any(stages.status == Status.NONFINITE_INPUT, axis=0)
    return last._replace(num_steps=jnp.sum(stages.num_steps, axis=0).astype(jnp.int32), converged=converged,
                         diverged=diverged, error=jnp.max(stages.error, axis=0),
                         status=stop_status(converged, diverged, bad_input))
