"""Starting JAX's multi-controller runtime: one Python process per host (or per group of devices), one program.

Every process runs the same script. ``initialize`` connects it to the others through JAX's coordination
service (``jax.distributed.initialize``); afterwards ``jax.devices()`` lists the devices of *all* processes,
``jax.local_devices()`` those of this one, and a jitted function over arrays sharded on a mesh of all devices
runs as one SPMD program whose collectives cross processes (gloo on CPU, NCCL on GPU, ICI/DCN on TPU).

Where the settings come from, first match wins:

1. the arguments of ``initialize`` (``coordinator``, ``num_processes``, ``process_id``);
2. the environment variables ``SPARSEJAX_COORDINATOR`` (``host:port`` of process 0),
   ``SPARSEJAX_NUM_PROCESSES``, ``SPARSEJAX_PROCESS_ID`` (and optionally ``SPARSEJAX_LOCAL_DEVICE_IDS``, a
   comma-separated list), which ``sparsejax launch`` sets;
3. a cluster JAX detects itself (SLURM: ``SLURM_JOB_ID`` with ``SLURM_NTASKS`` > 1; Open MPI:
   ``OMPI_COMM_WORLD_SIZE`` > 1; a Cloud TPU pod slice: ``TPU_WORKER_HOSTNAMES`` with more than one host;
   or ``cluster=True``): ``jax.distributed.initialize()`` with no arguments;
4. otherwise one process: nothing to start, and the rest of ``sparsejax.distributed`` works unchanged.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

__all__ = [
    "ENV_VARS",
    "ProcessInfo",
    "agree",
    "barrier",
    "global_mesh",
    "initialize",
    "process_info",
    "settings_from_env",
]

ENV_VARS = ("SPARSEJAX_COORDINATOR", "SPARSEJAX_NUM_PROCESSES", "SPARSEJAX_PROCESS_ID", "SPARSEJAX_LOCAL_DEVICE_IDS")


class ProcessInfo(NamedTuple):
    """Where this process stands: ``process_id`` of ``num_processes``, its ``local_devices`` and all ``devices``.

    Example:
      >>> from sparsejax.distributed import process_info
      >>> info = process_info()
      >>> info.process_id < info.num_processes, len(info.devices) >= len(info.local_devices)
      (True, True)
    """

    process_id: int
    num_processes: int
    local_devices: tuple
    devices: tuple


def process_info() -> ProcessInfo:
    """This process's ``ProcessInfo`` (one process: id 0 of 1, its devices)."""
    return ProcessInfo(jax.process_index(), jax.process_count(), tuple(jax.local_devices()), tuple(jax.devices()))


def _int_setting(name: str, value) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if out < 0:
        raise ValueError(f"{name} must be >= 0, got {out}")
    return out


def settings_from_env(env=None) -> dict | None:
    """The explicit settings of ``SPARSEJAX_COORDINATOR`` / ``SPARSEJAX_NUM_PROCESSES`` / ``SPARSEJAX_PROCESS_ID``
    (/ ``SPARSEJAX_LOCAL_DEVICE_IDS``) as ``jax.distributed.initialize`` keyword arguments, or None when
    ``SPARSEJAX_COORDINATOR`` is unset.

    Example:
      >>> from sparsejax.distributed import settings_from_env
      >>> env = {"SPARSEJAX_COORDINATOR": "10.0.0.1:1234", "SPARSEJAX_NUM_PROCESSES": "4", "SPARSEJAX_PROCESS_ID": "2"}
      >>> settings_from_env(env)
      {'coordinator_address': '10.0.0.1:1234', 'num_processes': 4, 'process_id': 2}
      >>> settings_from_env({}) is None
      True
    """
    env = os.environ if env is None else env
    coord = env.get("SPARSEJAX_COORDINATOR")
    if not coord:
        return None
    missing = [v for v in ENV_VARS[1:3] if v not in env]
    if missing:
        raise ValueError(f"SPARSEJAX_COORDINATOR is set ({coord!r}) but {' and '.join(missing)} is not: set all of "
                         f"{', '.join(ENV_VARS[:3])}")
    out = {"coordinator_address": coord,
           "num_processes": _int_setting("SPARSEJAX_NUM_PROCESSES", env["SPARSEJAX_NUM_PROCESSES"]),
           "process_id": _int_setting("SPARSEJAX_PROCESS_ID", env["SPARSEJAX_PROCESS_ID"])}
    if env.get("SPARSEJAX_LOCAL_DEVICE_IDS"):
        out["local_device_ids"] = [_int_setting("SPARSEJAX_LOCAL_DEVICE_IDS", v)
                                   for v in env["SPARSEJAX_LOCAL_DEVICE_IDS"].split(",")]
    return out


def _cluster_detected(env) -> bool:
    def more_than_one(name):
        try:
            return int(env.get(name, "1")) > 1
        except ValueError:
            return False
    if "SLURM_JOB_ID" in env and more_than_one("SLURM_NTASKS"):
        return True
    if more_than_one("OMPI_COMM_WORLD_SIZE"):
        return True
    return len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids: Sequence[int] | None = None,
               cluster: bool = False, timeout_s: int = 300) -> ProcessInfo:
    """Join this process to a multi-process JAX run (module docstring: where the settings come from).

    Call it first, before any JAX computation (the runtime fixes the device list when it starts). Calling it
    again after a successful start returns the same ``ProcessInfo``. On CPU the collectives go through gloo
    (``jax_cpu_collectives_implementation``).

    Args:
      coordinator: ``"host:port"`` of process 0's coordination service (every process gives the same).
      num_processes: total number of processes; process_id: this one's rank in [0, num_processes).
      local_device_ids: the local devices this process uses (default: all).
      cluster: let JAX detect the cluster (SLURM, Open MPI, TPU pod, ...) even if no variable says so.
      timeout_s: how long to wait for the other processes.

    Returns:
      ``ProcessInfo`` of this process (id 0 of 1 when there is nothing to start).

    Raises:
      ValueError: incomplete or inconsistent settings (named), before anything starts.
      RuntimeError: JAX already ran a computation in this process (the runtime must start first).

    Example: with no settings and no cluster, one process.
      >>> from sparsejax.distributed import initialize
      >>> info = initialize()
      >>> info.num_processes >= 1
      True
    """
    given = [v is not None for v in (coordinator, num_processes, process_id)]
    if any(given) and not all(given):
        raise ValueError("give coordinator, num_processes and process_id together (or none of them, to read "
                         f"{', '.join(ENV_VARS[:3])} or let JAX detect the cluster)")
    if all(given):
        kw = {"coordinator_address": str(coordinator),
              "num_processes": _int_setting("num_processes", num_processes),
              "process_id": _int_setting("process_id", process_id)}
        if local_device_ids is not None:
            kw["local_device_ids"] = [_int_setting("local_device_ids", v) for v in local_device_ids]
    else:
        kw = settings_from_env()
    if kw is not None:
        if kw["num_processes"] < 1:
            raise ValueError(f"num_processes must be >= 1, got {kw['num_processes']}")
        if not 0 <= kw["process_id"] < kw["num_processes"]:
            raise ValueError(f"process_id must lie in [0, num_processes = {kw['num_processes']}), got "
                             f"{kw['process_id']}")
        if ":" not in kw["coordinator_address"]:
            raise ValueError(f"coordinator must read 'host:port', got {kw['coordinator_address']!r}")
    auto = kw is None and (cluster or _cluster_detected(os.environ))
    if kw is None and not auto:
        return process_info()
    if jax.distributed.is_initialized():
        return process_info()
    if kw is not None and kw["num_processes"] == 1:
        return process_info()
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(initialization_timeout=timeout_s, **(kw or {}))
    except RuntimeError as e:
        raise RuntimeError(f"{e}; sparsejax.distributed.initialize must run before any JAX computation in the "
                           "process") from e
    return process_info()


def global_mesh(axis_name: str = "batch", devices: Sequence | None = None) -> Mesh:
    """A 1-D mesh over the devices of *all* processes (``jax.devices()``), ordered by process then device, so that
    process p's rows of a global batch sit on its own devices.

    Example:
      >>> from sparsejax.distributed import global_mesh
      >>> global_mesh().axis_names
      ('batch',)
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    devices.sort(key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (axis_name,))


def barrier(name: str = "sparsejax") -> None:
    """Wait until every process reaches this point (no-op on one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def agree(error: BaseException | None = None) -> None:
    """Raise on every process when any process found an error (a collective; no-op on one process without error).

    The process that found ``error`` raises it; the others raise a ``ValueError`` naming the failed processes, so
    that no process goes on to wait for the failed one in a later collective.

    Example:
      >>> from sparsejax.distributed import agree
      >>> agree(None)
      >>> agree(ValueError("Y contains NaN"))
      Traceback (most recent call last):
      ...
      ValueError: Y contains NaN
    """
    if jax.process_count() > 1:
        flags = np.asarray(multihost_utils.process_allgather(np.asarray([error is not None], np.int32))).reshape(-1)
    else:
        flags = np.asarray([error is not None])
    if error is not None:
        raise error
    if flags.any():
        raise ValueError(f"process(es) {np.flatnonzero(flags).tolist()} failed on their part of the input (their "
                         "error names it); every process stops")
