"""Batch OMP and batch Lasso on many signals, split over devices with ``sparsejax.distributed.shard_batch``.

OMP: min ||y - D a||_2 s.t. ||a||_0 <= k (Batch-OMP on the Gram matrix G = D^T D); Lasso: min 1/2 ||y - D a||^2 +
lam ||a||_1, certified by its duality gap. ``shard_batch(fn)`` splits the leading (signal) axis over a 1-D device
mesh and replicates D; each device runs the same program on its slice, so results equal the unsharded call.
On a CPU, N host devices come from XLA_FLAGS=--xla_force_host_platform_device_count=N, set BEFORE jax is
imported (this script does it from --devices); on GPUs / TPUs the real devices are used.

Run:  python examples/batch_coding_sharded.py            (100,000 signals, 64 x 256, k = 8; --devices N)
      python examples/batch_coding_sharded.py --quick    (2,000 signals, 32 x 64, k = 4; Lasso by FISTA)
"""
import argparse
import os
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny problem, a few seconds")
parser.add_argument("--devices", type=int, default=os.cpu_count(), help="host (CPU) devices to create")
parser.add_argument("--method", default=None, help="lasso_batch method (default: 'auto'; 'fista' with --quick,"
                    " which compiles in a few seconds)")
parser.add_argument("--out", default="example_output", help="unused (no figure); kept for a uniform interface")
args = parser.parse_args()
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + f" --xla_force_host_platform_device_count={args.devices}")

import jax  # after XLA_FLAGS: the device count is read when jax starts
import jax.numpy as jnp
import numpy as np

import sparsejax as sj

B, n, m, k, lam = (2_000, 32, 64, 4, 0.05) if args.quick else (100_000, 64, 256, 8, 0.05)
print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}")

# k-sparse signals on a random dictionary, small noise (data drawn with NumPy: nothing to compile)
rng = np.random.default_rng(0)
D = sj.random_gaussian(jax.random.PRNGKey(0), n, m)                   # (n, m), unit-norm atoms
supp = np.argsort(rng.random((B, m)), axis=1)[:, :k]                   # k random atoms per signal
A = np.zeros((B, m), np.float32)
np.put_along_axis(A, supp, rng.uniform(1, 2, (B, k)) * rng.choice([-1, 1], (B, k)), axis=1)
Y = jnp.asarray(A @ np.asarray(D).T + 0.001 * rng.standard_normal((B, n)), jnp.float32)

omp = sj.distributed.shard_batch(lambda Y, D: sj.omp_batch(D, Y, k=k))           # Y split, D replicated
method = args.method or ("fista" if args.quick else "auto")
lasso = sj.distributed.shard_batch(lambda Y, D: sj.lasso_batch(D, Y, lam, tol=1e-5, method=method))


def timed(fn, *a):
    jax.block_until_ready(fn(*a))                                      # compile (and warm up)
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*a))
    return out, time.perf_counter() - t


sol_omp, t_omp = timed(omp, Y, D)
exact = jnp.all((sol_omp.codes != 0) == (A != 0), axis=1)
print(f"OMP   k={k}: {B / t_omp:12,.0f} signals/s  ({t_omp * 1e3:.0f} ms for {B:,});"
      f" exact support {100 * float(exact.mean()):.1f}%")

sol_l, t_l = timed(lasso, Y, D)
# sol.error is each signal's certificate: duality gap / objective (sj.duality_gap)
print(f"Lasso lam={lam} ({method}): {B / t_l:10,.0f} signals/s  ({t_l * 1e3:.0f} ms for {B:,});"
      f" converged {100 * float(sol_l.converged.mean()):.2f}%, median relative duality gap"
      f" {float(jnp.median(sol_l.error)):.1e}")

# the sharded call equals the unsharded one
same = jnp.max(jnp.abs(sj.omp_batch(D, Y, k=k).codes - sol_omp.codes))
print(f"max |sharded - unsharded| OMP codes: {float(same):.1e}")
