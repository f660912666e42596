"""The one iteration driver under every iterative pursuit.

A solver is a pure pair of functions with a NamedTuple state (the optax / blackjax pattern):

    Solver(init, step, codes, error, objective)
      init()            -> state0
      step(state)       -> state
      codes(state)      -> the current estimate
      error(old, new)   -> scalar stopping measure (e.g. relative change ||a_new - a_old|| / ||a_new||)
      objective(state)  -> scalar objective value (evaluated at the start and at the end only)

A factory (``ista_solver(op, y, lam, ...)``) closes over the problem's arrays, which stay traced:
calling the jitted pursuit again with another ``lam``, dictionary or signal of the same shapes
reuses the compiled code.

``iterate`` runs the pair in one of two modes:

* ``mode="while"``: ``lax.while_loop`` until ``error <= tol`` or ``max_iter`` steps. Under
  ``jax.vmap`` each instance stops on its own (its state freezes once converged, its ``num_steps``
  counts its own steps). Not reverse-differentiable.
* ``mode="scan"``: exactly ``max_iter`` steps with ``lax.scan``: reverse-mode ``jax.grad`` works
  (unrolled differentiation) and ``history=True`` records the objective after every step.

Divergence is reported, never hidden: ``diverged`` is set when the iterate or the objective
becomes non-finite or the objective grows above ``divergence_factor`` times its starting value.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

import numpy as np

from sparsejax._validate import as_float_array, check_choice, check_nonnegative

__all__ = ["Solver", "Solution", "iterate", "relative_change", "MODES", "Status", "STATUS_NAMES", "stop_status",
           "status_name", "check_iteration"]

MODES = ("while", "scan")


class Status:
    """Why a solve stopped: the integer codes held by ``Solution.status`` (int32, one per instance under vmap).

    ``CONVERGED``: the stopping measure reached ``tol``. ``MAX_STEPS``: ``max_iter`` steps ran without reaching it.
    ``DIVERGED``: the iterates or the objective blew up (non-finite, or the objective grew without bound).
    ``NONFINITE_INPUT``: the problem itself held NaN or Inf (signal, dictionary, thresholds), so no step was
    meaningful.

    Example:
      >>> status_name(Status.MAX_STEPS)
      'max_steps'
    """

    CONVERGED = 0
    MAX_STEPS = 1
    DIVERGED = 2
    NONFINITE_INPUT = 3


STATUS_NAMES = ("converged", "max_steps", "diverged", "nonfinite_input")


def status_name(code) -> str:
    """The name of a status code (a Python int or a concrete scalar array)."""
    return STATUS_NAMES[int(code)]


def stop_status(converged, diverged, nonfinite_input=False) -> jax.Array:
    """The ``Status`` code from the flags: non-finite input first, then divergence, convergence, max steps.

    Example:
      >>> int(stop_status(jnp.asarray(False), jnp.asarray(False)))
      1
    """
    converged, diverged, bad = jnp.asarray(converged), jnp.asarray(diverged), jnp.asarray(nonfinite_input)
    code = jnp.where(converged, Status.CONVERGED, Status.MAX_STEPS)
    code = jnp.where(diverged, Status.DIVERGED, code)
    return jnp.where(bad, Status.NONFINITE_INPUT, code).astype(jnp.int32)


def check_iteration(max_iter, tol=None, mode=None, *, min_iter: int = 0, modes=MODES) -> int:
    """The one check of the iteration arguments, run before tracing: ``max_iter`` a Python int >= ``min_iter``,
    ``tol`` (when given) a non-negative scalar, ``mode`` (when given) one of ``modes``. Returns ``max_iter``.

    Example:
      >>> check_iteration(100, 1e-6, "while")
      100
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or int(max_iter) < min_iter:
        raise ValueError(f"max_iter must be a Python int >= {min_iter}, got {max_iter!r}")
    if tol is not None:
        t = as_float_array("tol", tol)
        if t.ndim != 0:
            raise ValueError(f"tol must be a scalar, got shape {tuple(t.shape)}")
        check_nonnegative("tol", t)
    if mode is not None:
        check_choice("mode", mode, modes)
    return int(max_iter)


class Solver(NamedTuple):
    init: Callable[[], Any]
    step: Callable[[Any], Any]
    codes: Callable[[Any], jax.Array]
    error: Callable[[Any, Any], jax.Array]
    objective: Optional[Callable[[Any], jax.Array]] = None


class Solution(NamedTuple):
    """Result of a pursuit.

    Attributes:
      codes: the sparse codes.
      num_steps: iterations used (int32 scalar, per instance under vmap).
      converged: True when the stopping measure reached ``tol`` within ``max_iter``.
      diverged: True when iterates/objective blew up (non-finite, or objective growing without bound).
      objective: final objective value (NaN when the solver defines none).
      error: final value of the stopping measure.
      state: the solver's final state (for warm starts and diagnostics).
      history: per-step objective (``mode="scan"`` with ``history=True``), else None.
      status: why the solve stopped, a ``Status`` code (int32; see ``status_name``).
    """

    codes: jax.Array
    num_steps: jax.Array
    converged: jax.Array
    diverged: jax.Array
    objective: jax.Array
    error: jax.Array
    state: Any = None
    history: Optional[jax.Array] = None
    status: Optional[jax.Array] = None


def relative_change(old: jax.Array, new: jax.Array) -> jax.Array:
    """||new - old||_2 / max(||new||_2, tiny): the default stopping measure."""
    d = jnp.sqrt(jnp.sum((new - old) ** 2))
    n = jnp.sqrt(jnp.sum(new**2))
    return d / jnp.maximum(n, jnp.finfo(new.dtype).tiny)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def iterate(
    solver: Solver,
    *,
    max_iter: int,
    tol: float | jax.Array = 1e-6,
    mode: str = "while",
    history: bool = False,
    divergence_factor: float = 1e4,
) -> Solution:
    """Run ``solver`` to convergence (``while``) or for exactly ``max_iter`` steps (``scan``).

    Args:
      solver: the ``Solver`` pair.
      max_iter: static iteration bound.
      tol: tolerance on ``solver.error`` (traced; ``tol=0`` runs all ``max_iter`` steps).
      mode: ``"while"`` or ``"scan"``.
      history: record the objective after each step (``scan`` mode only).
      divergence_factor: objective growth factor over its initial value that counts as divergence.

    Returns:
      ``Solution``.
    """
    check_iteration(max_iter, mode=mode)
    if history and mode != "scan":
        raise ValueError("history=True needs mode='scan' (a while loop has no fixed length to record)")
    if history and solver.objective is None:
        raise ValueError("history=True needs a solver with an objective")

    state0 = solver.init()
    codes0 = solver.codes(state0)
    dtype = codes0.dtype
    tol = jnp.asarray(tol, dtype=dtype)
    inf = jnp.asarray(jnp.inf, dtype=dtype)
    obj0 = solver.objective(state0) if solver.objective is not None else jnp.asarray(jnp.nan, dtype)
    hist = None

    if mode == "while":

        def cond(carry):
            k, _, err = carry
            return (k < max_iter) & ((k == 0) | ((err > tol) & jnp.isfinite(err)))

        def body(carry):
            k, state, _ = carry
            new = solver.step(state)
            return k + 1, new, solver.error(state, new).astype(dtype)

        k, state, err = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), state0, inf))
    else:

        def body(carry, _):
            state, _ = carry
            new = solver.step(state)
            err = solver.error(state, new).astype(dtype)
            out = solver.objective(new) if history else None
            return (new, err), out

        (state, err), hist = lax.scan(body, (state0, inf), None, length=max_iter)
        k = jnp.asarray(max_iter, jnp.int32)

    codes = solver.codes(state)
    obj = solver.objective(state) if solver.objective is not None else jnp.asarray(jnp.nan, dtype)
    finite = _all_finite(codes) & (jnp.isfinite(err) | (k == 0))
    if solver.objective is not None:
        # growth is only meaningful relative to a positive starting value (||a||_1 from a = 0 starts at 0)
        grew = (obj0 > 0) & (obj > divergence_factor * obj0)
        finite = finite & jnp.isfinite(obj)
        diverged = ~finite | grew
    else:
        diverged = ~finite
    converged = (err <= tol) & ~diverged
    # a non-finite objective at the start means the problem itself (signal, dictionary, thresholds) is not finite
    bad_input = ~jnp.isfinite(obj0) if solver.objective is not None else ~_all_finite(codes0)
    status = stop_status(converged, diverged, bad_input)
    return Solution(codes, k, converged, diverged, obj, err, state, hist, status)
