"""Process-local data <-> global arrays on a mesh that spans every process.

A *global* array has the shape of the whole batch; each process holds the rows on its own devices. Process p's
local rows are rows [p * B, (p + 1) * B) of the global batch (the mesh of ``global_mesh`` orders devices by
process), so the global batch is the concatenation of the processes' local batches in process order: the batch
one process would see if it held all the data.

* ``to_global(local)``: this process's rows (every process the same count B) -> a global (P B, ...) array
  sharded by rows (``jax.make_array_from_process_local_data``).
* ``local_rows(x)``: the rows of a global (or ordinary) array held by this process, as NumPy.
* ``gather(x)``: the whole array on every process (``multihost_utils.process_allgather``); ``root=0``: on
  process 0 only (None elsewhere). A collective: every process calls it.
* ``replicate(tree)``: host values equal on every process -> fully replicated global arrays.
* ``to_host(tree)``: every leaf as NumPy (a collective when a leaf is sharded over processes).
"""
from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sparsejax.distributed.runtime import global_mesh

__all__ = ["check_equal_rows", "gather", "local_rows", "replicate", "row_sharding", "to_global", "to_host"]


def row_sharding(mesh: Mesh | None = None) -> NamedSharding:
    """Rows (leading axis) split over the mesh's one axis, other axes whole."""
    mesh = global_mesh() if mesh is None else mesh
    return NamedSharding(mesh, P(mesh.axis_names[0]))


def check_equal_rows(name: str, rows: int, mesh: Mesh) -> int:
    """Every process holds ``rows`` rows (checked with a collective) and the count splits over its local devices
    of ``mesh``; returns the global number of rows."""
    local = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    if local == 0:
        raise ValueError(f"{name}: the mesh holds none of this process's devices")
    if rows % local:
        raise ValueError(f"{name}: this process holds {rows} rows, not a multiple of its {local} devices in the mesh")
    counts = np.asarray(multihost_utils.process_allgather(np.asarray([rows], np.int64))).reshape(-1) \
        if jax.process_count() > 1 else np.asarray([rows])
    if np.any(counts != rows):
        raise ValueError(f"{name}: every process must hold the same number of rows, got {counts.tolist()} "
                         f"(processes 0..{len(counts) - 1}); split the data evenly (pad or drop a few rows)")
    return int(rows * len(counts))


def to_global(local, mesh: Mesh | None = None, *, global_rows: int | None = None) -> jax.Array:
    """This process's rows -> the global array of all processes' rows (concatenated in process order), split by
    rows over ``mesh`` (default ``global_mesh()``). A collective: every process calls it with the same
    trailing shape and dtype and the same row count.

    A global array is returned as it is. ``global_rows`` (the total, when the caller has already checked that
    every process holds the same count) skips that check's collective.

    Example: on one process, the global array is the local one.
      >>> import numpy as np
      >>> from sparsejax.distributed import to_global
      >>> x = to_global(np.arange(6.0).reshape(3, 2))
      >>> x.shape, x.sharding.spec
      ((3, 2), P('batch',))
    """
    if isinstance(local, jax.Array) and not local.is_fully_addressable:
        return local
    mesh = global_mesh() if mesh is None else mesh
    local = np.asarray(local)
    if local.ndim < 1:
        raise ValueError(f"local data must have a leading row axis, got shape {local.shape}")
    rows = check_equal_rows("local data", local.shape[0], mesh) if global_rows is None else int(global_rows)
    return jax.make_array_from_process_local_data(row_sharding(mesh), local, (rows,) + local.shape[1:])


def local_rows(x) -> np.ndarray:
    """The rows of ``x`` held by this process (NumPy): its contiguous block of a row-sharded global array, or all of
    an ordinary array.

    Example:
      >>> import numpy as np
      >>> from sparsejax.distributed import local_rows, to_global
      >>> local_rows(to_global(np.ones((4, 3)))).shape
      (4, 3)
    """
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return np.asarray(x)
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    out, seen = [], set()
    for s in shards:
        start = s.index[0].start or 0
        if start in seen:              # replicated copies of the same rows
            continue
        seen.add(start)
        out.append(np.asarray(s.data))
    return np.concatenate(out, axis=0)


def gather(x, root: int | None = None):
    """The whole of a global array as NumPy on every process (``root=None``) or on process ``root`` only (None
    elsewhere). A collective when ``x`` spans processes: every process calls it.

    Example:
      >>> import numpy as np
      >>> from sparsejax.distributed import gather, to_global
      >>> gather(to_global(np.arange(4.0))).tolist()
      [0.0, 1.0, 2.0, 3.0]
    """
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        full = np.asarray(x)
    elif x.is_fully_replicated:
        full = np.asarray(x.addressable_data(0))
    else:
        full = np.asarray(multihost_utils.process_allgather(x, tiled=True))
    if root is not None and jax.process_index() != root:
        return None
    return full


def to_host(tree):
    """Every leaf of ``tree`` as NumPy (PRNG key arrays and Python scalars kept as they are). A collective when a
    leaf is sharded over processes."""
    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return x
        return gather(x) if isinstance(x, jax.Array) else x
    return jax.tree_util.tree_map(leaf, tree)


def replicate(tree, mesh: Mesh | None = None):
    """Host values (the same on every process) -> fully replicated global arrays on ``mesh``.

    Example:
      >>> import numpy as np
      >>> from sparsejax.distributed import replicate
      >>> replicate({"D": np.eye(2)})["D"].sharding.is_fully_replicated
      True
    """
    mesh = global_mesh() if mesh is None else mesh
    rep = NamedSharding(mesh, P())

    def leaf(x):
        if isinstance(x, jax.Array) and x.sharding == rep:
            return x
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(leaf(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        host = gather(x) if isinstance(x, jax.Array) else np.asarray(x)
        host = host.astype(x.dtype if isinstance(x, jax.Array) else jax.dtypes.canonicalize_dtype(host.dtype))
        return jax.make_array_from_callback(host.shape, rep, lambda idx: host[idx])
    return jax.tree_util.tree_map(leaf, tree)
