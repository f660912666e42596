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

Long runs lose nothing:

* ``config`` (a dict of the run's settings: lam, sizes, method, a fingerprint of the data, ...; also set for
  every run inside a ``run_config(...)`` block) is stored in every checkpoint, and a resume whose settings
  differ is refused with ``ConfigMismatchError`` naming each differing setting (``resume="force"`` resumes
  anyway, with a warning listing them);
* an unreadable newest checkpoint (truncated, corrupt) is skipped with a ``CheckpointWarning`` naming it, renamed
  to ``<name>.corrupt``, and the run resumes from the newest readable one; temporary files of an interrupted
  write are removed at start;
* the checkpoint folder is checked for writing before the first step, and a failed checkpoint write stops the
  run with ``CheckpointWriteError`` (its ``state`` and ``step`` attributes hold the unsaved state).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from sparsejax import _validate as V
from sparsejax.learn.checkpoint import (
    CheckpointWarning,
    CheckpointWriteError,
    checkpoint_path,
    load_latest,
    remove_temporary,
    save_checkpoint,
)

__all__ = ["run_loop", "LoopResult", "STATUSES", "run_config", "ConfigMismatchError"]

STATUSES = ("completed", "diverged", "stopped")

_CONFIG: contextvars.ContextVar = contextvars.ContextVar("sparsejax_run_config", default=None)


class ConfigMismatchError(ValueError):
    """A checkpoint folder holds a run whose recorded settings differ from this run's (names them).

    Example:
      >>> from sparsejax.learn.loop import ConfigMismatchError
      >>> issubclass(ConfigMismatchError, ValueError)
      True
    """


@contextlib.contextmanager
def run_config(config: dict):
    """Settings recorded in (and checked against) the checkpoints of every ``run_loop`` inside the block.

    For callers that reach ``run_loop`` through a learner which does not pass a ``config`` itself (the
    ``sparsejax learn`` command wraps every learner this way). An explicit ``config=`` of ``run_loop`` is
    merged over these settings; blocks nest (the inner one is merged over the outer one).

    Args:
      config: a dict of settings (JSON values, numbers, strings, arrays: see ``run_loop``).

    Example: the second run has another lam and is refused.
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.loop import ConfigMismatchError, run_config, run_loop
      >>> step = lambda x: (0.5 * x, {})
      >>> with tempfile.TemporaryDirectory() as d:
      ...     with run_config({"lam": 0.2}):
      ...         _ = run_loop(step, jnp.asarray(1.0), 2, checkpoint_dir=d, progress=False)
      ...     try:
      ...         with run_config({"lam": 5.0}):
      ...             run_loop(step, jnp.asarray(1.0), 4, checkpoint_dir=d, progress=False)
      ...     except ConfigMismatchError as e:
      ...         print("lam: 0.2 in the checkpoint, 5.0 in this run" in str(e))
      True
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings, got {type(config).__name__}")
    outer = _CONFIG.get() or {}
    token = _CONFIG.set({**outer, **config})
    try:
        yield
    finally:
        _CONFIG.reset(token)


def _config_value(v):
    """A JSON value that identifies ``v``: small arrays as lists, larger ones by shape, dtype and hash."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return [_config_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _config_value(x) for k, x in v.items()}
    if isinstance(v, Path):
        return str(v)
    dt = getattr(v, "dtype", None)
    if dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key):
        v = jax.random.key_data(v)
    if isinstance(v, (np.ndarray, np.generic, jax.Array)):
        a = np.asarray(jax.device_get(v))
        if a.dtype.kind not in "biuf":
            return f"array {a.shape} {a.dtype}"
        if a.size <= 8:
            return _config_value(a.tolist())
        digest = hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
        return f"array {a.shape} {a.dtype} sha1 {digest}"
    return type(v).__name__  # optimisers, functions, ...: only their kind can be compared across processes


def _normalise_config(config) -> Optional[dict]:
    ctx = _CONFIG.get()
    if config is None and ctx is None:
        return None
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config must be a dict of settings or None, got {type(config).__name__}")
    merged = {**(ctx or {}), **(config or {})}
    return {str(k): _config_value(v) for k, v in merged.items()}


def _config_differences(saved: dict, current: dict) -> list:
    out = []
    for k in sorted(set(saved) | set(current)):
        a, b = saved.get(k, "(not recorded)"), current.get(k, "(not recorded)")
        if a != b:
            out.append(f"{k}: {a} in the checkpoint, {b} in this run")
    return out


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and write / delete a probe file in it; CheckpointWriteError naming it if that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_probe_"):
            pass
    except OSError as e:
        raise CheckpointWriteError(f"checkpoint_dir {folder} is not a writable folder ({e.strerror or e}); "
                                   "nothing was computed") from e


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
    config: Optional[dict] = None,
) -> LoopResult:
    """Run ``state, metrics = step_fn(state)`` for ``num_steps`` steps with checkpoints and resume.

    Args:
      step_fn: ``step_fn(state) -> (new_state, metrics)``; metrics a dict of real scalars (may be empty).
      state: initial pytree state; also the template the checkpoint is restored into on resume.
      num_steps: total number of steps of the run (resumed steps included).
      checkpoint_dir: folder for ``ckpt_<step>.npz`` files; None disables checkpointing and resume.
      checkpoint_every: save every this many completed steps (and always at the end / at ``stop_after``).
      resume: True: continue from the newest readable checkpoint in ``checkpoint_dir`` if there is one, after
        checking that its recorded ``config`` equals this run's; "force": continue even if the settings
        differ (a warning lists them); False: start afresh (checkpoints of the same steps are overwritten).
      progress: show a tqdm bar (latest metrics, time left).
      desc: label of the bar.
      stop_after: stop (status ``"stopped"``, checkpoint saved) once this many steps in total are done;
        simulates an interruption.
      keep: number of most recent checkpoints kept on disk.
      config: the run's settings (dict; JSON values, numbers, arrays, PRNG keys: arrays of more than 8 entries
        are recorded by shape, dtype and hash, other objects by type name), merged over those of an enclosing
        ``run_config`` block; stored in every checkpoint and compared on resume. ``num_steps`` is not part of
        it: a run may be resumed with a larger ``num_steps``.

    Returns:
      ``LoopResult(state, history, steps, status, message, resumed_from)``.

    Raises:
      ConfigMismatchError (a ValueError): resuming a checkpoint whose recorded settings differ (each named),
        unless ``resume="force"``.
      CheckpointWriteError (an OSError): ``checkpoint_dir`` cannot be written (raised before the first step),
        or a checkpoint write failed during the run (``.state`` / ``.step``: the state not saved).
      ValueError: the newest readable checkpoint does not fit ``state`` (structure, shape, dtype).

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
    if not (resume is True or resume is False or resume == "force"):
        raise ValueError(f"resume must be True, False or 'force', got {resume!r}")
    config = _normalise_config(config)
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
            raise ValueError(f"checkpoint_dir {checkpoint_dir} exists and is not a folder")
        _check_writable(checkpoint_dir)
        remove_temporary(checkpoint_dir)

    start, resumed_from, history = 0, None, None
    if checkpoint_dir is not None and resume:
        found = load_latest(checkpoint_dir, state, quarantine=True)
        if found is not None:
            ck, path, _ = found
            saved = (ck.extra or {}).get("config") if isinstance(ck.extra, dict) else None
            if config is not None and saved is None:
                warnings.warn(f"checkpoint {path} records no run settings (written by an older version): "
                              "resuming without checking that it belongs to this run", CheckpointWarning,
                              stacklevel=2)
            elif config is not None:
                diff = _config_differences(saved, config)
                if diff and resume != "force":
                    raise ConfigMismatchError(
                        f"checkpoint {path} was written by a run with other settings ({'; '.join(diff)}). "
                        "Use another checkpoint folder, or resume=False to start afresh, or resume='force' "
                        "(sparsejax learn: --force-resume) to continue that run anyway")
                if diff:
                    warnings.warn(f"resuming {path} although its settings differ: {'; '.join(diff)}",
                                  CheckpointWarning, stacklevel=2)
            state, start, resumed_from = ck.tree, ck.step, ck.step
            history = (ck.extra or {}).get("history")
    hist = _History(start, history)
    last_saved = resumed_from

    def save(step, st):
        nonlocal last_saved
        if checkpoint_dir is None or last_saved == step:
            return
        extra = {"history": hist.arrays(), "num_steps": int(num_steps)}
        if config is not None:
            extra["config"] = config
        try:
            save_checkpoint(checkpoint_path(checkpoint_dir, step), st, step=step, extra=extra, keep=keep)
        except CheckpointWriteError as e:
            err = CheckpointWriteError(f"{e}; the run stopped at step {step} of {num_steps} (its state is not "
                                       f"saved; last checkpoint on disk: step {last_saved})")
            err.state, err.step = st, step
            raise err from e
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
