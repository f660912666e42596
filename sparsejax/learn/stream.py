"""Online dictionary learning from a stream of chunks (data bigger than memory), checkpointed and resumable.

    res = learn_stream(NpySignals("patches.npy", 65536), 256, sparsity=8, batch_size=512,
                       checkpoint_dir="runs/stream")          # rerun after a kill: continues at the next chunk

Each chunk (rows = signals) is cut into consecutive mini-batches of ``batch_size`` signals, and each mini-batch is
one step of online dictionary learning (``sparsejax.learn.dense.online_step``: Mairal, Bach, Ponce & Sapiro, "Online
learning for matrix factorization and sparse coding", JMLR 2010, Algorithms 1-2): codes by Batch-OMP (``sparsity``)
or the Lasso (``lam``), the sufficient statistics A_t = beta_t A_{t-1} + <a a^T>, B_t = beta_t B_{t-1} + <y a^T>,
block coordinate descent on the atoms. Only the dictionary and the statistics (m^2 + n m numbers) live between
chunks; the chunks are read ahead by a thread (``sparsejax.streaming.prefetch``).

After every ``checkpoint_every`` chunks (and at the end) the state and the stream position (epoch, chunk) are saved
atomically (``sparsejax.learn.checkpoint``); a rerun with ``resume=True`` restores them and skips the chunks already
learned from (sources of ``sparsejax.streaming`` do not even read them), so a run killed and resumed ends with the
same dictionary, bit for bit, as an uninterrupted one. The run's settings (sizes, lam, sparsity, batch size, the
source's fingerprint, ...) are stored with the checkpoint; a resume with other settings raises
``ConfigMismatchError`` naming them. A non-finite loss or dictionary stops the run (status "diverged") with the last
good state; nothing is saved over the last good checkpoint.
"""
from __future__ import annotations

import json
import math
import time
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from sparsejax import _validate as V
from sparsejax.dictionary import normalize_atoms
from sparsejax.learn.checkpoint import checkpoint_path, load_latest, remove_temporary, save_checkpoint
from sparsejax.learn.dense import DictState, init_dictionary, init_state, online_step
from sparsejax.learn.loop import ConfigMismatchError
from sparsejax.streaming import jsonable, numbered_chunks, prefetch

__all__ = ["StreamLearnResult", "learn_stream"]


class StreamLearnResult(NamedTuple):
    """Result of ``learn_stream``.

    dictionary: (n, m) learned atoms, unit norm. state: the final ``DictState`` (dictionary, ``OnlineStats``, key).
    chunks: chunks learned from in total (all epochs, resumed ones included); batches: mini-batch steps in total.
    history: {"loss", "rel_error", "nnz", ...} -> arrays over the mini-batches of this call.
    status: "completed", "stopped" (``stop_after``) or "diverged"; message: why it stopped.
    resumed_from: the chunk count of the checkpoint this call started from (None: from scratch).

    Example:
      >>> from sparsejax.learn.stream import StreamLearnResult
      >>> StreamLearnResult._fields[:3]
      ('dictionary', 'state', 'chunks')
    """

    dictionary: jax.Array
    state: DictState
    chunks: int
    batches: int
    history: dict
    status: str
    message: str
    resumed_from: Optional[int]


def _differences(saved: dict, current: dict) -> list:
    return [f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} in this run"
            for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]


def _check_chunk(Y, index, n, dtype):
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[1] != n:
        raise ValueError(f"chunk {index} must have shape (rows, {n}) (signals as rows), got {Y.shape}")
    if Y.dtype.kind not in "fiu":
        raise ValueError(f"chunk {index} must hold real numbers, got dtype {Y.dtype}")
    if not np.isfinite(Y).all():
        row = int(np.argmax(~np.isfinite(Y).all(axis=1)))
        raise ValueError(f"chunk {index} has non-finite values (NaN or inf) in its row {row}")
    return Y.astype(dtype, copy=False)


def learn_stream(chunks: Iterable, n_atoms: int, *, sparsity: Optional[int] = None, lam=None, batch_size: int = 256,
                 n_epochs: int = 1, key=None, init: Any = "data", forget: float = 10.0, n_sweeps: int = 1,
                 dup_threshold: float = 0.99, min_usage: float = 0.0, checkpoint_dir=None, checkpoint_every: int = 10,
                 resume: bool = True, progress: bool = True, stop_after: Optional[int] = None,
                 prefetch_depth: int = 2, fingerprint: Any = None) -> StreamLearnResult:
    """Learn an (n, n_atoms) dictionary by online dictionary learning over a stream of chunks of signals.

    Args:
      chunks: an iterable of (rows, n) arrays of signals as rows, or a source of ``sparsejax.streaming``
        (``NpySignals``, ``ArraySignals``, ``ImagePatches``). Several epochs need a re-iterable (not an iterator).
      n_atoms: number of atoms m.
      sparsity: atoms per signal of the OMP coder, or None to code with the Lasso of weight ``lam``.
      lam: l1 weight of the Lasso coder (when ``sparsity`` is None).
      batch_size: signals per mini-batch step; a chunk of R rows makes ceil(R / batch_size) steps (a chunk size that
        is a multiple of it keeps one compiled shape).
      n_epochs: passes over the stream.
      key: PRNG key (initialisation; default PRNGKey(0)).
      init: "data" (``n_atoms`` signals of the first chunk, at random, normalised), "random", or an (n, m) array.
      forget, n_sweeps, dup_threshold, min_usage: as ``sparsejax.learn.dense.online_step`` (forget = rho of
        beta_t = (1 - 1/t)^rho).
      checkpoint_dir: folder for the checkpoints (None: no checkpoints, no resume).
      checkpoint_every: save every this many chunks (and at the end / at ``stop_after``).
      resume: continue from the newest checkpoint of ``checkpoint_dir`` (settings checked); False: start afresh.
      progress: tqdm bar over the chunks (loss, throughput, time left).
      stop_after: stop (status "stopped", checkpoint saved) once this many chunks in total are learned from.
      prefetch_depth: chunks read ahead by the reader thread.
      fingerprint: JSON-like identity of the data, stored and compared on resume (default: the source's
        ``fingerprint()`` when it has one).

    Returns:
      ``StreamLearnResult``.

    Raises:
      ValueError naming the argument (before anything is computed) or the chunk (wrong width, non-finite values,
      a first chunk with fewer signals than atoms for ``init="data"``); ``ConfigMismatchError`` on a resume with
      other settings.

    Example: the same dictionary as running ``online_step`` over the mini-batches by hand.
      >>> import jax
      >>> import numpy as np
      >>> from sparsejax.learn import dense
      >>> from sparsejax.learn.stream import learn_stream
      >>> Y = np.random.default_rng(0).standard_normal((96, 6)).astype(np.float32)
      >>> res = learn_stream([Y[:48], Y[48:]], 8, sparsity=2, batch_size=16, progress=False)
      >>> k0, k1 = jax.random.split(jax.random.PRNGKey(0))
      >>> st = dense.init_state("online", dense.init_dictionary(Y[:48], 8, k1), k0)
      >>> for b in range(6):
      ...     st, _ = dense.online_step(st, Y[16 * b:16 * b + 16], sparsity=2, forget=np.float32(10.0))
      >>> res.status, res.batches, bool(np.array_equal(res.state.D, st.D))
      ('completed', 6, True)
    """
    n_atoms = V.check_positive_int("n_atoms", n_atoms)
    batch_size = V.check_positive_int("batch_size", batch_size)
    n_epochs = V.check_positive_int("n_epochs", n_epochs)
    checkpoint_every = V.check_positive_int("checkpoint_every", checkpoint_every)
    prefetch_depth = V.check_positive_int("prefetch_depth", prefetch_depth)
    n_sweeps = V.check_positive_int("n_sweeps", n_sweeps)
    if stop_after is not None:
        stop_after = V.check_int("stop_after", stop_after)
    if sparsity is None and lam is None:
        raise ValueError("learn_stream needs sparsity (OMP codes, atoms per signal) or lam (Lasso codes, l1 weight)")
    if sparsity is not None:
        sparsity = V.check_positive_int("sparsity", sparsity, n_atoms, "n_atoms")
    if lam is not None:
        V.check_nonnegative_scalar("lam", lam)
    if not (resume is True or resume is False):
        raise ValueError(f"resume must be True or False, got {resume!r}")
    one_pass = iter(chunks) is chunks
    if n_epochs > 1 and one_pass:
        raise ValueError("n_epochs > 1 needs a re-iterable source of chunks (a list, NpySignals, ArraySignals, ...), "
                         "got a one-pass iterator")
    if isinstance(init, str):
        V.check_choice("init", init, ("data", "random"))
    key = jax.random.PRNGKey(0) if key is None else key

    # the first chunk: signal length, dtype and (init="data") the initial atoms
    it = iter(chunks)
    try:
        first = np.asarray(next(it))
    except StopIteration:
        raise ValueError("chunks is empty: no signals to learn from") from None
    if first.ndim != 2:
        raise ValueError(f"chunk 0 must be 2-D (rows, n) (signals as rows), got shape {first.shape}")
    n = first.shape[1]
    dtype = jax.dtypes.canonicalize_dtype(first.dtype if first.dtype.kind == "f" else np.float32)
    first = _check_chunk(first, 0, n, dtype)
    if isinstance(init, str) and init == "data" and first.shape[0] < n_atoms:
        raise ValueError(f"init='data' draws the {n_atoms} initial atoms from the first chunk, which has only "
                         f"{first.shape[0]} signals: use larger chunks, or init='random' / an (n, m) array")
    if sparsity is not None and sparsity > n:
        raise ValueError(f"sparsity must be <= the signal length n = {n}, got {sparsity}")
    k_state, k_init = jax.random.split(key)
    D0 = init_dictionary(jnp.asarray(first), n_atoms, k_init, init)
    state = init_state("online", D0, k_state)
    lam_arr = None if lam is None else jnp.asarray(lam, dtype)
    step_kw = dict(sparsity=sparsity, forget=jnp.asarray(forget, dtype), n_sweeps=n_sweeps,
                   dup_threshold=dup_threshold, min_usage=jnp.asarray(min_usage, dtype))

    if fingerprint is None and hasattr(chunks, "fingerprint"):
        fingerprint = chunks.fingerprint()
    config = jsonable({"method": "online (stream)", "n": n, "n_atoms": n_atoms, "sparsity": sparsity, "lam": lam,
                        "batch_size": batch_size, "forget": forget, "n_sweeps": n_sweeps,
                        "dup_threshold": dup_threshold, "min_usage": min_usage, "dtype": str(dtype),
                        "key": np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
                                          else key),
                        "init": init if isinstance(init, str) else np.asarray(init), "data": fingerprint})
    config = json.loads(json.dumps(config))

    epoch, pos, total_chunks, resumed_from, batches = 0, 0, 0, None, 0
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        if checkpoint_dir.exists() and not checkpoint_dir.is_dir():
            raise ValueError(f"checkpoint_dir {checkpoint_dir} exists and is not a folder")
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        remove_temporary(checkpoint_dir)
        found = load_latest(checkpoint_dir, state, quarantine=True) if resume else None
        if found is not None:
            ck, path, _ = found
            extra = ck.extra if isinstance(ck.extra, dict) else {}
            diff = _differences(extra.get("config") or {}, config)
            if diff:
                raise ConfigMismatchError(f"checkpoint {path} was written by a run with other settings "
                                          f"({'; '.join(diff)}): use another checkpoint_dir, or resume=False")
            state, resumed_from = ck.tree, ck.step
            epoch, pos, batches = int(extra["epoch"]), int(extra["chunk"]), int(extra["batches"])
            total_chunks = ck.step

    num_chunks = getattr(chunks, "num_chunks", None)
    bar = tqdm(total=None if num_chunks is None else n_epochs * num_chunks, initial=total_chunks, unit="chunk",
               desc="online dictionary learning (stream)", dynamic_ncols=True, disable=not progress)
    hist: dict = {}
    status, message, last_saved = "completed", "", resumed_from

    def save():
        nonlocal last_saved
        if checkpoint_dir is None or last_saved == total_chunks:
            return
        save_checkpoint(checkpoint_path(checkpoint_dir, total_chunks), state, step=total_chunks, keep=3,
                        extra={"epoch": epoch, "chunk": pos, "batches": batches, "config": config})
        last_saved = total_chunks

    t0 = time.perf_counter()
    try:
        while epoch < n_epochs and status == "completed":
            # a one-pass iterator continues where the first chunk was taken from; re-iterables start again
            source = chain([first], it) if (epoch == 0 and one_pass) else chunks
            skip = range(pos)
            for index, _, Y in prefetch(numbered_chunks(source, skip), prefetch_depth):
                if Y is None:
                    continue
                if stop_after is not None and total_chunks >= stop_after:
                    status, message = "stopped", f"stopped after {total_chunks} chunks (stop_after)"
                    break
                Y = jnp.asarray(_check_chunk(Y, index, n, dtype))
                good, good_batches, good_hist = state, batches, {k: len(v) for k, v in hist.items()}
                for lo in range(0, Y.shape[0], batch_size):
                    new, metrics = online_step(state, Y[lo:lo + batch_size], lam_arr, **step_kw)
                    loss = float(metrics["loss"])
                    if not math.isfinite(loss) or not bool(jnp.all(jnp.isfinite(new.D))):
                        status = "diverged"
                        message = (f"diverged in chunk {index} of epoch {epoch} (loss {loss}); returning the state "
                                   f"before that chunk, checkpoints left as they were")
                        state, batches = good, good_batches
                        hist = {k: v[:good_hist.get(k, 0)] for k, v in hist.items()}
                        break
                    state = new
                    batches += 1
                    for name, v in metrics.items():
                        hist.setdefault(name, []).append(float(v))
                if status != "completed":
                    break
                pos, total_chunks = index + 1, total_chunks + 1
                bar.update(1)
                bar.set_postfix(loss=f"{hist['loss'][-1]:.4g}", refresh=False)
                if total_chunks % checkpoint_every == 0:
                    save()
            else:
                epoch, pos = epoch + 1, 0
                continue
            break
    finally:
        bar.close()
    if status != "diverged":
        save()
    if status == "completed":
        message = (f"completed {n_epochs} epoch(s): {total_chunks} chunks, {batches} mini-batches "
                   f"({time.perf_counter() - t0:.1f} s in this call)")
    history = {k: np.asarray(v) for k, v in hist.items()}
    return StreamLearnResult(normalize_atoms(state.D), state, total_chunks, batches, history, status, message,
                             resumed_from)
