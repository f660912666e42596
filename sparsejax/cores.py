"""Every CPU core for the batched coders: one XLA:CPU device per core, the batch split over them.

XLA:CPU runs one program on one device, and a batched pursuit's many small per-step operations each run on one
thread, so a plain call keeps one core busy. Started with one CPU device per core (``use_cpu_cores()``, once, before
any JAX computation), the batched OMP coders (``omp_batch``, ``omp_gram``, ``encode(method="omp")``) split a large
batch by rows over those devices with ``jax.shard_map``, and ``cbpdn_admm`` splits one image's filters: each core
codes its share, the results are the same as a one-device call, and they come back as one ``jax.Array`` split over
the devices (``numpy.asarray`` and further ``jax.numpy`` operations take it as it is). ``lasso_batch`` is not split:
a split run of its Newton polish (LAPACK calls in a loop) hung in XLA:CPU.

The split is opt-in because it changes the process's devices: ``jax.devices()`` lists one CPU device per core, and
an array a user committed to a single device (``jax.device_put(x, jax.devices()[0])``) cannot meet a result split
over all of them in one operation; the coders therefore leave a call whose inputs are committed to one device on
that device. ``omp_batch`` and ``omp_gram`` also take ``devices=`` (1: never split; a count or a list of devices:
split over those), which works inside ``jit`` too.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

__all__ = ["use_cpu_cores", "cpu_cores_in_use", "split_devices", "split_rows", "cores_mesh", "MIN_ROWS_PER_DEVICE"]

MIN_ROWS_PER_DEVICE = 256      # below this many signals per device the split costs more than it saves
_STATE = {"on": False}
_AXIS = "rows"


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def use_cpu_cores(n: int | None = None) -> int:
    """Start one XLA:CPU device per core and let the batched coders split large batches over them.

    Call once, right after ``import sparsejax`` and before any JAX computation (JAX fixes its devices when it first
    runs). Where the process already has several CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``
    or ``jax.config.update("jax_num_cpu_devices", N)``), those are used as they are.

    Args:
      n: the number of CPU devices (default: the cores this process may run on, ``os.sched_getaffinity``).

    Returns:
      The number of CPU devices the coders split over.

    Raises:
      ValueError: ``n`` is not a positive int.
      RuntimeError: JAX has already started with a single CPU device (call this earlier).

    Example (at the top of a script, before any JAX computation):
      >>> import sparsejax as sj
      >>> sj.use_cpu_cores()          # doctest: +SKIP
      2
    """
    if n is None:
        n = _available_cores()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (the number of CPU devices), got {n!r}")
    n = int(n)
    forced = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if not forced and n > 1:
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:
            pass                     # JAX has started: use the devices it has, if there are several
    have = len(jax.local_devices(backend="cpu"))
    if n > 1 and have == 1:
        raise RuntimeError("use_cpu_cores must run before JAX's first computation (JAX started with one CPU "
                           "device); call it right after importing sparsejax, or start Python with "
                           f"XLA_FLAGS=--xla_force_host_platform_device_count={n}")
    _STATE["on"] = have > 1
    return have


def cpu_cores_in_use() -> int:
    """The number of CPU devices the batched coders split over by default (1 until ``use_cpu_cores``).

    Example:
      >>> import sparsejax as sj
      >>> sj.cpu_cores_in_use() >= 1
      True
    """
    if not _STATE["on"] or jax.default_backend() != "cpu":
        return 1
    return len(jax.local_devices())


def _committed_elsewhere(arrays, devices) -> bool:
    """Some concrete input is committed to devices other than ``devices`` (a split would fail to combine them)."""
    want = set(devices)
    for a in jax.tree_util.tree_leaves(arrays):
        if isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer) and a.committed:
            if set(a.devices()) != want:
                return True
    return False


def split_devices(devices, rows: int, arrays=()) -> tuple | None:
    """The devices a batched coder splits ``rows`` signals over, or None (one device).

    Args:
      devices: None (automatic: all local CPU devices after ``use_cpu_cores``, when each gets at least
        ``MIN_ROWS_PER_DEVICE`` rows and no input is committed to one device), 1 (no split), an int n > 1 (the first
        n local devices) or a sequence of devices.
      rows: the batch size.
      arrays: the call's inputs (checked for commitment in the automatic case).

    Returns:
      A tuple of devices, or None.

    Raises:
      ValueError: ``devices`` is not None, a positive int or a non-empty sequence of devices, or asks for more
        devices than there are.

    Example:
      >>> from sparsejax.cores import split_devices
      >>> split_devices(1, 10_000) is None
      True
    """
    if devices is None:
        n = cpu_cores_in_use()
        if n < 2 or rows < MIN_ROWS_PER_DEVICE * n:
            return None
        devs = tuple(jax.local_devices()[:n])
        if jax.sharding.get_abstract_mesh().axis_names or _committed_elsewhere(arrays, devs):
            return None              # inside a user's mesh context, or inputs pinned to other devices
        return devs
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        local = jax.local_devices()
        if not 1 <= devices <= len(local):
            raise ValueError(f"devices must be between 1 and the {len(local)} local devices, got {devices}")
        return None if devices == 1 else tuple(local[:int(devices)])
    if isinstance(devices, Sequence) and not isinstance(devices, str) and len(devices) > 0 and all(
            isinstance(d, jax.Device) for d in devices):
        return None if len(devices) == 1 else tuple(devices)
    raise ValueError(f"devices must be None, a positive int or a non-empty sequence of jax devices, got {devices!r}")


def split_rows(fn: Callable, devices: tuple | None, rows, consts=()):
    """``fn(rows, consts)`` with the leading axis of ``rows`` split over ``devices`` (inside ``jit``).

    Args:
      fn: maps (a pytree of arrays with a common leading axis B, a pytree of constants) to a pytree of arrays with
        leading axis B (every output is per row).
      devices: a tuple of devices (from ``split_devices``) or None (``fn`` is called as it is).
      rows: the per-row inputs; padded with zero rows to a multiple of the devices (the padding is dropped).
      consts: inputs every device gets whole (dictionary, Gram matrix, scalars).

    Returns:
      ``fn``'s output, split by rows over the devices.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.cores import split_rows
      >>> split_rows(lambda r, c: r * c, None, jnp.arange(3.0), 2.0).tolist()
      [0.0, 2.0, 4.0]
    """
    if devices is None:
        return fn(rows, consts)
    nd = len(devices)
    B = jax.tree_util.tree_leaves(rows)[0].shape[0]
    pad = (-B) % nd
    if pad:
        rows = jax.tree_util.tree_map(lambda x: jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]),
                                      rows)
    mesh = Mesh(np.array(devices), (_AXIS,))
    row_specs = jax.tree_util.tree_map(lambda _: P(_AXIS), rows)
    const_specs = jax.tree_util.tree_map(lambda _: P(), consts)
    out = jax.shard_map(fn, mesh=mesh, in_specs=(row_specs, const_specs), out_specs=P(_AXIS),
                        check_vma=False)(rows, consts)
    return jax.tree_util.tree_map(lambda x: x[:B], out) if pad else out


def cores_mesh(parts: int, arrays=()) -> Mesh | None:
    """A 1-D mesh over the CPU cores' devices for splitting ``parts`` equal pieces (e.g. the filters of one
    convolutional problem), or None: before ``use_cpu_cores``, when ``parts`` is not a multiple of the devices, when
    an input is traced (inside the caller's ``jit`` / ``vmap`` the caller decides) or committed to other devices.

    Example:
      >>> from sparsejax.cores import cores_mesh
      >>> cores_mesh(32) is None          # use_cpu_cores() was not called in this process
      True
    """
    n = cpu_cores_in_use()
    if n < 2 or parts % n:
        return None
    leaves = jax.tree_util.tree_leaves(arrays)
    if any(isinstance(a, jax.core.Tracer) for a in leaves):
        return None
    devs = tuple(jax.local_devices()[:n])
    if jax.sharding.get_abstract_mesh().axis_names or _committed_elsewhere(leaves, devs):
        return None
    return Mesh(np.array(devs), (_AXIS,))
