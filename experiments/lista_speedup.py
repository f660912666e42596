"""LISTA speed-up over FISTA (Gregor & LeCun, "Learning fast approximations of sparse coding", ICML 2010).

Synthetic Gaussian dictionary D (n x m, unit-norm atoms); signals y = D a + v with k-sparse Gaussian a and
white noise v. Targets Z*(y): the Lasso solution min 1/2||y - D a||^2 + lam ||a||_1 from FISTA run to
convergence (``sparsejax.fista``, tol 1e-7). For T = 1, 2, 4, 8, 16 a ``sparsejax.nn.unfolded.LISTA`` network
with T recurrent layers, initialised at the ISTA values (then equal to T + 1 ISTA steps), is trained with
Adam on the mean squared code error ||Z_T(y) - Z*(y)||^2 (as Gregor-LeCun, who fitted the optimal codes).
On held-out signals we report LISTA's relative error e_T = sum||Z_T - Z*||^2 / sum||Z*||^2 and the number
of FISTA (and ISTA) iterations from 0 needed to reach the same error: the claim is that a T-layer LISTA
matches roughly ten times more FISTA iterations. ``passed`` (ran correctly): every error finite, training
improved on the ISTA initialisation for every T, and the reference FISTA solves (the targets) converged (else
the run is rejected). ``claim_shown``: for every T, FISTA needs at least 10 T iterations to reach the trained
LISTA's error (an order of magnitude, the published claim; a FISTA that never reaches it within ``max_fista``
counts as reaching the threshold only when ``max_fista`` >= 10 T). A speed-up of 1.5-3x is RAN, not PASS.

Presets: quick (n = 32, m = 64, 2,048 training signals, 600 Adam steps) and full (n = 64, m = 128, 16,384
signals, 6,000 steps).
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from sparsejax.dictionary import normalize_atoms
from sparsejax.nn.unfolded import LISTA, lista_params
from sparsejax.operators import Dense
from sparsejax.pursuit.ista import fista, fista_solver, ista_solver
from sparsejax.reproduce.experiment import Experiment, save_figure
from sparsejax.solve import iterate

NAME = "lista_speedup"
TITLE = "LISTA with T layers vs the number of FISTA iterations reaching the same code error"

PRESETS = {
    "quick": dict(n=32, m=64, k=4, sigma=0.02, lam=0.05, n_train=2048, n_test=512, Ts=(1, 2, 4, 8, 16),
               steps=600, batch=128, lr=1e-3, max_fista=1000),
    "full": dict(n=64, m=128, k=6, sigma=0.02, lam=0.05, n_train=16384, n_test=2048, Ts=(1, 2, 4, 8, 16),
                steps=6000, batch=256, lr=1e-3, max_fista=3000),
}
EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")


def _data(key, cfg, D, num):
    ka, kv, ks = jax.random.split(key, 3)
    m, k = cfg["m"], cfg["k"]
    supp = jax.vmap(lambda kk: jax.random.permutation(kk, m)[:k])(jax.random.split(ks, num))
    vals = jax.random.normal(ka, (num, k))
    A = jnp.zeros((num, m)).at[jnp.arange(num)[:, None], supp].set(vals)
    Y = A @ D.T + cfg["sigma"] * jax.random.normal(kv, (num, cfg["n"]))
    return Y


def _iterate_errors(solver_fn, D, Y, Zs, lam, L, K):
    """Relative error sum||a_k - Z*||^2 / sum||Z*||^2 after k = 1..K iterations from 0: ``iterate``'s per-step
    history (``mode="scan"``) of the squared distance to the target codes."""
    def per_signal(y, z):
        solver = solver_fn(D, y, lam, L)
        distance = solver._replace(objective=lambda state: jnp.sum((solver.codes(state) - z) ** 2))
        return iterate(distance, max_iter=K, tol=0.0, mode="scan", history=True).history   # (K,)

    num = jnp.sum(jax.jit(jax.vmap(per_signal))(Y, Zs), axis=0)
    return np.asarray(num / jnp.sum(Zs ** 2))


def _first_reaching(errs, target):
    hit = np.nonzero(errs <= target)[0]
    return int(hit[0]) + 1 if hit.size else None


def run(quick: bool, out_dir: Path, seed: int = 0, preset: str | None = None) -> dict:
    """Run a preset ("quick" when ``quick``, else ``preset``, default "full"); see the module docstring."""
    trial = EXPERIMENT.start(quick, preset, out_dir, seed)
    cfg, out_dir = trial.config, trial.out_dir
    key = jax.random.PRNGKey(seed)
    kd, ktr, kte, kb = jax.random.split(key, 4)
    D = normalize_atoms(jax.random.normal(kd, (cfg["n"], cfg["m"])))
    op = Dense(D)
    L = op.lipschitz()
    lam = cfg["lam"]
    Ytr, Yte = _data(ktr, cfg, D, cfg["n_train"]), _data(kte, cfg, D, cfg["n_test"])
    solve = jax.jit(jax.vmap(lambda y: (lambda s: (s.codes, s.converged))(fista(op, y, lam, max_iter=20000,
                                                                                tol=1e-7))))
    (Ztr, c_tr), (Zte, c_te) = solve(Ytr), solve(Yte)
    converged = {"FISTA targets": float(np.mean(np.concatenate([np.asarray(c_tr), np.asarray(c_te)])))}

    fista_err = _iterate_errors(lambda D_, y, lam_, L_: fista_solver(op, y, lam_, L_, jnp.zeros(cfg["m"])),
                                D, Yte, Zte, lam, L, cfg["max_fista"])
    ista_err = _iterate_errors(lambda D_, y, lam_, L_: ista_solver(op, y, lam_, 1.0 / L_, jnp.zeros(cfg["m"])),
                               D, Yte, Zte, lam, L, cfg["max_fista"])
    norm = float(jnp.sum(Zte ** 2))
    rows = []
    for T in cfg["Ts"]:
        net = LISTA(cfg["n"], cfg["m"], T)
        v0 = lista_params(op, lam)
        tx = optax.adam(cfg["lr"])

        def loss(v, Y, Z):
            return jnp.mean(jnp.sum((net.apply(v, Y) - Z) ** 2, axis=1))

        def train_step(carry, k):
            v, st = carry
            idx = jax.random.choice(k, cfg["n_train"], (cfg["batch"],), replace=False)
            l, g = jax.value_and_grad(loss)(v, Ytr[idx], Ztr[idx])
            upd, st = tx.update(g, st, v)
            return (optax.apply_updates(v, upd), st), l

        keys = jax.random.split(jax.random.fold_in(kb, T), cfg["steps"])
        (v, _), losses = jax.jit(lambda c: jax.lax.scan(train_step, c, keys))((v0, tx.init(v0)))
        test_err = lambda v: float(jnp.sum((net.apply(v, Yte) - Zte) ** 2)) / norm  # noqa: E731
        e0, e = test_err(v0), test_err(v)
        kf, ki = _first_reaching(fista_err, e), _first_reaching(ista_err, e)
        rows.append({"T": T, "init_err": e0, "lista_err": e, "fista_iters": kf, "ista_iters": ki,
                     "fista_iters_over_T": None if kf is None else kf / T,
                     "final_train_loss": float(losses[-1])})
    figs = _figure(out_dir, rows, fista_err, ista_err)
    ok = all(np.isfinite(r["lista_err"]) and r["lista_err"] < r["init_err"] for r in rows)
    claim = speedup_shown(rows, cfg["max_fista"])
    table = [{"T": r["T"], "LISTA error": r["lista_err"], "at ISTA init": r["init_err"],
              "FISTA its to match": r["fista_iters"] if r["fista_iters"] is not None else f"> {cfg['max_fista']}",
              "ISTA its to match": r["ista_iters"],
              "FISTA its / T": None if r["fista_iters"] is None else round(r["fista_iters"] / r["T"], 2),
              "predicted FISTA its / T": ">= 10 (about 10x)"} for r in rows]
    return EXPERIMENT.result(
        trial,
        measured={"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
                     "per_T": rows,
                     "fista_iters_needed": {r["T"]: r["fista_iters"] for r in rows},
                     "ista_iters_needed": {r["T"]: r["ista_iters"] for r in rows}},
        predicted={"Gregor-LeCun": "LISTA with T layers matches about 10x more (F)ISTA iterations",
                   "at init": "LISTA(T) = T + 1 ISTA steps"},
        table=table, converged=converged, figures=figs, passed=ok, claim_shown=claim,
    )


def speedup_shown(rows, max_fista: int, factor: float = 10.0) -> bool:
    """The published claim at this scale: for every T, FISTA needs at least ``factor`` T iterations to reach a
    T-layer LISTA's error (``fista_iters`` None: not reached within ``max_fista``, which then counts as
    ``max_fista``).

    Args:
      rows: one dict per T with "T" and "fista_iters".
      max_fista: the longest FISTA run measured.
      factor: the speed-up claimed (about 10x, Gregor & LeCun).

    Returns:
      True when every T shows the speed-up.
    """
    return bool(rows) and all((max_fista if r["fista_iters"] is None else r["fista_iters"]) >= factor * r["T"]
                              for r in rows)


def _figure(out_dir, rows, fista_err, ista_err):
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    k = np.arange(1, len(fista_err) + 1)
    ax.loglog(k, fista_err, label="FISTA from 0")
    ax.loglog(k, ista_err, label="ISTA from 0")
    for r in rows:
        ax.plot([r["T"] + 1], [r["init_err"]], "kx")
        ax.plot([r["T"] + 1], [r["lista_err"]], "ro")
        if r["fista_iters"]:
            ax.annotate(f"T={r['T']}: {r['fista_iters']} FISTA it.", (r["T"] + 1, r["lista_err"]), fontsize=7,
                        xytext=(5, 3), textcoords="offset points")
    ax.plot([], [], "ro", label="trained LISTA (at T + 1)")
    ax.plot([], [], "kx", label="LISTA at ISTA init (= T + 1 ISTA steps)")
    ax.set_xlabel("iterations / layers")
    ax.set_ylabel("relative code error ||Z - Z*||^2 / ||Z*||^2")
    ax.legend(fontsize=8)
    return [save_figure(fig, out_dir, f"{NAME}.png")]


def main(argv=None) -> int:
    return EXPERIMENT.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
