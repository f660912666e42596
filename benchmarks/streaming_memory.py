"""Peak memory and throughput of streaming coding (``sparsejax.streaming.encode_to_file``) as the input grows.

    python -m benchmarks.streaming_memory                       # 10^5, 10^6, 10^7 signals (2.56 GB file at 10^7)
    python -m benchmarks.streaming_memory --quick               # 10^4, 10^5 (seconds)

For each size N a float32 (N, 64) ``.npy`` of signals is created on disk (``--dir``, default /tmp; reused when it is
already there), then a fresh Python process codes it with Batch-OMP (k atoms over an (n, m) unit-norm Gaussian
dictionary) chunk by chunk into one scipy CSR ``.npz``, and reports its peak resident memory (``VmHWM``, which
counts every page the process held, file-backed pages included) before and after the stream, the wall time and the
signals per second (the chunk shape is compiled before the clock starts). Flat memory means the peak does not grow with N. One JSON line per size (``--json FILE`` also
appends them to a file).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from sparsejax.pursuit.encode import encode
from sparsejax.streaming import NpySignals, encode_to_file

_ROOT = Path(__file__).resolve().parents[1]


def _vm(field: str) -> float:
    """A /proc/self/status memory field in MB (NaN where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def make_signals(path: Path, N: int, n: int, seed: int = 0, block: int = 1_000_000) -> Path:
    """Write an (N, n) float32 .npy of Gaussian signals block by block (memory: one block)."""
    if path.exists():
        try:
            arr = np.load(path, mmap_mode="r")
            if arr.shape == (N, n) and arr.dtype == np.float32:
                return path
        except ValueError:
            pass
    tmp = path.with_name(path.name + ".tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(N, n))
    rng = np.random.default_rng(seed)
    for lo in range(0, N, block):
        hi = min(N, lo + block)
        out[lo:hi] = rng.standard_normal((hi - lo, n), dtype=np.float32)
    out.flush()
    del out
    os.replace(tmp, path)
    return path


def child(args) -> dict:
    """Runs in a fresh process: code one file, report memory and time."""



    D = np.load(args.dict)
    src = NpySignals(args.signals, args.chunk_size)
    width = min(args.chunk_size, src.num_signals)      # compile the one chunk shape first: time the stream only
    jax.block_until_ready(encode(D, np.zeros((width, src.n), np.float32), "omp", k=args.k).codes)
    rss_start = _vm("VmHWM")
    out = Path(args.out)
    t0 = time.perf_counter()
    s = encode_to_file(D, src, out, "omp", k=args.k, resume=False, progress=False)
    wall = time.perf_counter() - t0
    return {"benchmark": "streaming_memory", "signals": s.signals, "n": src.n, "atoms": D.shape[1], "k": args.k,
            "chunk_size": args.chunk_size, "nnz": s.nnz, "not_converged": s.not_converged,
            "seconds": round(wall, 3), "signals_per_s": round(s.signals / wall, 1),
            "peak_rss_mb_before": round(rss_start, 1), "peak_rss_mb": round(_vm("VmHWM"), 1),
            "output_mb": round(out.stat().st_size / 2**20, 1), "input_mb": round(Path(args.signals).stat().st_size
                                                                                  / 2**20, 1),
            "backend": jax.default_backend(), "machine": platform.machine(), "cores": os.cpu_count()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000,10000000", help="comma-separated numbers of signals")
    p.add_argument("--quick", action="store_true", help="sizes 10^4 and 10^5")
    p.add_argument("--n", type=int, default=64, help="signal length")
    p.add_argument("--atoms", type=int, default=128, help="dictionary atoms m")
    p.add_argument("--k", type=int, default=4, help="OMP atoms per signal")
    p.add_argument("--chunk-size", type=int, default=65536)
    p.add_argument("--dir", default="/tmp/sparsejax_streaming_memory", help="where the signal files go")
    p.add_argument("--keep", action="store_true", help="keep the signal and code files")
    p.add_argument("--json", default=None, help="also append the JSON lines to this file")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per size")
    # the child process
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--signals", help=argparse.SUPPRESS)
    p.add_argument("--dict", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0

    sizes = [10_000, 100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",")]
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    D = rng.standard_normal((args.n, args.atoms)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0)
    np.save(folder / "D.npy", D)
    rows, status = [], 0
    for N in sizes:
        t0 = time.perf_counter()
        path = make_signals(folder / f"signals_{N}x{args.n}.npy", N, args.n)
        made = time.perf_counter() - t0
        out = folder / f"codes_{N}.npz"
        cmd = [sys.executable, "-m", "benchmarks.streaming_memory", "--child", "--signals", str(path), "--dict",
               str(folder / "D.npy"), "--out", str(out), "--k", str(args.k), "--chunk-size", str(args.chunk_size)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")])))
        try:
            res = subprocess.run(cmd, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(json.dumps({"benchmark": "streaming_memory", "signals": N, "error": "timeout"}), flush=True)
            status = 1
            continue
        if res.returncode != 0:
            print(json.dumps({"benchmark": "streaming_memory", "signals": N, "error": res.stderr[-2000:]}),
                  flush=True)
            status = 1
            continue
        row = json.loads(res.stdout.strip().splitlines()[-1])
        row["file_creation_s"] = round(made, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")
        if not args.keep:
            out.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
    if rows:
        print(f"\n== streaming coding, Batch-OMP k={args.k}, {args.n} x {args.atoms}, chunks of {args.chunk_size} "
              f"({platform.machine()}, {os.cpu_count()} cores, {rows[0]['backend']}) ==")
        print(f"{'signals':>12s} {'input MB':>9s} {'peak RSS MB':>12s} {'(at start)':>11s} {'seconds':>9s} "
              f"{'signals/s':>11s}")
        for r in rows:
            print(f"{r['signals']:12,d} {r['input_mb']:9.0f} {r['peak_rss_mb']:12.0f} {r['peak_rss_mb_before']:11.0f} "
                  f"{r['seconds']:9.1f} {r['signals_per_s']:11,.0f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
