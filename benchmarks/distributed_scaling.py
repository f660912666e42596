"""Multi-process scaling on this machine: batched coding and one dictionary-learning epoch on 1, 2 and 4 processes
(JAX's distributed runtime, gloo collectives on CPU), the cores split between them.

    python -m benchmarks.distributed_scaling            # 1, 2, 4 processes, 16,384 signals of 64 over 256 atoms
    python -m benchmarks.distributed_scaling --quick    # smaller (seconds)

Every run is ``sparsejax launch -n P --cpus-per-process max(1, cores / P)``: process i is pinned to its share of
the cores. Measured on each P, after one warm-up (compilation excluded), best of ``--repeat``:

* coding: ``sparsejax.distributed.encode_global(D, Y, "omp", k)`` of the global batch (every process codes its
  rows, no communication) -> signals per second;
* one MOD epoch: ``sparsejax.learn.dense.mod_step`` on the global batch (OMP of every signal, then the normal
  equations summed over processes by an all-reduce) -> seconds per epoch and signals per second.

Scaling efficiency = throughput(P) / (P x throughput(1)) with P processes; with fewer cores than processes it
can only fall below 1 / P x cores. The load average is printed with the figures (the machine may be shared).
CPU only (the children run with JAX_PLATFORMS=cpu): it measures process scaling, not an accelerator.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import sparsejax as sj
from sparsejax import distributed as dist
from sparsejax.cli.launch import add_launch_parser, run_launch
from sparsejax.learn import dense


def worker(args) -> None:
    info = dist.initialize()
    P, p = info.num_processes, info.process_id
    N, n, m, k = args.signals, args.dim, args.atoms, args.k
    B = N // P
    rng = np.random.default_rng(p)
    D = np.asarray(sj.random_gaussian(jax.random.PRNGKey(0), n, m))
    Y = rng.standard_normal((B, n)).astype(np.float32)

    def best(fn):
        jax.block_until_ready(fn())                     # compile
        dist.barrier("warm")
        out = float("inf")
        for _ in range(args.repeat):
            dist.barrier("start")
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            dist.barrier("stop")
            out = min(out, time.perf_counter() - t0)
        return out

    t_code = best(lambda: dist.encode_global(D, Y, "omp", k=k).codes)
    Yg = dist.to_global(Y)
    state = dist.replicate(dense.init_state("mod", jnp.asarray(D), jax.random.PRNGKey(1)))
    t_epoch = best(lambda: dense.mod_step(state, Yg, sparsity=k)[0].D)
    if p == 0:
        print("RESULT " + json.dumps({"processes": P, "coding_s": t_code, "epoch_s": t_epoch}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small problem (seconds)")
    ap.add_argument("--processes", default="1,2,4", help="comma-separated process counts (default 1,2,4)")
    ap.add_argument("--signals", type=int, default=None, help="global batch (default 16384; --quick 2048)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--atoms", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.signals is None:
        args.signals = 2048 if args.quick else 16384
    if args.worker:
        worker(args)
        return 0


    cores = os.cpu_count() or 1
    counts = [int(c) for c in args.processes.split(",")]
    root = Path(__file__).resolve().parents[1]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    os.environ["JAX_PLATFORMS"] = "cpu"
    lp = argparse.ArgumentParser()
    add_launch_parser(lp.add_subparsers())
    results = []
    print(f"distributed scaling: {args.signals} signals of {args.dim} over {args.atoms} atoms, OMP k={args.k}, "
          f"{cores} cores, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for P in counts:
        if args.signals % P:
            print(f"skip P={P}: {args.signals} signals do not split evenly", flush=True)
            continue
        with tempfile.TemporaryDirectory() as logs:
            cmd = ["launch", "-n", str(P), "--cpus-per-process", str(max(1, cores // P)), "--timeout",
                   str(args.timeout), "--log-dir", logs, "--", "python", "-m", "benchmarks.distributed_scaling",
                   "--worker", "--signals", str(args.signals), "--dim", str(args.dim), "--atoms", str(args.atoms),
                   "--k", str(args.k), "--repeat", str(args.repeat)]
            t0 = time.perf_counter()
            status = run_launch(lp.parse_args(cmd))
            wall = time.perf_counter() - t0
            text = (Path(logs) / "process_0.log").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
        if status != 0 or not lines:
            print(f"P={P}: failed (status {status}):\n{text[-2000:]}", flush=True)
            continue
        r = json.loads(lines[-1][len("RESULT "):])
        r.update(signals=args.signals, cores=cores, cpus_per_process=max(1, cores // P), run_wall_s=wall,
                 coding_signals_per_s=args.signals / r["coding_s"], epoch_signals_per_s=args.signals / r["epoch_s"],
                 load_average=os.getloadavg()[0])
        results.append(r)
    base = next((r for r in results if r["processes"] == 1), None)
    print(f"\n{'P':>3s} {'cores/P':>7s} {'coding sig/s':>13s} {'eff':>6s} {'MOD epoch s':>12s} {'eff':>6s} {'load':>6s}")
    for r in results:
        if base is not None:
            r["coding_efficiency"] = r["coding_signals_per_s"] / (r["processes"] * base["coding_signals_per_s"])
            r["epoch_efficiency"] = r["epoch_signals_per_s"] / (r["processes"] * base["epoch_signals_per_s"])
        print(f"{r['processes']:3d} {r['cpus_per_process']:7d} {r['coding_signals_per_s']:13.0f} "
              f"{r.get('coding_efficiency', float('nan')):6.2f} {r['epoch_s']:12.4f} "
              f"{r.get('epoch_efficiency', float('nan')):6.2f} {r['load_average']:6.2f}")
    for r in results:
        print(json.dumps({"benchmark": "distributed_scaling", **r}), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
