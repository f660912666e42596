"""Devices and processes: shard a batch over the devices of one process, or run one program on many processes
(JAX's multi-controller runtime: ``jax.distributed.initialize``, a mesh over every process's devices, global
arrays, collectives).

* ``sharding``: ``batch_mesh``, ``shard_batch`` (one process, its local devices).
* ``runtime``: ``initialize`` (arguments, ``SPARSEJAX_*`` variables or cluster detection), ``process_info``,
  ``global_mesh``, ``barrier``.
* ``arrays``: ``to_global`` (local rows -> global array), ``local_rows``, ``gather`` (to every process or one),
  ``replicate``, ``to_host``.
* ``coding``: ``encode_global``, ``cbpdn_global`` (a global batch coded where its rows live).

Data-parallel dictionary learning over processes is ``sparsejax.learn.parallel``; ``docs/distributed.md`` says how
to launch on one machine (``sparsejax launch -n N``) and on a cluster.
"""
from sparsejax.distributed import arrays, coding, runtime, sharding
from sparsejax.distributed.arrays import (
    check_equal_rows,
    gather,
    local_rows,
    replicate,
    row_sharding,
    to_global,
    to_host,
)
from sparsejax.distributed.coding import cbpdn_global, encode_global
from sparsejax.distributed.runtime import (
    ENV_VARS,
    ProcessInfo,
    agree,
    barrier,
    global_mesh,
    initialize,
    process_info,
    settings_from_env,
)
from sparsejax.distributed.sharding import batch_mesh, shard_batch

__all__ = [
    "ENV_VARS",
    "ProcessInfo",
    "agree",
    "arrays",
    "barrier",
    "batch_mesh",
    "cbpdn_global",
    "check_equal_rows",
    "coding",
    "encode_global",
    "gather",
    "global_mesh",
    "initialize",
    "local_rows",
    "process_info",
    "replicate",
    "row_sharding",
    "runtime",
    "settings_from_env",
    "shard_batch",
    "sharding",
    "to_global",
    "to_host",
]
