"""BP stability (Donoho, Elad & Temlyakov, "Stable recovery of sparse overcomplete representations in the
presence of noise", IEEE Trans. IT 52(1), 2006, Thm 3.1; the T2 bound of ``sparsejax.theory.dense``).

y = D a + v, ||v||_2 = eps, ||a||_0 = k, D = [I, H/sqrt(n)] (mu = 1/sqrt(n)). Basis pursuit denoising
min ||x||_1 s.t. ||D x - y|| <= delta (delta >= eps) obeys, for k < (1 + 1/mu)/4,

    ||a^ - a||_2^2 <= (eps + delta)^2 / (1 - mu (4k - 1))      (= 4 eps^2 / (1 - mu(4k - 1)) at delta = eps).

We measure ||a^ - a||^2 over many random supports per k, for k inside and beyond the condition, and check
every trial inside it against its bound (with the solver's effective delta).

Presets: quick (n = 256, k = 1..12, 100 trials per k) and full (n = 512, k up to 24, 400 trials per k).
``passed``: every trial inside the condition is within its bound, the solver's delta is at least eps and its
l1 norm is not above the truth's; that is the theorem's claim, so ``claim_shown`` is the same verdict.
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

NAME = "bp_stability"
TITLE = "BP stability: ||a^ - a||^2 vs k against the Donoho-Elad-Temlyakov bound"

PRESETS = {
    "quick": dict(n=256, k_values=list(range(1, 13)), trials=100, eps=0.1),
    "full": dict(n=512, k_values=list(range(1, 17)) + [20, 24], trials=400, eps=0.1),
}
EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")


def _figure(out_dir: Path, k_values, errs, mu, eps, bound_eps, bound_eff, solver):
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ks = np.asarray(k_values)
    for k, e in zip(ks, errs):
        ax.scatter(np.full(e.shape, k) + np.random.default_rng(int(k)).uniform(-0.2, 0.2, e.shape), e,
                   s=4, alpha=0.25, color="tab:blue", lw=0)
    ax.plot(ks, [e.mean() for e in errs], "o-", color="tab:blue", label="mean over trials")
    ax.plot(ks, [e.max() for e in errs], "s--", color="navy", label="max over trials")
    ok = np.isfinite(bound_eps)
    ax.plot(ks[ok], bound_eps[ok], "-", color="tab:red", lw=2, label=r"bound $4\epsilon^2/(1-\mu(4k-1))$")
    if not np.allclose(bound_eff[ok], bound_eps[ok]):
        ax.plot(ks[ok], bound_eff[ok], ":", color="tab:red", lw=2,
                label=r"bound with the solver's largest $\delta$")
    ax.axvline(0.25 * (1 + 1 / mu), color="k", ls="--", label=r"$k = (1+1/\mu)/4$ (condition ends)")
    ax.axvline(0.5 * (1 + 1 / mu), color="gray", ls=":", label=r"$k = (1+1/\mu)/2$ (uniqueness)")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity k")
    ax.set_ylabel(r"$\|\hat a - a\|_2^2$")
    ax.set_title(f"BP, [I, H], mu = {mu:.4f}, eps = {eps}\nsolver: {solver}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, out_dir, f"{NAME}.png")


def run(quick: bool, out_dir: Path, seed: int = 0, preset: str | None = None) -> dict:
    """Run a preset ("quick" when ``quick``, else ``preset``, default "full"); see the module docstring."""
    trial = EXPERIMENT.start(quick, preset, out_dir, seed)
    p, out_dir = trial.config, trial.out_dir
    with jax.enable_x64(True):
        D = theory.identity_hadamard(p["n"], jnp.float64)
        mu = float(mutual_coherence(D))
        eps = p["eps"]
        key = jax.random.PRNGKey(seed)
        errs, bmax_eff, ratio, within, delta_ok, solver = [], [], [], [], [], None
        for k in p["k_values"]:
            key, sub = jax.random.split(key)
            Y, A, _ = theory.sparse_signals(sub, D, k, p["trials"], noise_eps=eps)
            codes, delta, solver = theory.recover_bp(D, Y, eps)
            err = np.asarray(jnp.sum((codes - A) ** 2, axis=1))
            bnd = np.asarray(theory.bp_stability_bound(mu, k, eps, delta))
            l1_ok = bool(np.all(np.abs(np.asarray(codes)).sum(1) <= np.abs(np.asarray(A)).sum(1) * (1 + 1e-9)))
            errs.append(err)
            bmax_eff.append(float(bnd.max()))
            if np.all(np.isfinite(bnd)):
                ratio.append(float(np.max(err / bnd)))
                within.append(bool(np.all(err <= bnd * (1 + 1e-6))))
                delta_ok.append(bool(np.all(np.asarray(delta) >= eps * (1 - 1e-9))) and l1_ok)
            else:
                ratio.append(None)
                within.append(None)
        ks = np.asarray(p["k_values"])
        bound_eps = np.asarray(theory.bp_stability_bound(mu, ks, eps))
    k_cond = theory.max_sparsity_bp(mu)
    checked = [w for w in within if w is not None]
    passed = bool(checked) and all(checked) and all(delta_ok)
    fname = _figure(out_dir, p["k_values"], errs, mu, eps, bound_eps, np.asarray(bmax_eff), solver)
    fin = lambda x: [float(v) if np.isfinite(v) else None for v in x]
    return EXPERIMENT.result(
        trial,
        measured={
            "dictionary": f"[I, H/sqrt(n)], n={p['n']}, m={2 * p['n']}",
            "mu": mu,
            "eps": eps,
            "trials_per_k": p["trials"],
            "solver": solver,
            "k": [int(k) for k in ks],
            "mean_err_sq": [float(e.mean()) for e in errs],
            "max_err_sq": [float(e.max()) for e in errs],
            "max_ratio_err_to_bound": ratio,
            "all_within_bound_where_condition_holds": bool(checked) and all(checked),
            "delta_ge_eps_and_l1_not_above_truth": all(delta_ok),
        },
        predicted={
            "condition": "k < (1 + 1/mu)/4",
            "k_max_condition": k_cond,
            "bound_delta_eq_eps": fin(bound_eps),
            "bound_effective_delta_max": fin(bmax_eff),
        },
        table=[{"k": int(k), "condition k < (1 + 1/mu)/4": bool(k < k_cond), "mean ||a^ - a||^2": float(e.mean()),
                "max ||a^ - a||^2": float(e.max()), "bound (delta = eps)": fin(bound_eps)[i],
                "max error / bound (effective delta)": ratio[i]}
               for i, (k, e) in enumerate(zip(ks, errs))],
        figures=[fname],
        passed=passed,
        claim_shown=passed,
    )


def main(argv=None) -> int:
    return EXPERIMENT.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
