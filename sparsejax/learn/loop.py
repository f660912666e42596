"""The one training loop under every learning algorithm: progress, checkpoints, exact resume, divergence.

    result = run_loop(step_fn, state, num_steps, checkpoint_dir="runs/dl", checkpoint_every=50)

``step_fn(state) -> (new_state, metrics)`` is one step of any learning method (a jitted Optax update,
one K-SVD sweep, ...); ``state`` is any pytree of arrays (dictionaries, optimiser state, PRNG key);
``metrics`` a dict of scalars. The loop

* counts completed steps and records every metric in a history (name -> array over steps);
* checks ``metrics["loss"]`` (if present) and every floating leaf of the new state for NaN / inf: a
  non-finite value stops the run (status ``"diverged"``), returns the last good state and leaves the
  last good checkpoint on disk untouched;
* saves (state, step, history) atomically every ``checkpoint_every`` steps and at the end
  (``sparsejax.learn.checkpoint``), and on resume restores them, so an interrupted run continued with
  ``resume=True`` ends in exactly the same state, bit for bit, as an uninterrupted one (``step_fn``
  must be deterministic given the state, e.g. it splits a PRNG key held in the state);
* shows a tqdm bar with the latest metrics and the time left (``progress=False`` silences it).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from sparsejax import _validate as V
from sparsejax.learn.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["run_loop", "LoopResult", "STATUSES"]

STATUSES = ("completed", "diverged", "stopped")


class LoopResult(NamedTuple):
    """Outcome of ``run_loop``.

    Attributes:
      state: the final state (for ``"diverged"``: the last good state, before the bad step).
      history: metric name -> float64 array with one entry per completed step (NaN where a step did not
        report that metric), including the steps done before a resume.
      steps: number of completed (good) steps.
      status: ``"completed"``, ``"diverged"`` or ``"stopped"`` (``stop_after`` reached).
      message: a human-readable summary (for divergence: the metric or state leaf and the step).
      resumed_from: the step of the checkpoint the run resumed from, None for a fresh start.

    Example: see ``run_loop``.
      >>> from sparsejax.learn.loop import LoopResult
      >>> LoopResult._fields
      ('state', 'history', 'steps', 'status', 'message', 'resumed_from')
    """

    state: Any
    history: Dict[str, np.ndarray]
    steps: int
    status: str
    message: str
    resumed_from: Optional[int]


def _inexact_leaves(tree):
    out = []
    for kp, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dt = getattr(leaf, "dtype", None)
        if dt is None:
            dt = np.asarray(leaf).dtype
        if not jax.dtypes.issubdtype(dt, jax.dtypes.prng_key) and jnp.issubdtype(dt, jnp.inexact):
            out.append((jax.tree_util.keystr(kp), leaf))
    return out


@jax.jit
def _finite_flags(leaves):
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])


def _first_nonfinite_leaf(tree) -> Optional[str]:
    leaves = _inexact_leaves(tree)
    if not leaves:
        return None
    flags = np.asarray(_finite_flags([x for _, x in leaves]))
    bad = np.flatnonzero(~flags)
    if bad.size == 0:
        return None
    return leaves[int(bad[0])][0] or "(the state itself)"


class _History:
    """Metric name -> list of floats, padded with NaN so that every list has one entry per step."""

    def __init__(self, start: int, initial: Optional[dict] = None):
        self.n = start
        self.values = {k: list(np.asarray(v, np.float64)) for k, v in (initial or {}).items()}
        for k, v in self.values.items():  # a checkpoint always holds full-length lists; be lenient anyway
            if len(v) < start:
                v.extend([math.nan] * (start - len(v)))
            del v[start:]

    def append(self, metrics: dict) -> None:
        for k, v in metrics.items():
            if k not in self.values:
                self.values[k] = [math.nan] * self.n
            self.values[k].append(v)
        self.n += 1
        for v in self.values.values():
            if len(v) < self.n:
                v.append(math.nan)

    def arrays(self) -> Dict[str, np.ndarray]:
        return {k: np.asarray(v, np.float64) for k, v in self.values.items()}


def _host_metrics(metrics, step: int) -> dict:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f"step_fn must return (new_state, metrics) with metrics a dict of scalars, "
                        f"got {type(metrics).__name__} at step {step}")
    host = jax.device_get(metrics)
    out = {}
    for k, v in host.items():
        if not isinstance(k, str):
            raise TypeError(f"metric names must be strings, got {k!r}")
        a = np.asarray(v)
        if a.size != 1 or a.dtype.kind not in "biuf":
            raise TypeError(f"metric {k!r} must be a real scalar, got {a.dtype} array of shape {a.shape} "
                            f"at step {step}")
        out[k] = float(a.reshape(()))
    return out


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def run_loop(
    step_fn: Callable[[Any], tuple],
    state: Any,
    num_steps: int,
    *,
    checkpoint_dir=None,
    checkpoint_every: int = 50,
    resume: bool = True,
    progress: bool = True,
    desc: str = "learning",
    stop_after: Optional[int] = None,
    keep: int = 3,
) -> LoopResult:
    """Run ``state, metrics = step_fn(state)`` for ``num_steps`` steps with checkpoints and resume.

    Args:
      step_fn: ``step_fn(state) -> (new_state, metrics)``; metrics a dict of real scalars (may be empty).
      state: initial pytree state; also the template the checkpoint is restored into on resume.
      num_steps: total number of steps of the run (resumed steps included).
      checkpoint_dir: folder for ``ckpt_<step>.npz`` files; None disables checkpointing and resume.
      checkpoint_every: save every this many completed steps (and always at the end / at ``stop_after``).
      resume: continue from the latest checkpoint in ``checkpoint_dir`` if there is one.
      progress: show a tqdm bar (latest metrics, time left).
      desc: label of the bar.
      stop_after: stop (status ``"stopped"``, checkpoint saved) once this many steps in total are done;
        simulates an interruption.
      keep: number of most recent checkpoints kept on disk.

    Returns:
      ``LoopResult(state, history, steps, status, message, resumed_from)``.

    A ``KeyboardInterrupt`` during a step saves the last completed state (when checkpointing) and is
    re-raised. Divergence (non-finite ``metrics["loss"]`` or non-finite floating leaf of the new state)
    stops the run without saving: the newest checkpoint on disk is the last periodic one before it.

    Example: gradient descent on x^2, interrupted after 3 steps and resumed to the same end.
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.loop import run_loop
      >>> step = lambda x: (0.5 * x, {"loss": x * x})
      >>> full = run_loop(step, jnp.asarray(8.0), 5, progress=False)
      >>> with tempfile.TemporaryDirectory() as d:
      ...     part = run_loop(step, jnp.asarray(8.0), 5, checkpoint_dir=d, stop_after=3, progress=False)
      ...     rest = run_loop(step, jnp.asarray(8.0), 5, checkpoint_dir=d, progress=False)
      >>> part.status, rest.resumed_from, float(rest.state) == float(full.state), rest.history["loss"].tolist()
      ('stopped', 3, True, [64.0, 16.0, 4.0, 1.0, 0.25])
      >>> run_loop(lambda x: (x * jnp.inf, {}), jnp.asarray(1.0), 3, progress=False).status
      'diverged'
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    V.check_int("num_steps", num_steps)
    V.check_positive_int("checkpoint_every", checkpoint_every)
    if stop_after is not None:
        V.check_int("stop_after", stop_after)
    V.check_positive_int("keep", keep)
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
            raise ValueError(f"checkpoint_dir {checkpoint_dir} exists and is not a folder")

    start, resumed_from, history = 0, None, None
    if checkpoint_dir is not None and resume:
        found = latest_checkpoint(checkpoint_dir)
        if found is not None:
            ck = load_checkpoint(found, state)
            state, start, resumed_from = ck.tree, ck.step, ck.step
            history = (ck.extra or {}).get("history")
    hist = _History(start, history)
    last_saved = resumed_from

    def save(step, st):
        nonlocal last_saved
        if checkpoint_dir is None or last_saved == step:
            return
        save_checkpoint(checkpoint_path(checkpoint_dir, step), st, step=step,
                        extra={"history": hist.arrays(), "num_steps": int(num_steps)}, keep=keep)
        last_saved = step

    end = num_steps if stop_after is None else min(num_steps, stop_after)
    step, status, message = start, "completed", ""
    bar = None
    if progress and end > start:
        bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True, leave=True)
    t0 = time.perf_counter()
    try:
        while step < end:
            try:
                new_state, metrics = step_fn(state)
            except KeyboardInterrupt:
                save(step, state)
                raise
            host = _host_metrics(metrics, step + 1)
            loss = host.get("loss")
            if loss is not None and not math.isfinite(loss):
                status = "diverged"
                message = (f"diverged at step {step + 1}: metric 'loss' = {loss}; returning the last good state "
                           f"(step {step}), checkpoints on disk left as they were")
                break
            leaf = _first_nonfinite_leaf(new_state)
            if leaf is not None:
                status = "diverged"
                message = (f"diverged at step {step + 1}: non-finite values in state leaf {leaf}; returning "
                           f"the last good state (step {step}), checkpoints on disk left as they were")
                break
            state = new_state
            step += 1
            hist.append(host)
            if bar is not None:
                bar.set_postfix({k: _fmt(v) for k, v in host.items()}, refresh=False)
                bar.update(1)
            if step % checkpoint_every == 0:
                save(step, state)
    finally:
        if bar is not None:
            bar.close()

    if status != "diverged":
        if step < num_steps:
            status = "stopped"
            message = f"stopped after {step} of {num_steps} steps (stop_after={stop_after})"
        else:
            message = f"completed {num_steps} steps"
        if resumed_from is not None:
            message += f" (resumed from step {resumed_from})"
        message += f" in {time.perf_counter() - t0:.1f} s"
        save(step, state)
    return LoopResult(state, hist.arrays(), step, status, message, resumed_from)
