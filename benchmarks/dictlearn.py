"""Dense dictionary learning vs scikit-learn's MiniBatchDictionaryLearning, same data, one run.

    python -m benchmarks.dictlearn [--seed 1] [--repeat 1] [--sklearn-epochs 30]

Problem (Aharon, Elad & Bruckstein 2006, the K-SVD paper's synthetic test): a planted 20 x 50 dictionary of
unit Gaussian atoms, 1,500 signals with 3 atoms each (Gaussian coefficients), no noise. Every learner
starts from the same initial dictionary (50 random signals, normalised).

* sparsejax K-SVD (60 sweeps), MOD (50 sweeps), online (Mairal 2009, 150 mini-batches of 256): OMP codes
  with k = 3, rarely used atoms replaced (min_usage = 0.25);
* sparsejax Optax (Adam, cosine-decayed lr 0.05, 200 mini-batches of 256): Lasso codes, lam = 0.1, through a
  50-step unrolled FISTA;
* scikit-learn MiniBatchDictionaryLearning: Lasso codes (LARS) with alpha = lam = 0.1 (its fit has no
  l0 mode), batch 256, ``--sklearn-epochs`` passes over the data (30 epochs = 180 mini-batches).

Quality: atom recovery (fraction of true atoms with max |<d, d_true>| > 0.99) and the final representation
error ||Y - A D^T||_F / ||Y||_F with OMP (k = 3) codes of the learned dictionary, the same yardstick for all.
Time: wall clock of the whole learning run, compilation excluded (one warm-up run); the ratio column is
scikit-learn's time / ours (> 1: we are faster).
"""
from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._harness import Table, best_time
from sparsejax.learn.dense import atom_recovery, init_dictionary, learn_dictionary, representation_error
from sparsejax.pursuit.omp import omp_batch

try:
    from sklearn.decomposition import MiniBatchDictionaryLearning
except ImportError:  # pragma: no cover - optional reference
    MiniBatchDictionaryLearning = None

N_SIGNALS, N, M, K, LAM = 1500, 20, 50, 3, 0.1


def make_problem(seed=0, n=N, m=M, n_signals=N_SIGNALS, k=K):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n, m))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((n_signals, m))
    for i in range(n_signals):
        A[i, rng.choice(m, k, replace=False)] = rng.standard_normal(k)
    return D.astype(np.float32), (A @ D.T).astype(np.float32)


def quality(D, D_true, Y):
    D = jnp.asarray(D, jnp.float32)
    codes = omp_batch(D / jnp.linalg.norm(D, axis=0), jnp.asarray(Y), k=K).codes
    return {"recovery": atom_recovery(D, D_true),
            "rel_error_omp3": float(representation_error(D / jnp.linalg.norm(D, axis=0), jnp.asarray(Y), codes))}


OURS = {
    "ksvd": dict(sparsity=K, n_steps=60, min_usage=0.25),
    "mod": dict(sparsity=K, n_steps=50, min_usage=0.25),
    "online": dict(sparsity=K, n_steps=150, batch_size=256, forget=10.0, min_usage=0.25),
    "optax": dict(lam=LAM, n_steps=200, batch_size=256, grad="unrolled", max_iter=50),
}


def run_ours(method, Y, D0, key):
    kw = dict(OURS[method])
    if method == "optax":
        kw["optimizer"] = optax.adam(optax.cosine_decay_schedule(0.05, kw["n_steps"]))
    return learn_dictionary(Y, M, method=method, key=key, init=D0, progress=False, return_codes=False, **kw)


def run_sklearn(Y, D0, epochs, seed, fit_algorithm="lars"):
    est = MiniBatchDictionaryLearning(n_components=M, alpha=LAM, max_iter=epochs, batch_size=256,
                                      fit_algorithm=fit_algorithm, transform_algorithm="omp",
                                      transform_n_nonzero_coefs=K, dict_init=np.asarray(D0).T, shuffle=True,
                                      random_state=seed, tol=0.0, max_no_improvement=None)
    est.fit(Y)
    return est.components_.T


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--sklearn-epochs", type=int, default=30)
    p.add_argument("--methods", default="ksvd,mod,online,optax")
    p.add_argument("--fit-algorithm", default="lars", choices=("lars", "cd"), help="scikit-learn's Lasso solver")
    args = p.parse_args(argv)

    print(json.dumps({"jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
                      "sklearn": MiniBatchDictionaryLearning is not None}))
    D_true, Y = make_problem()
    key = jax.random.PRNGKey(args.seed)
    D0 = init_dictionary(jnp.asarray(Y), M, jax.random.fold_in(key, 7))
    table = Table("Dense dictionary learning, planted 20x50, 1500 signals, k=3, no noise (float32)")
    problem = "planted 20x50 / 1500 / k=3"

    t_ref = None
    if MiniBatchDictionaryLearning is not None:
        t_ref, Dsk = best_time(lambda: run_sklearn(Y, D0, args.sklearn_epochs, args.seed, args.fit_algorithm),
                               args.repeat, warmup=0)
        table.add(problem, f"sklearn MiniBatchDL {args.fit_algorithm} ({args.sklearn_epochs} ep)", t_ref,
                  quality(Dsk, D_true, Y))
    for method in [m for m in args.methods.split(",") if m]:
        t, res = best_time(lambda: run_ours(method, Y, D0, key), args.repeat)
        q = quality(res.dictionary, D_true, Y)
        q["steps"] = res.loop.steps
        table.add(problem, f"sparsejax {method}", t, q, reference_seconds=t_ref)
    table.print()


if __name__ == "__main__":
    main()
