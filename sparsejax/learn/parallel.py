"""Data-parallel dictionary learning over processes (JAX's multi-controller runtime) and devices.

Every process holds its own rows of the training set (signals for MOD / K-SVD / online / Optax, images for
convolutional learning). They form one global batch (the processes' rows concatenated in process order,
``sparsejax.distributed.to_global``), split by rows over a mesh of every process's devices; the learner state
(dictionary, online statistics, optimiser state, PRNG key) is replicated, the per-image codes of convolutional
learning are split with their images. Each step is the one-process step (``sparsejax.learn.dense.mod_step``,
``ksvd_step``, ``online_step``, ``optax_step``; ``sparsejax.learn.conv.admm_step``, ``optax_step``) compiled
once for the global arrays: XLA's SPMD partitioner runs the per-signal work (sparse coding, residuals) on the
devices that hold the signals and turns every sum over signals -- the MOD normal equations A^T A and A^T Y, the
K-SVD error Gram matrices E_j^T E_j, the online statistics sum a a^T and sum y a^T, the Optax gradient, the
ConvCnstrMOD code Gram matrices, the losses -- into per-device partial sums combined by an all-reduce across
processes. The program is the one-process program, so the learned dictionary equals the one-process result on the
same data up to the order of floating-point summation.

Checkpoints: every ``checkpoint_every`` steps the state is gathered to the host (a collective for the parts split
over processes) and process 0 alone writes it atomically (``sparsejax.learn.checkpoint.save_checkpoint``) into a
folder every process can read (a shared file system on a cluster); the others wait for the write. On resume
process 0 picks the newest readable checkpoint and every process restores that same step, so a run interrupted
and resumed -- on the same number of processes or another -- ends in the same state.

    from sparsejax import distributed
    from sparsejax.learn.parallel import learn_dictionary_parallel
    distributed.initialize()                        # SPARSEJAX_* variables, or a SLURM / TPU-pod cluster
    Y_local = my_share_of_the_signals()             # (B, n), the same B on every process
    res = learn_dictionary_parallel(Y_local, 256, method="ksvd", sparsity=8, checkpoint_dir="/shared/run1")
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from sparsejax import _validate as V
from sparsejax.dictionary import normalize_atoms
from sparsejax.differentiate import lasso_codes
from sparsejax.distributed import (
    agree,
    encode_global,
    gather,
    global_mesh,
    local_rows,
    to_global,
    to_host,
)
from sparsejax.learn import conv as cdl
from sparsejax.learn import dense
from sparsejax.learn.checkpoint import (
    CheckpointWriteError,
    checkpoint_path,
    load_checkpoint,
    load_latest,
    remove_temporary,
    save_checkpoint,
)
from sparsejax.learn.loop import ConfigMismatchError, LoopResult

__all__ = ["data_fingerprint", "learn_conv_dictionary_parallel", "learn_dictionary_parallel", "parallel_loop"]


# ----------------------------------------------------------------------------------------------------
# agreement between processes
# ----------------------------------------------------------------------------------------------------
def _allgather_small(x: np.ndarray) -> np.ndarray:
    if jax.process_count() == 1:
        return np.asarray(x)[None]
    return np.asarray(multihost_utils.process_allgather(np.asarray(x)))


def _agree(errors: list) -> None:
    """Raise on every process if any process found an error (so that no process waits in a collective)."""
    agree(ValueError(errors[0]) if errors else None)


def _broadcast_int(value: int) -> int:
    if jax.process_count() == 1:
        return int(value)
    return int(multihost_utils.broadcast_one_to_all(np.asarray(value, np.int64)))


def data_fingerprint(local) -> str:
    """A short hash of the global data set (every process's rows, in process order): the same on every process.
    A collective."""
    h = hashlib.sha256(np.ascontiguousarray(local_rows(local)).tobytes()).digest()[:8]
    parts = _allgather_small(np.frombuffer(h, np.uint8)).reshape(-1)
    return hashlib.sha256(parts.tobytes()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------------
def _place(state, mesh: Mesh):
    """Leaves already spread over processes stay; every other leaf becomes a replicated global array."""
    rep = NamedSharding(mesh, P())

    def leaf(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return x
        host = np.asarray(x)
        host = host.astype(x.dtype if isinstance(x, jax.Array) else jax.dtypes.canonicalize_dtype(host.dtype))
        return jax.make_array_from_callback(host.shape, rep, lambda idx: host[idx])
    return jax.tree_util.tree_map(leaf, state)


def _restore_like(host_tree, template):
    """Host arrays -> global arrays with the template's shardings."""
    def leaf(h, t):
        h = np.asarray(h)
        return jax.make_array_from_callback(h.shape, t.sharding, lambda idx: h[idx])
    return jax.tree_util.tree_map(leaf, host_tree, template)


@jax.jit
def _finite_flags(leaves):
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])


def _first_nonfinite(state) -> str | None:
    items = [(jax.tree_util.keystr(kp), x) for kp, x in jax.tree_util.tree_flatten_with_path(state)[0]
             if jnp.issubdtype(x.dtype, jnp.inexact)]
    if not items:
        return None
    flags = gather(_finite_flags([x for _, x in items]))
    bad = np.flatnonzero(~flags)
    return None if bad.size == 0 else (items[int(bad[0])][0] or "(the state itself)")


def parallel_loop(step_fn: Callable, state: Any, num_steps: int, *, mesh: Mesh | None = None, checkpoint_dir=None,
                  checkpoint_every: int = 50, resume: bool = True, progress: bool = False, desc: str = "learning",
                  stop_after: int | None = None, keep: int = 3, config: dict | None = None) -> LoopResult:
    """``sparsejax.learn.loop.run_loop`` for a state of global arrays, run by every process in step.

    Every process calls it with the same ``step_fn`` (one SPMD step over global arrays), initial state and
    settings. Metrics and the divergence check read replicated values, so every process takes the same branch.
    Checkpoints: the state is gathered (a collective), process 0 writes ``ckpt_<step>.npz`` with the history and
    ``config``, the others wait for it; on resume process 0 chooses the newest readable checkpoint (quarantining
    damaged ones), every process restores that step into the shardings of ``state``, and a recorded ``config``
    that differs from this run's is refused with ``ConfigMismatchError`` (``resume="force"`` continues).

    Args:
      step_fn: ``step_fn(state) -> (new_state, metrics)`` over global arrays; metrics replicated scalars.
      state: initial state: global arrays, or host values (made replicated global arrays on ``mesh``).
      num_steps, checkpoint_every, resume, desc, stop_after, keep, config: as ``run_loop``.
      mesh: the mesh of the replicated leaves (default ``sparsejax.distributed.global_mesh()``).
      checkpoint_dir: a folder every process reads (process 0 writes it), or None.
      progress: a tqdm bar on process 0.

    Returns:
      ``LoopResult`` (state of global arrays; history on every process).

    Example: one process, gradient descent on x^2.
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.parallel import parallel_loop
      >>> res = parallel_loop(lambda x: (0.5 * x, {"loss": x * x}), jnp.asarray(8.0), 3)
      >>> res.status, res.history["loss"].tolist(), float(res.state)
      ('completed', [64.0, 16.0, 4.0], 1.0)
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    V.check_int("num_steps", num_steps)
    V.check_positive_int("checkpoint_every", checkpoint_every)
    V.check_positive_int("keep", keep)
    if stop_after is not None:
        V.check_int("stop_after", stop_after)
    if not (resume is True or resume is False or resume == "force"):
        raise ValueError(f"resume must be True, False or 'force', got {resume!r}")
    mesh = global_mesh() if mesh is None else mesh
    state = _place(state, mesh)
    pid = jax.process_index()
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
            raise ValueError(f"checkpoint_dir {checkpoint_dir} exists and is not a folder")

    start, resumed_from, history = 0, None, {}
    if checkpoint_dir is not None and resume:
        like = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), state)
        found, chosen = None, -1
        if pid == 0 and checkpoint_dir.is_dir():
            remove_temporary(checkpoint_dir)
            found = load_latest(checkpoint_dir, like, quarantine=True)
            chosen = -1 if found is None else found[0].step
        chosen = _broadcast_int(chosen)
        if chosen >= 0:
            ck = found[0] if pid == 0 else load_checkpoint(checkpoint_path(checkpoint_dir, chosen), like)
            saved = (ck.extra or {}).get("config") if isinstance(ck.extra, dict) else None
            if config is not None and saved is not None and saved != config and resume != "force":
                diff = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
                raise ConfigMismatchError(f"checkpoint {checkpoint_path(checkpoint_dir, chosen)} was written by a run "
                                          f"with other settings ({', '.join(diff)}); use another folder, "
                                          "resume=False, or resume='force'")
            state = _restore_like(ck.tree, state)
            start = resumed_from = chosen
            history = {k: list(np.asarray(v, np.float64)[:chosen]) for k, v in ((ck.extra or {}).get("history") or {}).items()}

    last_saved = resumed_from

    def save(step, st):
        nonlocal last_saved
        if checkpoint_dir is None or last_saved == step:
            return
        host = to_host(st)                                    # collective for leaves split over processes
        ok, why = 1, ""
        if pid == 0:
            extra = {"history": {k: np.asarray(v, np.float64) for k, v in history.items()},
                     "num_steps": int(num_steps), "num_processes": jax.process_count()}
            if config is not None:
                extra["config"] = config
            try:
                save_checkpoint(checkpoint_path(checkpoint_dir, step), host, step=step, extra=extra, keep=keep)
            except CheckpointWriteError as e:
                ok, why = 0, str(e)
        if not _broadcast_int(ok):                            # also the barrier: nobody runs ahead of the write
            err = CheckpointWriteError(f"process 0 could not write the checkpoint of step {step}"
                                       f"{': ' + why if why else ''}; last checkpoint on disk: step {last_saved}")
            err.state, err.step = st, step
            raise err
        last_saved = step

    end = num_steps if stop_after is None else min(num_steps, stop_after)
    step, status, message = start, "completed", ""
    bar = tqdm(total=num_steps, initial=start, desc=desc, dynamic_ncols=True) if progress and pid == 0 and end > start \
        else None
    t0 = time.perf_counter()
    try:
        while step < end:
            new_state, metrics = step_fn(state)
            host = {k: float(np.asarray(gather(v)).reshape(())) for k, v in (metrics or {}).items()}
            loss = host.get("loss")
            if loss is not None and not math.isfinite(loss):
                status = "diverged"
                message = (f"diverged at step {step + 1}: metric 'loss' = {loss}; returning the last good state "
                           f"(step {step})")
                break
            leaf = _first_nonfinite(new_state)
            if leaf is not None:
                status = "diverged"
                message = f"diverged at step {step + 1}: non-finite values in state leaf {leaf}"
                break
            state = new_state
            for k in set(history) | set(host):
                history.setdefault(k, [math.nan] * step)
                history[k].append(host.get(k, math.nan))
            step += 1
            if bar is not None:
                bar.update(1)
            if step % checkpoint_every == 0:
                save(step, state)
    finally:
        if bar is not None:
            bar.close()
    if status != "diverged":
        if step < num_steps:
            status, message = "stopped", f"stopped after {step} of {num_steps} steps (stop_after={stop_after})"
        else:
            message = f"completed {num_steps} steps"
        if resumed_from is not None:
            message += f" (resumed from step {resumed_from})"
        message += f" in {time.perf_counter() - t0:.1f} s on {jax.process_count()} process(es)"
        save(step, state)
    return LoopResult(state, {k: np.asarray(v, np.float64) for k, v in history.items()}, step, status, message,
                      resumed_from)


# ----------------------------------------------------------------------------------------------------
# dense learners
# ----------------------------------------------------------------------------------------------------
def _local_float_rows(name: str, x, ndims) -> tuple:
    errors = []
    try:
        x = np.asarray(local_rows(x))
        if x.dtype.kind not in "f" or x.dtype.itemsize < 4:
            errors.append(f"{name} must be a float32 or float64 array, got dtype {x.dtype}")
        elif x.ndim not in ndims:
            errors.append(f"{name} must have {' or '.join(map(str, ndims))} dimensions (rows first), got shape "
                          f"{x.shape}")
        elif not np.all(np.isfinite(x)):
            errors.append(f"{name} contains NaN or infinite values (process {jax.process_index()})")
    except (TypeError, ValueError) as e:
        errors.append(f"{name}: {e}")
    _agree(errors)
    return x


def _learner_config(kind: str, fingerprint: str, **settings) -> dict:
    def value(v):
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            return v
        if isinstance(v, tuple):
            return list(v)
        a = np.asarray(v)
        if a.size <= 8 and a.dtype.kind in "biuf":
            return a.tolist()
        return f"{type(v).__name__}:{hashlib.sha256(a.tobytes()).hexdigest()[:16]}"
    return {"learner": kind, "data": fingerprint, **{k: value(v) for k, v in settings.items()}}


def learn_dictionary_parallel(Y, n_atoms: int, *, method: str = "ksvd", sparsity: int | None = None, lam=None,
                              n_steps: int = 50, batch_size: int | None = None, key=None, init="data",
                              optimizer=None, forget: float = 10.0, n_sweeps: int = 1, mode: str | None = None,
                              max_iter: int = 100, dup_threshold: float = 0.99, min_usage: float = 0.0,
                              mesh: Mesh | None = None, checkpoint_dir=None, checkpoint_every: int = 50,
                              resume=True, progress: bool = False, stop_after: int | None = None,
                              return_codes: bool = True) -> dense.DictLearnResult:
    """``sparsejax.learn.dense.learn_dictionary`` of a training set spread over processes (module docstring).

    Every process calls it with its own rows ``Y`` (B, n) -- the same B everywhere -- and the same settings; the
    result equals ``learn_dictionary`` of all processes' rows concatenated in process order (same ``key``, same
    settings), up to float rounding.

    Args:
      Y: this process's training signals (B, n), or a row-split global array.
      settings: ``n_atoms``, ``method``, ``sparsity``, ``lam``, ``n_steps``, ``batch_size``, ``key``, ``init``,
        ``optimizer``, ``forget``, ``n_sweeps``, ``mode``, ``max_iter``, ``dup_threshold``, ``min_usage``: as
        ``learn_dictionary`` (``batch_size`` counts signals of the global batch).
      mesh: 1-D mesh of the global batch (default ``sparsejax.distributed.global_mesh()``).
      loop settings: ``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``progress``, ``stop_after``: as
        ``parallel_loop`` (process 0 writes).
      return_codes: also code the training signals with the learned dictionary (a global array split by rows).

    Returns:
      ``DictLearnResult(dictionary, codes, loop, method)``: ``dictionary`` an ordinary (n, m) array, the same on
      every process; ``codes`` global (or None); ``loop`` the ``parallel_loop`` result.

    Example: one process (``tests/test_multiprocess.py`` compares 2 and 4 processes with ``learn_dictionary``).
      >>> import jax
      >>> import numpy as np
      >>> from sparsejax.learn.parallel import learn_dictionary_parallel
      >>> Y = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (24, 6)))
      >>> res = learn_dictionary_parallel(Y, 8, method="mod", sparsity=2, n_steps=2, return_codes=False)
      >>> res.dictionary.shape, res.loop.status, res.loop.history["loss"].shape
      ((6, 8), 'completed', (2,))
    """
    Y_local = _local_float_rows("Y", Y, (2,))
    V.check_choice("method", method, dense.METHODS)
    n_atoms = V.check_positive_int("n_atoms", n_atoms)
    n_steps = V.check_positive_int("n_steps", n_steps)
    mesh = global_mesh() if mesh is None else mesh
    Yg = to_global(Y_local, mesh)
    N, n = Yg.shape
    if N < n_atoms:
        raise ValueError(f"Y has {N} signals over all processes, fewer than n_atoms = {n_atoms}")
    if batch_size is not None:
        batch_size = V.check_positive_int("batch_size", batch_size, N, "number of signals over all processes")
    if sparsity is not None:
        sparsity = V.check_positive_int("sparsity", sparsity, min(n, n_atoms), "min(signal dimension, n_atoms)")
    if method in ("ksvd", "mod") and sparsity is None:
        raise ValueError(f"method={method!r} codes with OMP: give sparsity (atoms per signal, an int)")
    if method == "optax" and lam is None:
        raise ValueError("method='optax' learns through the Lasso: give lam (l1 weight >= 0)")
    if method == "online" and sparsity is None and lam is None:
        raise ValueError("method='online' needs sparsity (OMP codes) or lam (Lasso codes)")
    dtype = Y_local.dtype
    if lam is not None:
        lam = float(V.check_nonnegative_scalar("lam", lam))
    key = jax.random.PRNGKey(0) if key is None else key
    key, sub = jax.random.split(key)
    D0 = dense.init_dictionary(Yg, n_atoms, sub, init)
    if method in ("online", "optax") and batch_size is None:
        batch_size = min(N, 256)
    if method == "optax":
        optimizer = optax.adam(3e-2) if optimizer is None else optimizer
        state = dense.init_state(method, D0, key, optimizer=optimizer)
    else:
        state = dense.init_state(method, D0, key)
    state = _place(state, mesh)
    rep = lambda v: _place(jnp.asarray(v, dtype), mesh)
    if method in ("mod", "ksvd"):
        fn = dense.mod_step if method == "mod" else dense.ksvd_step
        step = partial(fn, Y=Yg, sparsity=sparsity, batch_size=batch_size, dup_threshold=dup_threshold,
                       min_usage=rep(min_usage))
    elif method == "online":
        step = partial(dense.online_step, Y=Yg, lam=None if lam is None else rep(lam), sparsity=sparsity,
                       batch_size=batch_size, forget=rep(forget), n_sweeps=n_sweeps, dup_threshold=dup_threshold,
                       min_usage=rep(min_usage))
    else:
        step = partial(dense.optax_step, Y=Yg, lam=rep(lam), optimizer=optimizer, batch_size=batch_size, mode=mode,
                       max_iter=max_iter)
    config = None
    if checkpoint_dir is not None:
        config = _learner_config("learn_dictionary_parallel", data_fingerprint(Y_local), method=method,
                                 n_atoms=n_atoms, sparsity=sparsity, lam=lam, batch_size=batch_size, init=D0,
                                 forget=float(forget), n_sweeps=n_sweeps, mode=mode, max_iter=max_iter,
                                 dup_threshold=float(dup_threshold), min_usage=float(min_usage),
                                 optimizer=None if optimizer is None else type(optimizer).__name__)
    loop = parallel_loop(step, state, n_steps, mesh=mesh, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, resume=resume, progress=progress,
                         desc=f"{method} dictionary learning ({jax.process_count()} processes)",
                         stop_after=stop_after, config=config)
    D = normalize_atoms(jnp.asarray(gather(loop.state.D)))
    codes = None
    if return_codes:
        if sparsity is not None:
            codes = encode_global(D, Y_local, "omp", k=sparsity, mesh=mesh).codes
        elif method == "optax":
            local = jax.vmap(lambda y: lasso_codes(D, y, jnp.asarray(lam, dtype), mode=mode, max_iter=max_iter))(
                jnp.asarray(Y_local))
            codes = to_global(np.asarray(local), mesh)
        else:
            codes = encode_global(D, Y_local, "lasso", lam=lam, mesh=mesh).codes
    return dense.DictLearnResult(D, codes, loop, method)


# ----------------------------------------------------------------------------------------------------
# convolutional learners
# ----------------------------------------------------------------------------------------------------
def learn_conv_dictionary_parallel(images, n_filters: int, filter_size, lam, *, method: str = "admm",
                                   n_steps: int = 100, key=None, init=None, x_iter: int | None = None,
                                   d_iter: int = 1, x_rho=None, d_rho=10.0, alpha=1.8, zero_mean: bool = False,
                                   auto_rho: bool = True, rho_period: int = 10, rho_ratio: float = 10.0,
                                   optimizer=None, mesh: Mesh | None = None, checkpoint_dir=None,
                                   checkpoint_every: int = 50, resume=True, progress: bool = False,
                                   stop_after: int | None = None) -> cdl.ConvDictLearnResult:
    """``sparsejax.learn.conv.learn_conv_dictionary`` of images spread over processes (module docstring): the images
    and their codes are split by image, the filters and the dictionary-update state replicated; the sums over
    images of the ConvCnstrMOD update (and the Optax gradient) are all-reduced.

    Args:
      images: this process's signals (B, N) or images (B, H, W) (the same B on every process), or a row-split
        global array.
      settings: ``n_filters``, ``filter_size``, ``lam``, ``method``, ``n_steps``, ``key``, ``init``, ``x_iter``,
        ``d_iter``, ``x_rho``, ``d_rho``, ``alpha``, ``zero_mean``, ``auto_rho``, ``rho_period``, ``rho_ratio``,
        ``optimizer``: as ``learn_conv_dictionary`` (``d_rho=None`` means the global number of images).
      loop settings: ``mesh``, ``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``progress``, ``stop_after``:
        as ``parallel_loop``.

    Returns:
      ``ConvDictLearnResult(filters, codes, loop, method)``: ``filters`` an ordinary array, the same on every
      process; ``codes`` (K, M, *N) global, split by image.

    Example: one process (``tests/test_multiprocess.py`` compares 4 processes with ``learn_conv_dictionary``).
      >>> import jax
      >>> import numpy as np
      >>> from sparsejax.learn.parallel import learn_conv_dictionary_parallel
      >>> S = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (2, 16)))
      >>> res = learn_conv_dictionary_parallel(S, 3, 4, 0.1, n_steps=1)
      >>> res.filters.shape, res.codes.shape, res.loop.status
      ((3, 1, 4), (2, 3, 16), 'completed')
    """
    S = _local_float_rows("images", images, (2, 3))
    V.check_choice("method", method, ("admm", "optax"))
    M = V.check_positive_int("n_filters", n_filters)
    V.check_positive_int("n_steps", n_steps)
    d = S.ndim - 1
    ksize = tuple(filter_size) if isinstance(filter_size, (tuple, list)) else (filter_size,) * d
    if len(ksize) != d:
        raise ValueError(f"filter_size {filter_size!r} must have {d} entries for images of shape {S.shape}")
    ksize = tuple(V.check_positive_int("filter_size", k) for k in ksize)
    if any(k > n for k, n in zip(ksize, S.shape[1:])):
        raise ValueError(f"filter_size {ksize} is larger than the images {S.shape[1:]}")
    lam = float(V.check_nonnegative_scalar("lam", lam))
    a = float(alpha)
    if not 0.0 < a < 2.0:
        raise ValueError(f"alpha (over-relaxation) must lie in (0, 2), got {a}")
    x_iter = (1 if method == "admm" else 5) if x_iter is None else V.check_positive_int("x_iter", x_iter)
    V.check_positive_int("d_iter", d_iter)
    dtype = S.dtype
    if init is None:
        key = jax.random.PRNGKey(0) if key is None else key
        f0 = jax.random.normal(key, (M, 1) + ksize, dtype)
    else:
        f0 = V.as_float_array("init", init)
        V.check_shape("init", f0, (M, 1) + ksize, "initial filters (M, 1, *k)")
        V.check_finite("init", f0)
        f0 = f0.astype(dtype)
    mesh = global_mesh() if mesh is None else mesh
    Sg = to_global(S, mesh)
    if d_rho is None:
        d_rho = float(Sg.shape[0])
    lam_g = _place(jnp.asarray(lam, dtype), mesh)
    f0_g = _place(f0, mesh)
    if method == "admm":
        state = cdl.admm_init(f0_g, Sg, lam_g, x_rho=x_rho, d_rho=d_rho, zero_mean=zero_mean)
        alpha_g = _place(jnp.asarray(a, dtype), mesh)
        step = lambda st: cdl.admm_step(st, Sg, lam_g, alpha_g, x_iter=x_iter, d_iter=d_iter,
                                        zero_mean=bool(zero_mean), auto_rho=bool(auto_rho), rho_period=rho_period,
                                        rho_ratio=float(rho_ratio))
    else:
        optimizer = optax.adam(1e-2) if optimizer is None else optimizer
        state = cdl.optax_init(f0_g, Sg, lam_g, optimizer, x_rho=x_rho, zero_mean=zero_mean)
        step = lambda st: cdl.optax_step(st, Sg, lam_g, optimizer=optimizer, x_iter=x_iter,
                                         zero_mean=bool(zero_mean), auto_rho=bool(auto_rho), rho_period=rho_period,
                                         rho_ratio=float(rho_ratio))
    config = None
    if checkpoint_dir is not None:
        config = _learner_config("learn_conv_dictionary_parallel", data_fingerprint(S), method=method,
                                 n_filters=M, filter_size=ksize, lam=lam, init=f0, x_iter=x_iter, d_iter=d_iter,
                                 x_rho=None if x_rho is None else float(x_rho), d_rho=float(d_rho), alpha=a,
                                 zero_mean=bool(zero_mean), auto_rho=bool(auto_rho), rho_period=rho_period,
                                 rho_ratio=float(rho_ratio))
    loop = parallel_loop(step, state, n_steps, mesh=mesh, checkpoint_dir=checkpoint_dir,
                         checkpoint_every=checkpoint_every, resume=resume, progress=progress,
                         desc=f"conv dictionary learning ({method}, {jax.process_count()} processes)",
                         stop_after=stop_after, config=config)
    st = loop.state
    filters = jnp.asarray(gather(st.d.g if method == "admm" else st.filters))
    return cdl.ConvDictLearnResult(filters, st.x.z, loop, method)
