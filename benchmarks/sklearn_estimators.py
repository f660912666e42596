"""sparsejax.sklearn estimators vs the scikit-learn estimators they mirror: same data, same parameters.

    python -m benchmarks.sklearn_estimators [--quick] [--signals 2000] [--repeat 3]

One row per estimator: our fit / transform time and scikit-learn's (best of ``--repeat`` after one warm-up call,
so compilation is excluded), the ratio (scikit-learn time / ours: > 1 means we are faster) and the quality at which
the two are compared: the objective each reaches (Lasso / dictionary learning: 1/2 ||X - U V||^2 + alpha ||U||_1
per signal; OMP: the squared residual), their relative difference, and the load average of the machine when the row
was measured (the times are noisy on a loaded machine).

Data: ``--signals`` signals of 64 values (Gaussian mixtures of 5 atoms of a 64 x 128 unit-norm Gaussian dictionary
plus 1% noise), float64 (scikit-learn computes in float64). The convolutional pair has no scikit-learn counterpart;
its reference is scikit-learn's ``SparseCoder`` over the equivalent circulant dictionary (same problem).
"""
from __future__ import annotations

import argparse
import os
import warnings

import numpy as np
from sklearn import decomposition as skd
from sklearn import linear_model as skl
from sklearn.exceptions import ConvergenceWarning

from benchmarks._harness import best_time
from sparsejax import sklearn as sjs


def load() -> float:
    return os.getloadavg()[0]


def data(n_signals, n=64, m=128, k=5, seed=0):
    rng = np.random.RandomState(seed)
    atoms = rng.normal(size=(m, n))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((n_signals, m))
    for i in range(n_signals):
        codes[i, rng.choice(m, k, replace=False)] = rng.normal(size=k)
    X = codes @ atoms + 0.01 * rng.normal(size=(n_signals, n))
    return atoms, X


def lasso_obj(X, U, V, alpha):
    R = X - U @ V
    return float(np.mean(0.5 * np.sum(R * R, 1) + alpha * np.sum(np.abs(U), 1)))


def circulant(filters, N):
    rows = []
    for f in filters:
        base = np.zeros(N)
        base[:len(f)] = f
        rows += [np.roll(base, j) for j in range(N)]
    return np.array(rows)


def row(name, ours_s, ref_s, q_ours, q_ref, what):
    rel = abs(q_ours - q_ref) / max(abs(q_ref), 1e-300)
    print(f"{name:44s} {ours_s:10.4f} {ref_s:10.4f} {ref_s / ours_s:8.2f}x  {what}: {q_ours:.6g} vs {q_ref:.6g} "
          f"(rel. diff {rel:.1e})  load {load():.1f}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200 signals, one repeat (seconds, for CI)")
    p.add_argument("--signals", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    B = 200 if a.quick else a.signals
    rep = 1 if a.quick else a.repeat
    atoms, X = data(B)
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"{B} signals of {X.shape[1]}, {atoms.shape[0]} atoms, float64; times in seconds (best of {rep}); "
          f"ratio = scikit-learn / sparsejax")
    print(f"{'estimator':44s} {'sparsejax':>10s} {'sklearn':>10s} {'ratio':>9s}  quality")

    alpha = 0.1
    for algo, kw in [("omp", dict(transform_n_nonzero_coefs=5)), ("lasso_lars", dict(transform_alpha=alpha)),
                     ("lasso_cd", dict(transform_alpha=alpha)), ("lars", dict(transform_n_nonzero_coefs=5)),
                     ("threshold", dict(transform_alpha=alpha))]:
        ours = sjs.SparseCoder(atoms, transform_algorithm=algo, **kw)
        ref = skd.SparseCoder(atoms, transform_algorithm=algo, **kw)
        t1, U1 = best_time(lambda: ours.transform(X), repeat=rep)
        t2, U2 = best_time(lambda: ref.transform(X), repeat=rep)
        q = (lambda U: lasso_obj(X, U, atoms, alpha)) if "lasso" in algo or algo == "threshold" else \
            (lambda U: lasso_obj(X, U, atoms, 0.0))
        row(f"SparseCoder({algo}).transform", t1, t2, q(U1), q(U2), "objective")

    # the linear models: the atoms as the design matrix, 50 targets at once (scikit-learn loops over targets)
    D, Y = atoms.T, X[:50].T
    for name, ours, ref in [
        ("OrthogonalMatchingPursuit(5).fit", sjs.OrthogonalMatchingPursuit(n_nonzero_coefs=5, fit_intercept=False),
         skl.OrthogonalMatchingPursuit(n_nonzero_coefs=5, fit_intercept=False)),
        ("Lasso(alpha=1e-3).fit", sjs.Lasso(alpha=1e-3, fit_intercept=False),
         skl.Lasso(alpha=1e-3, fit_intercept=False, tol=1e-8, max_iter=10_000)),
        ("LassoLars(alpha=1e-3).fit", sjs.LassoLars(alpha=1e-3, fit_intercept=False),
         skl.LassoLars(alpha=1e-3, fit_intercept=False)),
    ]:
        t1, m1 = best_time(lambda: ours.fit(D, Y), repeat=rep)
        t2, m2 = best_time(lambda: ref.fit(D, Y), repeat=rep)
        a_ = getattr(ref, "alpha", 0.0) * D.shape[0]          # back to the 1/2 ||.||^2 + lam ||.||_1 scale
        row(name, t1, t2, lasso_obj(Y.T, m1.coef_, D.T, a_), lasso_obj(Y.T, m2.coef_, D.T, a_), "objective")

    # dictionary learning: the same SVD start, the same number of sweeps / passes
    Xs = X[: min(B, 500)]
    for name, ours, ref in [
        ("DictionaryLearning(32, 10 sweeps).fit", sjs.DictionaryLearning(32, alpha=alpha, max_iter=10, tol=0),
         skd.DictionaryLearning(32, alpha=alpha, max_iter=10, tol=0)),
        ("MiniBatchDictionaryLearning(32, 2 passes).fit",
         sjs.MiniBatchDictionaryLearning(32, alpha=alpha, max_iter=2, batch_size=100, tol=0, random_state=0),
         skd.MiniBatchDictionaryLearning(32, alpha=alpha, max_iter=2, batch_size=100, tol=0, random_state=0)),
    ]:
        t1, m1 = best_time(lambda: ours.fit(Xs), repeat=rep)
        t2, m2 = best_time(lambda: ref.fit(Xs), repeat=rep)
        # quality: the objective of each learned dictionary, both coded by scikit-learn's Lasso (one judge)
        q1 = lasso_obj(Xs, skd.sparse_encode(Xs, m1.components_, alpha=alpha), m1.components_, alpha)
        q2 = lasso_obj(Xs, skd.sparse_encode(Xs, m2.components_, alpha=alpha), m2.components_, alpha)
        row(name, t1, t2, q1, q2, "objective")

    # convolutional: CBPDN vs scikit-learn's Lasso over the circulant dictionary (the same problem)
    rng = np.random.RandomState(1)
    filters = rng.normal(size=(4, 8))
    filters /= np.linalg.norm(filters, axis=1, keepdims=True)
    S = rng.normal(size=(20 if a.quick else 100, 64))
    C = circulant(filters, 64)
    ours = sjs.ConvSparseCoder(filters, transform_alpha=alpha, transform_max_iter=500, tol=1e-5)
    ref = skd.SparseCoder(C, transform_algorithm="lasso_cd", transform_alpha=alpha)
    t1, Z1 = best_time(lambda: ours.transform(S), repeat=rep)
    t2, Z2 = best_time(lambda: ref.transform(S), repeat=rep)
    row("ConvSparseCoder.transform (vs circulant Lasso)", t1, t2, lasso_obj(S, Z1, C, alpha),
        lasso_obj(S, Z2, C, alpha), "objective")
    cdl = sjs.ConvDictionaryLearning(4, 8, alpha=alpha, max_iter=20, random_state=0)
    t1, _ = best_time(lambda: cdl.fit(S.astype(np.float32)), repeat=1)
    print(f"{'ConvDictionaryLearning(4, 8, 20 steps).fit':44s} {t1:10.4f} {'-':>10s} {'-':>9s}  objective "
          f"{cdl.error_[0]:.6g} -> {cdl.error_[-1]:.6g} (no scikit-learn counterpart)  load {load():.1f}")


if __name__ == "__main__":
    main()
