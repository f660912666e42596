"""OMP exact-support recovery (Donoho, Elad & Temlyakov, "Stable recovery of sparse overcomplete representations
in the presence of noise", IEEE Trans. IT 52(1), 2006, Thm 5.1; Tropp, "Greed is good", IEEE Trans. IT 50(10),
2004 for eps = 0; the T2 bound of ``sparsejax.theory.dense``).

y = D a + v, ||v||_2 = eps, ||a||_0 = k, |a|_min >= amin, D = [I, H/sqrt(n)] (mu = 1/sqrt(n)). OMP with the
stopping rule ||r||_2 <= eps recovers the support exactly, with ||a^ - a||^2 <= eps^2/(1 - mu(k - 1)), whenever

    k < (1 + 1/mu)/2 - eps / (mu amin).

We measure the exact-support success rate over random supports on a grid of (k, eps). The theorem is a
worst-case statement: success must be 100% left of the condition line; random supports typically succeed
far beyond it.

Presets: quick (14 sparsities x 7 noise levels, 60 trials per cell) and full (18 x 11, 300 trials).
``passed``: 100% success and the error bound wherever the condition holds (the theorem's claim, so
``claim_shown`` is the same verdict).
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from sparsejax.dictionary import mutual_coherence
from sparsejax.reproduce.experiment import Experiment, save_figure
from sparsejax.theory import dense as theory

NAME = "omp_success"
TITLE = "OMP exact-support success rate vs k and noise, against the coherence condition"

PRESETS = {
    "quick": dict(n=256, k_values=[1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 48],
               eps_values=[0.0, 0.1, 0.2, 0.4, 1.0, 2.0, 4.0], trials=60, amin=1.0, amplitude=2.0),
    "full": dict(n=256, k_values=[1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80],
                eps_values=[0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0], trials=300,
                amin=1.0, amplitude=2.0),
}
EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")


def _figures(out_dir: Path, ks, eps_values, rate, mu, amin):
    names = []
    ks = np.asarray(ks)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    colors = [f"C{i}" for i in range(len(eps_values))]
    for j, (e, c) in enumerate(zip(eps_values, colors)):
        ax.plot(ks, 100 * rate[:, j], "o-", color=c, ms=4, label=f"eps = {e:g}")
        thr = 0.5 * (1 + 1 / mu) - e / (mu * amin)
        if thr > 0:
            ax.axvline(thr, color=c, ls="--", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sparsity k")
    ax.set_ylabel("exact support recovered (%)")
    ax.set_title(f"OMP on [I, H], mu = {mu:.4f}, |a|min = {amin}; dashed: "
                 r"$k = (1+1/\mu)/2 - \epsilon/(\mu a_{min})$", fontsize=9)
    ax.legend(fontsize=7)
    names.append(save_figure(fig, out_dir, f"{NAME}_vs_k.png"))

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    im = ax.imshow(100 * rate.T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, label="success (%)")
    ax.set_xticks(range(len(ks)), [str(k) for k in ks], fontsize=7)
    ax.set_yticks(range(len(eps_values)), [f"{e:g}" for e in eps_values], fontsize=7)
    # the condition boundary, per noise row: cells left of it are covered by the theorem
    for j, e in enumerate(eps_values):
        thr = 0.5 * (1 + 1 / mu) - e / (mu * amin)
        inside = np.nonzero(ks < thr)[0]
        if inside.size:
            ax.plot([-0.5, inside[-1] + 0.5], [j, j], color="w", lw=3)
    ax.set_xlabel("sparsity k")
    ax.set_ylabel("noise eps = ||v||_2")
    ax.set_title("success rate; white bars: cells where the condition holds (theorem: 100%)", fontsize=9)
    names.append(save_figure(fig, out_dir, f"{NAME}_grid.png"))
    return names


def run(quick: bool, out_dir: Path, seed: int = 0, preset: str | None = None) -> dict:
    """Run a preset ("quick" when ``quick``, else ``preset``, default "full"); see the module docstring."""
    trial = EXPERIMENT.start(quick, preset, out_dir, seed)
    p, out_dir = trial.config, trial.out_dir
    ks, epss, amin = p["k_values"], p["eps_values"], p["amin"]
    rate = np.zeros((len(ks), len(epss)))
    cond = np.zeros((len(ks), len(epss)), bool)
    err_ratio = []
    solver = None
    with jax.enable_x64(True):
        D = theory.identity_hadamard(p["n"], jnp.float64)
        mu = float(mutual_coherence(D))
        key = jax.random.PRNGKey(seed)
        for i, k in enumerate(ks):
            for j, eps in enumerate(epss):
                key, sub = jax.random.split(key)
                Y, A, _ = theory.sparse_signals(sub, D, k, p["trials"], amplitude=p["amplitude"],
                                                noise_eps=eps, min_abs=amin)
                # stopping rule ||r|| <= eps (+1e-6: round-off of the residual energy when eps = 0);
                # one spare atom so that a late stop counts as a failure
                codes, solver = theory.recover_omp(D, Y, k + 1, eps * (1 + 1e-9) + 1e-6)
                ok = np.asarray(jnp.all((codes != 0) == (A != 0), axis=1))
                rate[i, j] = ok.mean()
                cond[i, j] = bool(theory.omp_exact_support_condition(mu, k, eps, amin))
                if cond[i, j]:
                    err = np.asarray(jnp.sum((codes - A) ** 2, axis=1))
                    bnd = float(theory.omp_error_bound(mu, k, eps))
                    if bnd > 0:
                        err_ratio.append(float(err.max() / bnd))
                    else:  # eps = 0: exact recovery up to rounding
                        err_ratio.append(0.0 if err.max() <= 1e-20 else float("inf"))
    names = _figures(out_dir, ks, epss, rate, mu, amin)
    inside = rate[cond]
    all_ok = bool(inside.size) and bool(np.all(inside == 1.0))
    err_ok = bool(err_ratio) and max(err_ratio) <= 1 + 1e-9
    # empirical transition: largest k with 100% success, per eps
    k100 = [int(max([k for k, r in zip(ks, rate[:, j]) if r == 1.0], default=0)) for j in range(len(epss))]
    return EXPERIMENT.result(
        trial,
        measured={
            "dictionary": f"[I, H/sqrt(n)], n={p['n']}, m={2 * p['n']}",
            "mu": mu,
            "amin": amin,
            "trials_per_cell": p["trials"],
            "solver": solver,
            "k": ks,
            "eps": epss,
            "success_rate": rate.round(4).tolist(),
            "largest_k_with_100pct_success_per_eps": k100,
            "success_rate_where_condition_holds_min": float(inside.min()) if inside.size else None,
            "max_ratio_err_to_bound_where_condition_holds": max(err_ratio) if err_ratio else None,
        },
        predicted={
            "condition": "k < (1 + 1/mu)/2 - eps/(mu amin)",
            "k_max_condition_per_eps": [theory.max_sparsity_omp(mu, e, amin) for e in epss],
            "success_rate_where_condition_holds": 1.0,
            "error_bound": "eps^2 / (1 - mu (k - 1))",
        },
        table=[{"eps": e, "k allowed by the condition": theory.max_sparsity_omp(mu, e, amin),
                "largest k with 100% success": k100[j],
                "success where the condition holds": float(rate[cond[:, j], j].min()) if cond[:, j].any() else None,
                "predicted there": 1.0} for j, e in enumerate(epss)],
        figures=names,
        passed=all_ok and err_ok,
        claim_shown=all_ok and err_ok,
    )


def main(argv=None) -> int:
    return EXPERIMENT.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
