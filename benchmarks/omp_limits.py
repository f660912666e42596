"""Batch-OMP against SPAMS and against the machine's GEMM-bound limit, in one run.

    python -m benchmarks.omp_limits [--signals 10000] [--k 8] [--repeat 7] [--scaling 10000,100000,1000000]

For float32 and float64 on the same signals (10,000 x 64, 256 unit-norm Gaussian atoms, k = 8): our
``omp_batch`` time, ``spams.omp``'s time (numThreads=-1), their ratio, and the GEMM-bound limit

    limit = flops(Batch-OMP) / (this machine's GEMM rate, measured in this run),
    flops per signal = 2 n m (D^T y) + sum_{j=1..k} [2 m j (alpha update from j Gram rows) + 4 j^2 (Cholesky row)]
                       + 2 k^2 (a_S = U^T z),

with the load average printed beside each row. ``same supp`` is the fraction of signals whose support equals
SPAMS's; SPAMS's float32 OMP (spams-bin 2.6) returns all-zero codes on some inputs, so ``SPAMS nz`` (signals with
any nonzero SPAMS code) is printed beside it. The two libraries are timed alternately, best of ``repeat``
each, so that the machine's load affects both alike.

``--scaling``: time per signal and peak resident memory of ``omp_batch`` at each batch size, each size in a fresh
subprocess (resident memory sampled every millisecond during the calls). The inputs and the dense (B, m) codes grow
with B by construction; the rest (printed as peak - I/O: interpreter, XLA, working memory) is what the blocking should keep flat.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

import sparsejax as sj
from sparsejax.pursuit.omp import omp_batch

# With the default OMP_WAIT_POLICY, SPAMS's OpenMP threads keep spinning after each call and take the cores from
# whatever runs next (our calls, timed in turn with SPAMS's, were 1.3-1.6x slower). Passive waiting must be set before
# the OpenMP runtime loads; SPAMS's own times are unchanged by it (float64: 58.7 vs 59.8 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
    import spams
except ImportError:  # pragma: no cover - optional reference
    spams = None


def batch_omp_flops(B: int, n: int, m: int, k: int) -> float:
    """Floating-point operations of Gram-form Batch-OMP for B signals (multiply and add counted apart)."""
    per = 2.0 * n * m + sum(2.0 * m * j + 4.0 * j * j for j in range(1, k + 1)) + 2.0 * k * k
    return B * per


def gemm_rate(dtype, size: int = 1024, repeat: int = 5) -> float:
    """This machine's GEMM rate in FLOP/s (best of ``repeat`` square products of ``size``; all cores, through XLA)."""

    a = jnp.ones((size, size), dtype)
    f = jax.jit(lambda x, y: x @ y)
    jax.block_until_ready(f(a, a))
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(f(a, a))
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 / best


def make_signals(B: int, n: int = 64, m: int = 256, k: int = 8, noise: float = 0.01, seed: int = 0):
    """Unit-norm Gaussian dictionary (n, m) and B signals with k-sparse codes plus noise (vectorised: fast for 10^6)."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0, keepdims=True)
    Y = np.empty((B, n), np.float32)
    for lo in range(0, B, 50_000):                     # in slabs: bounded temporaries at 10^6 signals
        b = min(B, lo + 50_000) - lo
        idx = np.argsort(rng.random((b, m)), axis=1)[:, :k]
        vals = (rng.standard_normal((b, k)) + np.sign(rng.standard_normal((b, k)))).astype(np.float32)
        Y[lo:lo + b] = np.einsum("bk,nbk->bn", vals, D[:, idx]) + noise * rng.standard_normal((b, n))
    return D, Y.astype(np.float32)


def _alternate(fns: dict, repeat: int) -> dict:
    """Best wall time of each function, calling them in turn ``repeat`` times (after one warm-up each)."""

    for f in fns.values():
        jax.block_until_ready(f())
    best = {name: np.inf for name in fns}
    for _ in range(repeat):
        for name, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def compare(D, Y, k: int, repeat: int, dtype_name: str, rate: float) -> dict:
    """Our ``omp_batch`` vs ``spams.omp`` in ``dtype_name``, with the GEMM limit at ``rate`` FLOP/s."""


    dtype = np.float32 if dtype_name == "float32" else np.float64
    with jax.enable_x64(dtype_name == "float64"):
        Dj, Yj = jnp.asarray(D, dtype), jnp.asarray(Y, dtype)
        fns = {"ours": lambda: omp_batch(Dj, Yj, k=k), "ours_1dev": lambda: omp_batch(Dj, Yj, k=k, devices=1)}
        if spams is not None:
            Xf, Df = np.asfortranarray(Y.T.astype(dtype)), np.asfortranarray(D.astype(dtype))
            fns["spams"] = lambda: spams.omp(Xf, D=Df, L=k, numThreads=-1)
        best = _alternate(fns, repeat)
        ours = omp_batch(Dj, Yj, k=k)
        row = {"dtype": dtype_name, "signals": len(Y), "devices": sj.cpu_cores_in_use(), "ours_ms": 1e3 * best["ours"],
               "ours_1dev_ms": 1e3 * best["ours_1dev"]}
        if spams is not None:
            C = np.asarray(spams.omp(Xf, D=Df, L=k, numThreads=-1).todense()).T
            same = np.all((C != 0) == (np.asarray(ours.codes) != 0), axis=1)
            row.update(spams_ms=1e3 * best["spams"], ratio=best["spams"] / best["ours"],
                       ratio_1dev=best["spams"] / best["ours_1dev"],
                       same_support=float(same.mean()), spams_nonzero=float(np.mean(np.any(C != 0, axis=1))))
    flops = batch_omp_flops(len(Y), D.shape[0], D.shape[1], k)
    row.update(mflop=flops / 1e6, gemm_gflops=rate / 1e9, limit_ms=1e3 * flops / rate,
               ours_over_limit=best["ours"] * rate / flops, load=os.getloadavg()[0])
    return row


def _rss_mb() -> float:
    """Current resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:  # pragma: no cover - not Linux
        return 0.0


def _one_size(B: int, k: int, repeat: int) -> dict:
    """Run in a subprocess: time and peak memory of omp_batch on B signals. The peak is the resident memory
    sampled every millisecond by a thread during the timed calls; ``before_MB`` = resident memory just before
    the call; ``beyond_io_MB`` = peak - (signals + dense codes): the interpreter, XLA and the working memory."""



    D, Y = make_signals(B, seed=1)
    Dj, Yj = jnp.asarray(D), jnp.asarray(Y)
    jax.block_until_ready(omp_batch(Dj, Yj, k=k))                           # compile (same shape)
    before = _rss_mb()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        sol = jax.block_until_ready(omp_batch(Dj, Yj, k=k))
        best = min(best, time.perf_counter() - t0)
        del sol
    done.set()
    th.join()
    io_mb = (B * D.shape[1] + Y.size) * 4 / 2 ** 20                    # the signals and the dense codes
    return {"signals": B, "us_per_signal": 1e6 * best / B, "peak_MB": peak[0], "before_MB": before,
            "io_MB": io_mb, "beyond_io_MB": peak[0] - io_mb, "load": os.getloadavg()[0]}


def scaling(sizes, k: int, repeat: int, cores: int = 1) -> list:
    """``_one_size`` for each size, each in a fresh interpreter (so that maxrss is that size's peak)."""
    rows = []
    for B in sizes:
        code = ("import json, sys; import sparsejax as sj; from benchmarks.omp_limits import _one_size; "
                f"sj.use_cpu_cores({cores}); print('ROW ' + json.dumps(_one_size({B}, {k}, {repeat})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        line = [s for s in out.stdout.splitlines() if s.startswith("ROW ")]
        if not line:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        rows.append(json.loads(line[0][4:]))
        print(json.dumps({"problem": "omp scaling", **rows[-1]}), flush=True)
    return rows


def print_tables(rows, scale_rows):
    print("\n== Batch-OMP, k = 8, 64 x 256: ours vs SPAMS vs the GEMM-bound limit ==")
    nd = rows[0]["devices"]
    print(f"ours: omp_batch after sparsejax.use_cpu_cores() ({nd} CPU devices)" if nd > 1 else
          "ours: omp_batch on one XLA:CPU device (use_cpu_cores() not called)", "; 1 dev: omp_batch(devices=1)")
    hdr = (f"{'dtype':8s} {'signals':>8s} {'ours ms':>8s} {'1 dev ms':>8s} {'SPAMS ms':>9s} {'SPAMS/ours':>10s} "
           f"{'SPAMS/1dev':>10s} {'same supp':>9s} {'SPAMS nz':>9s} "
           f"{'GEMM GF/s':>9s} {'limit ms':>8s} {'ours/limit':>10s} {'load':>5s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        sp = (f"{r['spams_ms']:9.1f} {r['ratio']:9.2f}x {r['ratio_1dev']:9.2f}x {r['same_support']:9.3f} "
              f"{r['spams_nonzero']:9.3f}" if "spams_ms" in r else " " * 52)
        print(f"{r['dtype']:8s} {r['signals']:8d} {r['ours_ms']:8.1f} {r['ours_1dev_ms']:8.1f} {sp} {r['gemm_gflops']:9.0f} "
              f"{r['limit_ms']:8.2f} {r['ours_over_limit']:9.1f}x {r['load']:5.2f}")
    if scale_rows:
        print("\n== omp_batch scaling (float32; each size in its own process) ==")
        print(f"{'signals':>9s} {'us/signal':>10s} {'vs first':>9s} {'peak MB':>8s} {'I/O MB':>8s} {'peak-I/O':>8s} {'load':>5s}")
        base = scale_rows[0]["us_per_signal"]
        for r in scale_rows:
            print(f"{r['signals']:9d} {r['us_per_signal']:10.3f} {r['us_per_signal'] / base:9.3f} {r['peak_MB']:8.0f} "
                  f"{r['io_MB']:8.0f} {r['beyond_io_MB']:8.0f} {r['load']:5.2f}")
    if "ratio_vs_spams_f64" in rows[0]:
        r = rows[0]
        print(f"ours float32 {r['ours_ms']:.1f} ms vs SPAMS float64 {rows[1]['spams_ms']:.1f} ms: "
              f"{r['ratio_vs_spams_f64']:.2f}x (SPAMS's float32 OMP is not a usable reference)")
    print("same supp: signals whose support equals SPAMS's; SPAMS nz: signals SPAMS gave any nonzero code (its float32 "
          "OMP returns all-zero codes on some inputs, so its float32 time is not a like-for-like reference)")


def run(signals: int = 10_000, k: int = 8, repeat: int = 7, sizes=()):
    """The whole comparison: both dtypes, then the scaling; returns (rows, scaling rows)."""

    D, Y = make_signals(signals)
    rows = []
    for name, dt in (("float32", jnp.float32), ("float64", jnp.float64)):
        with jax.enable_x64(name == "float64"):
            rate = gemm_rate(dt)
        rows.append(compare(D, Y, k, repeat, name, rate))
        print(json.dumps({"problem": "omp vs spams vs limit", **rows[-1]}), flush=True)
    if "spams_ms" in rows[1]:   # SPAMS's float32 OMP is unreliable (see SPAMS nz): its float64 is the reference
        rows[0]["ratio_vs_spams_f64"] = rows[1]["spams_ms"] / rows[0]["ours_ms"]
        print(json.dumps({"problem": "omp float32 vs SPAMS float64", "ours_ms": rows[0]["ours_ms"],
                          "spams_f64_ms": rows[1]["spams_ms"], "ratio": rows[0]["ratio_vs_spams_f64"],
                          "load": os.getloadavg()[0]}), flush=True)
    scale_rows = scaling(sizes, k, max(1, repeat // 3), sj.cpu_cores_in_use()) if sizes else []
    print_tables(rows, scale_rows)
    return rows, scale_rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--signals", type=int, default=10_000)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--scaling", default="10000,100000,1000000")
    p.add_argument("--one-device", action="store_true",
                   help="do not call sparsejax.use_cpu_cores() (ours = one XLA:CPU device)")
    a = p.parse_args(argv)
    if not a.one_device:
        sj.use_cpu_cores()      # the configuration the README recommends: one XLA:CPU device per core
    run(a.signals, a.k, a.repeat, [int(s) for s in a.scaling.split(",") if s])


if __name__ == "__main__":
    main()
