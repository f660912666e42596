"""Sharding batched pursuits over the devices of a mesh with JAX's own sharding (``jax.shard_map``).

A batched pursuit maps a batch of signals (leading axis) to per-signal results. ``shard_batch``
splits that axis over a 1-D device mesh; the dictionary and the hyper-parameters are replicated.
Each device runs the same compiled program on its slice, so results equal the unsharded call.

Test on a CPU with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (set before importing jax).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["batch_mesh", "shard_batch"]


def batch_mesh(devices: Sequence | None = None, axis_name: str = "batch") -> Mesh:
    """A 1-D mesh over ``devices`` (default: all local devices), its one axis named ``axis_name``.

    Args:
      devices: the devices (default ``jax.local_devices()``).
      axis_name: the name of the mesh axis.

    Returns:
      A ``jax.sharding.Mesh``.

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> mesh = sj.distributed.batch_mesh()
      >>> mesh.axis_names, mesh.devices.size == len(jax.local_devices())
      (('batch',), True)
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return Mesh(np.array(devices), (axis_name,))


def shard_batch(fn: Callable, *, mesh: Mesh | None = None, axis_name: str = "batch") -> Callable:
    """Wrap a batched function ``fn(Y, *args)`` so that ``Y``'s leading axis is split over devices.

    Args:
      fn: a function whose first argument is the batch (leading axis = signals) and whose outputs
        are pytrees of arrays with the same leading axis (e.g. a ``Solution`` of a vmapped pursuit).
        Remaining positional arguments (dictionary, lam, ...) are replicated on every device.
      mesh: a 1-D mesh (default ``batch_mesh()``).
      axis_name: the mesh axis to split over.

    Returns:
      A jitted function with the same signature. A batch whose size is not a multiple of the
      number of devices is padded with zero signals, and the padding is dropped from the output.

    Example: a batch of 5 signals (padded to a multiple of the devices, then cropped), as the unsharded call.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.normalize_atoms(jax.random.normal(jax.random.PRNGKey(0), (8, 16)))
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (5, 8))
      >>> code = jax.vmap(lambda y, D: sj.fista(D, y, 0.1, max_iter=100).codes, in_axes=(0, None))
      >>> codes = sj.distributed.shard_batch(code)(Y, D)
      >>> codes.shape, bool(jnp.allclose(codes, code(Y, D), atol=1e-5))
      ((5, 16), True)
    """
    mesh = batch_mesh(axis_name=axis_name) if mesh is None else mesh
    ndev = mesh.shape[axis_name]

    @jax.jit
    def run(Y, *args):
        B = Y.shape[0]
        pad = (-B) % ndev
        if pad:
            Y = jnp.concatenate([Y, jnp.zeros((pad,) + Y.shape[1:], Y.dtype)], axis=0)
        Y = jax.lax.with_sharding_constraint(Y, NamedSharding(mesh, P(axis_name)))
        in_specs = (P(axis_name),) + tuple(jax.tree_util.tree_map(lambda _: P(), a) for a in args)
        out = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=P(axis_name), check_vma=False)(Y, *args)
        return jax.tree_util.tree_map(lambda x: x[:B], out)

    def wrapped(Y, *args):
        if jnp.ndim(Y) < 1:
            raise ValueError(f"Y must have a leading batch axis, got shape {tuple(jnp.shape(Y))}")
        return run(Y, *args)

    return wrapped
