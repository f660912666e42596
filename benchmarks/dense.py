"""Dense Sparseland pursuits vs scikit-learn and SPAMS: same problems, same accuracy, one run.

    python -m benchmarks.dense [--signals 10000] [--scaling 1000,10000,100000] [--omp-scaling 10000,100000,1000000]
                               [--repeat 3]

(a) OMP: 10,000 signals, 64 x 256 unit-norm Gaussian dictionary, k = 8, noise 0.01 (per entry):
    sparsejax Batch-OMP vs sklearn.linear_model.orthogonal_mp_gram vs spams.omp. SPAMS is timed in
    float64: its float32 OMP returns wrong codes in some runs (see the quality columns).
(b) Lasso: lam = 0.1 on the same signals, objective 1/2||y - Da||^2 + lam||a||_1 per signal, quality
    = relative objective gap (F - F*) / F* against a float64 reference (SPAMS LARS in float64, exact
    up to round-off; our float64 FISTA when SPAMS is missing), vs sklearn SparseCoder('lasso_cd') and
    spams.lasso.
(c) Batch scaling: seconds per signal of our Lasso at 1k / 10k / 100k signals (``--scaling``).
(d) OMP against SPAMS and the GEMM-bound limit (``benchmarks.omp_limits``): ours, SPAMS, ratio, this machine's GEMM
    rate measured in the run, the limit flops / rate, ours / limit and the load average, in float32 and float64;
    then OMP's time per signal and peak memory at 10^4 / 10^5 / 10^6 signals (``--omp-scaling``), each size in its
    own process.

Prints one JSON line per measurement and a table; the ratio column is reference time / our time.
"""
from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import sparsejax as sj
from benchmarks import omp_limits
from benchmarks._harness import Table, best_time
from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.omp import omp_batch

try:
    import spams
except ImportError:  # pragma: no cover - optional reference
    spams = None
try:
    from sklearn.decomposition import SparseCoder
    from sklearn.linear_model import orthogonal_mp_gram
except ImportError:  # pragma: no cover
    SparseCoder = orthogonal_mp_gram = None


def make_problem(n_signals, n=64, m=256, k=8, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0, keepdims=True)
    A = np.zeros((n_signals, m), np.float32)
    for i in range(n_signals):
        idx = rng.choice(m, k, replace=False)
        A[i, idx] = rng.standard_normal(k) + np.sign(rng.standard_normal(k))
    Y = A @ D.T + noise * rng.standard_normal((n_signals, n)).astype(np.float32)
    return D, Y.astype(np.float32), A


def lasso_obj(D, Y, codes, lam):
    D = np.asarray(D, np.float64)
    Y = np.asarray(Y, np.float64)
    C = np.asarray(codes, np.float64)
    R = Y - C @ D.T
    return 0.5 * np.sum(R * R, axis=1) + lam * np.sum(np.abs(C), axis=1)


def gap_stats(F, Fstar):
    g = (F - Fstar) / np.abs(Fstar)
    return {"gap_median": float(np.median(g)), "gap_p99": float(np.quantile(g, 0.99)), "gap_max": float(np.max(g))}


def omp_quality(D, Y, A, codes):
    codes = np.asarray(codes)
    supp_ok = np.all((codes != 0) == (A != 0), axis=1)
    res = np.linalg.norm(Y - codes @ D.T, axis=1) / np.linalg.norm(Y, axis=1)
    return {"support_exact": float(supp_ok.mean()), "rel_residual": float(res.mean())}


def reference_lasso(D, Y, lam):
    """F* per signal from a float64 solve."""
    if spams is not None:
        X = np.asfortranarray(Y.T.astype(np.float64))
        C = spams.lasso(X, D=np.asfortranarray(D.astype(np.float64)), lambda1=lam, mode=2, numThreads=-1)
        C = np.asarray(C.todense()).T
        return lasso_obj(D, Y, C, lam)
    with jax.enable_x64(True):
        sol = jax.vmap(lambda y: sj.fista(jnp.asarray(D, jnp.float64), y, lam, tol=1e-13, max_iter=20000, restart=True))(
            jnp.asarray(Y, jnp.float64))
        return lasso_obj(D, Y, sol.codes, lam)


def bench_omp(table, D, Y, A, k, repeat):
    Dj, Yj = jnp.asarray(D), jnp.asarray(Y)
    G = Dj.T @ Dj
    t_ours, sol = best_time(lambda: omp_batch(Dj, Yj, k=k, gram=G), repeat)
    q = omp_quality(D, Y, A, sol.codes)
    B = len(Y)
    refs = {}
    if spams is not None:
        # SPAMS' float32 OMP is unreliable here (all-zero codes with numThreads=1; with numThreads=-1 between 12% and
        # 87% exact supports from run to run), so its float64 run is the reference; the float32 run is
        # printed for the record with its (bad) quality.
        Xf, Df = np.asfortranarray(Y.T), np.asfortranarray(D)
        t, C = best_time(lambda: spams.omp(Xf, D=Df, L=k, numThreads=-1), repeat)
        table.add("OMP k=8, %d x 64x256" % B, "spams.omp (f32: unreliable)", t,
                  omp_quality(D, Y, A, np.asarray(C.todense()).T), B)
        Xd, Dd = np.asfortranarray(Y.T.astype(np.float64)), np.asfortranarray(D.astype(np.float64))
        t, C = best_time(lambda: spams.omp(Xd, D=Dd, L=k, numThreads=-1), repeat)
        refs["spams.omp"] = t
        table.add("OMP k=8, %d x 64x256" % B, "spams.omp (f64)", t, omp_quality(D, Y, A, np.asarray(C.todense()).T), B)
    if orthogonal_mp_gram is not None:
        Gn, DtY = np.asarray(G), D.T @ Y.T
        t, C = best_time(lambda: orthogonal_mp_gram(Gn, DtY, n_nonzero_coefs=k), max(1, repeat // 2), warmup=0)
        refs["sklearn.orthogonal_mp_gram"] = t
        table.add("OMP k=8, %d x 64x256" % B, "sklearn orthogonal_mp_gram", t, omp_quality(D, Y, A, C.T), B)
    ref = refs.get("spams.omp", refs.get("sklearn.orthogonal_mp_gram"))
    table.add("OMP k=8, %d x 64x256" % B, "sparsejax omp_batch", t_ours, q, B, reference_seconds=ref,
              ratios={name: t / t_ours for name, t in refs.items()})
    return t_ours


def bench_lasso(table, D, Y, lam, repeat, Fstar):
    Dj, Yj = jnp.asarray(D), jnp.asarray(Y)
    B = len(Y)
    name = "Lasso lam=%.2g, %d x 64x256" % (lam, B)
    t_ours, sol = best_time(lambda: lasso_batch(Dj, Yj, lam, tol=1e-6), repeat)
    q = gap_stats(lasso_obj(D, Y, sol.codes, lam), Fstar)
    q["converged"] = float(np.mean(np.asarray(sol.converged)))
    refs = {}
    if spams is not None:
        Xf, Df = np.asfortranarray(Y.T), np.asfortranarray(D)
        t, C = best_time(lambda: spams.lasso(Xf, D=Df, lambda1=lam, mode=2, numThreads=-1), repeat)
        refs["spams.lasso"] = t
        table.add(name, "spams.lasso (LARS, f32)", t, gap_stats(lasso_obj(D, Y, np.asarray(C.todense()).T, lam), Fstar), B)
    if SparseCoder is not None:
        coder = SparseCoder(dictionary=D.T, transform_algorithm="lasso_cd", transform_alpha=lam, n_jobs=None)
        sub = Y[: min(B, 2000)]  # sklearn is slow: time a slice, scale linearly
        t, C = best_time(lambda: coder.transform(sub), 1, warmup=0)
        t = t * B / len(sub)
        refs["sklearn SparseCoder lasso_cd"] = t
        table.add(name, "sklearn SparseCoder lasso_cd", t,
                  gap_stats(lasso_obj(D, sub, C, lam), Fstar[: len(sub)]), B, note="timed on %d signals, scaled" % len(sub))
    # the naive baseline: jit + vmap FISTA, 200 iterations
    naive = jax.jit(jax.vmap(lambda y: sj.fista(Dj, y, lam, max_iter=200, tol=0.0).codes))
    t, C = best_time(lambda: naive(Yj), repeat)
    table.add(name, "naive vmap FISTA (200 it)", t, gap_stats(lasso_obj(D, Y, C, lam), Fstar), B)
    ref = refs.get("spams.lasso")
    table.add(name, "sparsejax lasso_batch", t_ours, q, B, reference_seconds=ref,
              ratios={k: v / t_ours for k, v in refs.items()})
    return t_ours


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--signals", type=int, default=10_000)
    p.add_argument("--scaling", default="1000,10000,100000")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--lam", type=float, default=0.1)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--omp-scaling", default="10000,100000,1000000")
    p.add_argument("--omp-repeat", type=int, default=7, help="alternating repeats of ours vs SPAMS (best of)")
    args = p.parse_args(argv)

    print(json.dumps({"jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
                      "spams": spams is not None, "sklearn": SparseCoder is not None}))
    limit_rows, omp_scale = omp_limits.run(args.signals, args.k, args.omp_repeat,
                                           [int(b) for b in args.omp_scaling.split(",") if b])
    table = Table("Dense pursuits (float32)")
    D, Y, A = make_problem(args.signals)
    bench_omp(table, D, Y, A, args.k, args.repeat)
    Fstar = reference_lasso(D, Y, args.lam)
    bench_lasso(table, D, Y, args.lam, args.repeat, Fstar)

    sizes = [int(s) for s in args.scaling.split(",") if s]
    per = {"lasso": []}
    for B in sizes:
        Db, Yb, Ab = make_problem(B, seed=1)
        Dj, Yj = jnp.asarray(Db), jnp.asarray(Yb)
        t, sol = best_time(lambda: lasso_batch(Dj, Yj, args.lam, tol=1e-6), max(1, args.repeat - 1))
        per["lasso"].append(t / B)
        table.add(f"scaling Lasso {B}", "sparsejax lasso_batch", t, {"converged": float(np.mean(np.asarray(sol.converged)))},
                  B, us_per_signal=1e6 * t / B)
    table.print()
    omp_limits.print_tables(limit_rows, omp_scale)
    if len(omp_scale) >= 2:
        flat = omp_scale[-1]["us_per_signal"] / omp_scale[0]["us_per_signal"]
        print(f"omp: time per signal at {omp_scale[-1]['signals']} / at {omp_scale[0]['signals']} = {flat:.3f} "
              f"(target within 1.15)")
    if len(sizes) >= 2:
        for name, v in per.items():
            i10 = sizes.index(10_000) if 10_000 in sizes else 0
            flat = v[-1] / v[i10]
            print(f"{name}: time per signal at {sizes[-1]} / at {sizes[i10]} = {flat:.3f} (target within 1.15)")
            print(json.dumps({"problem": f"scaling {name}", "per_signal_ratio": flat,
                              "us_per_signal": {str(b): 1e6 * x for b, x in zip(sizes, v)}}))


if __name__ == "__main__":
    main()
