"""Atomic checkpoints of pytrees (dictionaries, optimiser states, PRNG keys) with exact restore.

One checkpoint is one ``.npz`` file: the leaves of the pytree (``leaf_00000``, ...) plus a JSON
metadata record (``__meta__``: step, dtypes, shapes, key paths, the treedef string, PRNG key
implementations and any ``extra`` data). Writing is atomic: the file is written to a temporary
name in the same folder, flushed and fsync'ed, then moved over the target with ``os.replace``,
so a crash or an error during the write leaves the previous checkpoint intact.

Restoring needs a template ``like`` with the same structure (e.g. the freshly initialised state):
every leaf comes back with its exact bits and dtype, typed PRNG keys included (saved through
``jax.random.key_data`` and rewrapped with the template's implementation). A structure, shape or
dtype mismatch is a ValueError naming the leaf.

Files in a checkpoint folder are named ``ckpt_<step>.npz`` (``checkpoint_path``);
``latest_checkpoint`` finds the one with the largest step, ``save_checkpoint(..., keep=n)`` keeps the
``n`` most recent.

Damaged files: a file that cannot be read back (truncated, corrupt, a missing or unreadable leaf) raises
``CheckpointReadError`` naming the file and the leaf. ``load_latest`` (and ``load_checkpoint`` on a folder)
skips such files with a ``CheckpointWarning`` naming each one and restores the newest readable checkpoint;
``quarantine=True`` also renames the skipped files to ``<name>.corrupt`` so that they are neither pruned
in place of good ones nor tried again. ``remove_temporary`` deletes the ``.ckpt_*.tmp`` files a killed
writer leaves behind. A write that fails raises ``CheckpointWriteError`` (an ``OSError``) naming the file.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import _validate as V

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "load_latest", "latest_checkpoint",
           "checkpoint_path", "list_checkpoints", "remove_temporary", "CheckpointReadError", "CheckpointWriteError",
           "CheckpointWarning"]

_FORMAT = 1
_NAME = re.compile(r"^ckpt_(\d+)\.npz$")
_TMP = re.compile(r"^\.ckpt_\d+\.npz\..*\.tmp$")
_META = "__meta__"


class CheckpointReadError(ValueError):
    """A checkpoint file that cannot be read back (truncated, corrupt, a leaf missing or unreadable).

    Example:
      >>> from sparsejax.learn.checkpoint import CheckpointReadError
      >>> issubclass(CheckpointReadError, ValueError)
      True
    """


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (folder not writable, disk full, ...); the previous files are intact.

    Example:
      >>> from sparsejax.learn.checkpoint import CheckpointWriteError
      >>> issubclass(CheckpointWriteError, OSError)
      True
    """


class CheckpointWarning(UserWarning):
    """An unreadable checkpoint was skipped (the message names it) and an older one restored instead.

    Example:
      >>> from sparsejax.learn.checkpoint import CheckpointWarning
      >>> issubclass(CheckpointWarning, UserWarning)
      True
    """


class Checkpoint(NamedTuple):
    """A restored checkpoint: the pytree, the step it was saved at and the ``extra`` data.

    Example: see ``load_checkpoint``.
      >>> from sparsejax.learn.checkpoint import Checkpoint
      >>> Checkpoint._fields
      ('tree', 'step', 'extra')
    """

    tree: Any
    step: int
    extra: Any


def checkpoint_path(directory, step: int) -> Path:
    """The file name used for ``step`` inside ``directory``: ``ckpt_<step, 9 digits>.npz``.

    Example:
      >>> from sparsejax.learn.checkpoint import checkpoint_path
      >>> checkpoint_path("runs", 42).as_posix()
      'runs/ckpt_000000042.npz'
    """
    step = V.check_int("step", step)
    return Path(directory) / f"ckpt_{step:09d}.npz"


def list_checkpoints(directory) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in ``directory``, sorted by step (temporary files ignored).

    Example:
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.checkpoint import checkpoint_path, list_checkpoints, save_checkpoint
      >>> with tempfile.TemporaryDirectory() as d:
      ...     for step in (20, 10):
      ...         _ = save_checkpoint(checkpoint_path(d, step), {"w": jnp.ones(2)}, step=step)
      ...     print([step for step, _ in list_checkpoints(d)])
      [10, 20]
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(directory) -> Optional[Path]:
    """Path of the checkpoint with the largest step in ``directory``, or None if there is none.

    Example:
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.checkpoint import checkpoint_path, latest_checkpoint, save_checkpoint
      >>> with tempfile.TemporaryDirectory() as d:
      ...     print(latest_checkpoint(d))
      ...     for step in (5, 50):
      ...         _ = save_checkpoint(checkpoint_path(d, step), {"w": jnp.ones(2)}, step=step)
      ...     print(latest_checkpoint(d).name)
      None
      ckpt_000000050.npz
    """
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


# -- leaves -------------------------------------------------------------------------------------

def _is_key(x) -> bool:
    dt = getattr(x, "dtype", None)
    return dt is not None and jax.dtypes.issubdtype(dt, jax.dtypes.prng_key)


def _leaf_info(x):
    """(host array to store, dtype string, shape, key impl or None) for one leaf."""
    if _is_key(x):
        data = np.asarray(jax.device_get(jax.random.key_data(x)))
        return data, str(x.dtype), tuple(x.shape), str(jax.random.key_impl(x))
    if isinstance(x, (bool, int, float, complex)):
        x = jnp.asarray(x)  # the dtype JAX itself gives a Python scalar
    arr = np.asarray(jax.device_get(x))
    dtype = arr.dtype
    if dtype.kind == "V":  # ml_dtypes (bfloat16, float8, ...): store the raw bits
        arr = arr.view(np.dtype(f"u{dtype.itemsize}"))
    return arr, str(dtype), tuple(arr.shape), None


def _template_info(x):
    """(dtype string, shape, key impl or None) of a template leaf, without moving data."""
    if _is_key(x):
        return str(x.dtype), tuple(x.shape), str(jax.random.key_impl(x))
    if isinstance(x, (bool, int, float, complex)):
        x = jnp.asarray(x)
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        x = np.asarray(x)
    return str(x.dtype), tuple(x.shape), None


# -- extra (JSON with arrays) ---------------------------------------------------------------------

def _encode_extra(obj, arrays: dict):
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"extra: dictionary keys must be strings, got {bad[0]!r}")
        return {k: _encode_extra(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode_extra(v, arrays) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        name = f"extra_{len(arrays):05d}"
        arr = np.asarray(jax.device_get(obj))
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"extra: arrays must be numeric, got dtype {arr.dtype}")
        arrays[name] = arr
        return {"__array__": name}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"extra must hold JSON values (dict, list, str, number, bool, None) or numpy arrays, "
                    f"got {type(obj).__name__}")


def _decode_extra(obj, data):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return np.array(data[obj["__array__"]])
        return {k: _decode_extra(v, data) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_extra(v, data) for v in obj]
    return obj


# -- save / load --------------------------------------------------------------------------------

def _write_npz(fileobj, arrays: dict) -> None:
    """The one place bytes are written (tests monkeypatch it to simulate a failed write)."""
    np.savez(fileobj, **arrays)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_checkpoint(path, tree, *, step: int, extra: Any = None, keep: Optional[int] = None) -> Path:
    """Write ``tree`` (any pytree of arrays) to ``path`` atomically.

    Args:
      path: target file (``.npz`` is appended if missing); its folder is created. Use
        ``checkpoint_path(directory, step)`` for the names ``latest_checkpoint`` understands.
      tree: pytree of arrays / scalars (dicts, tuples, NamedTuples, optax states, typed or raw PRNG keys).
      step: the step number recorded in the metadata (non-negative int).
      extra: optional JSON-like data (dicts, lists, numbers, strings) whose values may also be numpy
        arrays; returned by ``load_checkpoint`` as ``Checkpoint.extra``.
      keep: if given (>= 1), delete all but the ``keep`` most recent ``ckpt_*.npz`` in the folder.

    Returns:
      The path written.

    Raises:
      CheckpointWriteError (an OSError) naming the file when it cannot be written; the previous file of
      that name, if any, is left intact and no temporary file remains.

    Example: see ``load_checkpoint``; ``keep`` prunes the older files.
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.checkpoint import checkpoint_path, list_checkpoints, save_checkpoint
      >>> with tempfile.TemporaryDirectory() as d:
      ...     for step in (1, 2, 3):
      ...         path = save_checkpoint(checkpoint_path(d, step), {"w": jnp.ones(2)}, step=step, keep=2)
      ...     print(path.name, [step for step, _ in list_checkpoints(d)])
      ckpt_000000003.npz [2, 3]
    """
    step = V.check_int("step", step)
    if keep is not None:
        V.check_positive_int("keep", keep)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")

    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
    arrays, leaf_meta = {}, []
    for i, (kp, leaf) in enumerate(leaves_with_path):
        arr, dtype, shape, impl = _leaf_info(leaf)
        arrays[f"leaf_{i:05d}"] = arr
        leaf_meta.append({"path": jax.tree_util.keystr(kp), "dtype": dtype, "shape": list(shape), "key_impl": impl})
    meta = {
        "format": _FORMAT,
        "step": int(step),
        "treedef": str(treedef),
        "leaves": leaf_meta,
        "extra": _encode_extra(extra, arrays),
    }
    arrays[_META] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)

    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise CheckpointWriteError(f"cannot write checkpoint {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError) and not isinstance(e, CheckpointWriteError):
            raise CheckpointWriteError(f"cannot write checkpoint {path}: {e.strerror or e}") from e
        raise
    _fsync_dir(folder)

    if keep is not None:
        for _, old in list_checkpoints(folder)[:-keep]:
            if old != path:
                try:
                    old.unlink()
                except FileNotFoundError:  # pragma: no cover - removed concurrently
                    pass
    return path


def load_checkpoint(path, like) -> Checkpoint:
    """Restore a checkpoint into the structure of the template ``like``.

    Args:
      path: a checkpoint file, or a folder (its latest checkpoint is loaded).
      like: a pytree with the saved structure (e.g. the freshly initialised state). Its leaves set the
        structure, shapes, dtypes and PRNG key implementations expected; they may be arrays,
        ``jax.ShapeDtypeStruct`` or scalars. Leaves given as numpy arrays come back as numpy arrays,
        all others as JAX arrays.

    Returns:
      ``Checkpoint(tree, step, extra)`` with bit-exact leaves.

    Raises:
      FileNotFoundError: no such file (or no checkpoint in the folder).
      CheckpointReadError (a ValueError): the file is truncated or corrupt, or a leaf cannot be read back
        (the message names the file and the leaf). For a folder, damaged files are skipped with a
        ``CheckpointWarning`` and the newest readable one is loaded (``load_latest``).
      ValueError: the file is not a sparsejax checkpoint, or its structure, a shape, a dtype or a key
        implementation differs from ``like`` (the message names the leaf).

    Example: a state with a typed PRNG key comes back bit for bit.
      >>> import tempfile
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.checkpoint import load_checkpoint, save_checkpoint
      >>> state = {"D": jnp.arange(6.0).reshape(2, 3), "key": jax.random.key(7)}
      >>> with tempfile.TemporaryDirectory() as d:
      ...     path = save_checkpoint(f"{d}/ckpt", state, step=12, extra={"note": "demo"})
      ...     ck = load_checkpoint(path, state)
      >>> ck.step, ck.extra, bool(jnp.all(ck.tree["D"] == state["D"]))
      (12, {'note': 'demo'}, True)
      >>> bool(jnp.all(jax.random.key_data(ck.tree["key"]) == jax.random.key_data(state["key"])))
      True
    """
    path = Path(path)
    if path.is_dir():
        found = load_latest(path, like)
        if found is None:
            raise FileNotFoundError(f"no checkpoint (ckpt_*.npz) in folder {path}")
        return found[0]
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    meta, stored = _read(path)
    return _restore(path, meta, stored, like)


def _read(path: Path):
    """(metadata, name -> array) of a checkpoint file; CheckpointReadError naming the file / leaf if damaged."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointReadError(f"checkpoint {path} cannot be read (truncated or corrupt file: {e})") from e
    with data:
        if not isinstance(data, np.lib.npyio.NpzFile) or _META not in data.files:
            raise ValueError(f"{path} is not a sparsejax checkpoint (no {_META} record)")
        try:
            meta = json.loads(bytes(data[_META]).decode("utf-8"))
            leaves = meta["leaves"]
            _ = (meta["step"], meta["treedef"], meta["extra"])
        except Exception as e:  # any damage to the record is the same failure
            raise CheckpointReadError(f"checkpoint {path}: its metadata record cannot be read back ({e})") from e
        stored = {}
        for name in data.files:
            if name == _META:
                continue
            try:
                stored[name] = np.array(data[name])
            except Exception as e:  # bad CRC, truncated member, bad header
                i = int(name[5:]) if name.startswith("leaf_") and name[5:].isdigit() else None
                what = f"leaf {leaves[i]['path'] or '(root)'} ({name})" if i is not None and i < len(leaves) \
                    else f"array {name}"
                raise CheckpointReadError(f"checkpoint {path}: {what} cannot be read back ({e})") from e
    for i, info in enumerate(leaves):
        name = f"leaf_{i:05d}"
        if name not in stored:
            raise CheckpointReadError(f"checkpoint {path}: leaf {info['path'] or '(root)'} ({name}) is missing")
        want = tuple(info["shape"]) if info.get("key_impl") is None else None
        if want is not None and tuple(stored[name].shape) != want:
            raise CheckpointReadError(f"checkpoint {path}: leaf {info['path'] or '(root)'} ({name}) has shape "
                                      f"{tuple(stored[name].shape)} on disk, its record says {want}")
    return meta, stored


def _restore(path: Path, meta: dict, stored: dict, like) -> Checkpoint:
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(like)
    saved = meta["leaves"]
    if len(saved) != len(leaves_with_path) or meta["treedef"] != str(treedef):
        raise ValueError(
            f"checkpoint {path.name} does not match the template's structure: it holds {len(saved)} leaves "
            f"with structure\n  {meta['treedef']}\nbut the template has {len(leaves_with_path)} leaves with "
            f"structure\n  {treedef}"
        )

    out = []
    for i, ((kp, tmpl), info) in enumerate(zip(leaves_with_path, saved)):
        name = jax.tree_util.keystr(kp)
        dtype, shape, impl = _template_info(tmpl)
        if tuple(info["shape"]) != shape:
            raise ValueError(f"checkpoint {path.name}: leaf {name} has shape {tuple(info['shape'])}, "
                             f"the template expects {shape}")
        if info["key_impl"] != impl:
            raise ValueError(f"checkpoint {path.name}: leaf {name} has PRNG key implementation "
                             f"{info['key_impl']}, the template expects {impl}")
        if info["dtype"] != dtype:
            raise ValueError(f"checkpoint {path.name}: leaf {name} has dtype {info['dtype']}, "
                             f"the template expects {dtype}")
        arr = stored[f"leaf_{i:05d}"]
        if impl is not None:
            out.append(jax.random.wrap_key_data(jnp.asarray(arr), impl=jax.random.key_impl(tmpl)))
            continue
        want = jnp.dtype(dtype)
        if arr.dtype != want:  # raw bits of an ml_dtypes array
            if arr.dtype.kind != "u" or arr.dtype.itemsize != want.itemsize:
                raise CheckpointReadError(f"checkpoint {path}: leaf {name} is stored as {arr.dtype}, which cannot "
                                          f"be read back as its recorded dtype {want}")
            arr = arr.view(want)
        if isinstance(tmpl, (np.ndarray, np.generic)):
            out.append(arr)
        else:
            leaf = jnp.asarray(arr)
            if leaf.dtype != want:
                raise ValueError(f"checkpoint {path.name}: leaf {name} of dtype {want} cannot be restored "
                                 f"exactly as a JAX array (enable jax_enable_x64 for 64-bit leaves)")
            out.append(leaf)
    tree = jax.tree_util.tree_unflatten(treedef, out)
    try:
        extra = _decode_extra(meta["extra"], stored)
    except KeyError as e:
        raise CheckpointReadError(f"checkpoint {path}: extra array {e} is missing") from e
    return Checkpoint(tree, int(meta["step"]), extra)


def load_latest(directory, like, *, quarantine: bool = False):
    """Restore the newest readable checkpoint of ``directory``, skipping damaged files with a warning.

    Files are tried from the largest step down; one that raises ``CheckpointReadError`` (truncated, corrupt,
    unreadable leaf) is skipped with a ``CheckpointWarning`` naming it and the reason. A file that is
    readable but does not match ``like`` (structure, shape, dtype) is not skipped: that is a ValueError,
    since it means the folder belongs to another run.

    Args:
      directory: the checkpoint folder.
      like: the template (as ``load_checkpoint``).
      quarantine: rename each skipped file to ``<name>.corrupt`` (kept for inspection, no longer listed).

    Returns:
      ``(Checkpoint, path, skipped)`` with ``skipped`` the list of the damaged paths, or None when the folder
      holds no readable checkpoint (every damaged one is then named in a warning).

    Example: a truncated newest file falls back to the previous one.
      >>> import tempfile, warnings
      >>> import jax.numpy as jnp
      >>> from sparsejax.learn.checkpoint import checkpoint_path, load_latest, save_checkpoint
      >>> with tempfile.TemporaryDirectory() as d, warnings.catch_warnings(record=True) as seen:
      ...     warnings.simplefilter("always")
      ...     for step in (1, 2):
      ...         p = save_checkpoint(checkpoint_path(d, step), {"w": jnp.full(2, float(step))}, step=step)
      ...     _ = p.write_bytes(p.read_bytes()[:40])
      ...     ck, path, skipped = load_latest(d, {"w": jnp.zeros(2)})
      >>> ck.step, [q.name for q in skipped], "ckpt_000000002.npz" in str(seen[0].message)
      (1, ['ckpt_000000002.npz'], True)
    """
    skipped = []
    for _, path in reversed(list_checkpoints(directory)):
        try:
            meta, stored = _read(path)
        except CheckpointReadError as e:
            moved = ""
            if quarantine:
                try:
                    os.replace(path, path.with_name(path.name + ".corrupt"))
                    moved = f"; renamed to {path.name}.corrupt"
                except OSError:  # pragma: no cover - read-only folder: leave it, it is skipped again next time
                    pass
            warnings.warn(f"skipped unreadable checkpoint {path}: {e}{moved}", CheckpointWarning, stacklevel=2)
            skipped.append(path)
            continue
        if skipped:
            warnings.warn(f"restored {path.name} (step {meta['step']}) instead of the newer unreadable "
                          f"checkpoint(s) {', '.join(p.name for p in skipped)}", CheckpointWarning, stacklevel=2)
        return _restore(path, meta, stored, like), path, skipped
    return None


def remove_temporary(directory) -> list[Path]:
    """Delete the temporary files (``.ckpt_<step>.npz.<random>.tmp``) an interrupted ``save_checkpoint`` left.

    Only call it when no other process is writing checkpoints into the folder (``run_loop`` does at start).

    Args:
      directory: the checkpoint folder (may not exist).

    Returns:
      The paths removed.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from sparsejax.learn.checkpoint import remove_temporary
      >>> with tempfile.TemporaryDirectory() as d:
      ...     _ = (Path(d) / ".ckpt_000000007.npz.x1y2.tmp").write_bytes(b"PK partial")
      ...     print([p.name for p in remove_temporary(d)], list(Path(d).iterdir()))
      ['.ckpt_000000007.npz.x1y2.tmp'] []
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in directory.iterdir():
        if _TMP.match(p.name) and p.is_file():
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:  # pragma: no cover - removed concurrently
                pass
    return sorted(removed)
