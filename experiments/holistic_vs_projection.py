"""Holistic vs projection pursuit on the two-layer dense model (Aberdam, Sulam & Elad, "Multi-layer sparse
coding: the holistic way", SIAM J. Math. Data Sci. (SIMODS) 1(1), 2019: the holistic pursuit, its oracle
bound, and the published -18% / -47% error changes at cocardinality 10).

n = 50, m_1 = 100, m_2 = 50 (random Gaussian dictionaries, unit-norm atoms), sigma = 0.1, s_2 = 11, cocardinality
l_1 = 1..10; signals from Aberdam's construction (``sparsejax.multilayer.signals.two_layer_dense_signal``); metric
||G_2 - G_2^||^2 / ||G_2||^2, mean with a 95% confidence interval (1.96 standard errors) over trials (and, in the
full preset, over several dictionary draws).

SNR conventions: the published script scales the clean signal to ||x||_2 = 10^(snr/10) sqrt(n) sigma, so its
"15 dB" and "25 dB" are 30 dB and 50 dB under the usual 20 log10(||x|| / ||v||) convention; both are run
("pub" = published amplitude, "std" = ||x||_2 = 10^(snr/20) sqrt(n) sigma).

Verdicts. ``passed`` (ran correctly): every error finite, the T8 oracle inequality holds, and every solve of
both pursuits (validation and test) met its tolerance; a run with any unconverged solve is rejected (its
errors, and the lambda chosen on them, would measure the iteration budget, not the pursuit), and the converged
fractions are printed. ``claim_shown`` (the published claim, at the published-convention SNRs where the paper
makes it): at the largest l_1 the holistic error is below its value at the smallest l_1 (95% intervals apart),
the 95% bootstrap interval of the change against projection lies below 0, and the change reaches at least half
the published one (-9% / -23.5%). The usual-convention curves (15 / 25 dB, 15 to 35 dB noisier) are reported,
not judged.

Solves: ADMM (``holistic_pursuit``, ``projection_pursuit_dense``) with the penalty rho = 2 lam: with the paper's
lambdas (fractions of sigma) and the published amplitudes, the fixed rho = 1 needed thousands of iterations at the
smallest lambda and left up to 41% of the projection solves at "25 dB" unconverged in the quick budget; rho on
the scale of lam converges in tens to hundreds.

lambda: for each method and SNR setting, the value of a small grid (multiples of sigma) with the lowest mean
error on separate validation draws (spread over the same l_1 values) is used for the test draws; a value on the
edge of the grid is flagged in the table.
Oracle curves (T8): sigma^2 tr((D_S^T D_S)^{-1}) / ||G_2||^2 (projection) and sigma^2 tr((N^T D_S^T D_S N)^{-1}) /
||G_2||^2 (holistic), averaged over the same draws (``sparsejax.multilayer.holistic``).

Presets: quick (l_1 in {1, 4, 7, 10}, 32 trials, one dictionary draw, tol 1e-4, 1,000 iterations) and full
(l_1 = 1..10, 100 trials, 5 dictionary draws, tol 1e-5, 3,000 iterations, a wider lambda grid).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from sparsejax.dictionary import random_gaussian
from sparsejax.multilayer import holistic as H
from sparsejax.multilayer.signals import two_layer_dense_signal
from sparsejax.reproduce.experiment import Experiment, format_table, make_table, save_figure

NAME = "holistic_vs_projection"
TITLE = "Holistic vs projection pursuit (two-layer dense model) vs cocardinality, with the T8 oracles"

SETTINGS = (("pub 15 dB (= 30 dB)", 15.0, 10.0), ("pub 25 dB (= 50 dB)", 25.0, 10.0),
            ("std 15 dB", 15.0, 20.0), ("std 25 dB", 25.0, 20.0))

PRESETS = {
    "quick": dict(n=50, m1=100, m2=50, sigma=0.1, s2=11, l1_values=[1, 4, 7, 10], trials=32, dictionaries=1,
               lam_grid=[0.25, 0.5, 1.0, 2.0], max_iter=1000, tol=1e-4, rho_per_lam=2.0),
    "full": dict(n=50, m1=100, m2=50, sigma=0.1, s2=11, l1_values=list(range(1, 11)), trials=100, dictionaries=5,
                lam_grid=[0.0625, 0.125, 0.25, 0.5, 1.0, 2.0], max_iter=3000, tol=1e-5, rho_per_lam=2.0),
}
PUBLISHED = {"pub 15 dB (= 30 dB)": -0.18, "pub 25 dB (= 50 dB)": -0.47}   # relative change at l_1 = 10
EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")


def _amplitudes(n, sigma):
    return np.array([10 ** (snr / div) * np.sqrt(n) * sigma for _, snr, div in SETTINGS])


def _ci(x, axis=-1):
    x = np.asarray(x)
    return x.mean(axis), 1.96 * x.std(axis, ddof=1) / np.sqrt(x.shape[axis])


def _bootstrap_ratio(h, p, rng, reps=2000):
    """95% percentile CI of mean(h) / mean(p) - 1 (paired resampling of trials)."""
    idx = rng.integers(0, h.size, (reps, h.size))
    r = h[idx].mean(1) / p[idx].mean(1) - 1
    return float(h.mean() / p.mean() - 1), [float(np.percentile(r, 2.5)), float(np.percentile(r, 97.5))]


def run(quick: bool, out_dir: Path, seed: int = 0, preset: str | None = None) -> dict:
    """Run a preset ("quick" when ``quick``, else ``preset``, default "full"); see the module docstring."""
    trial = EXPERIMENT.start(quick, preset, out_dir, seed)
    p, out_dir = trial.config, trial.out_dir
    n, m1, m2, sigma, s2 = p["n"], p["m1"], p["m2"], p["sigma"], p["s2"]
    l1s, T, grid = p["l1_values"], p["trials"], np.asarray(p["lam_grid"]) * sigma
    rounds = max(l1s)
    S, G = len(SETTINGS), len(grid)
    amps = jnp.asarray(_amplitudes(n, sigma), jnp.float32)
    V = max(1, T // G)                    # validation draws per (setting, l1, lambda): same batch size as a test

    def draw(key, D1, D2, l1, count):
        keys = jax.random.split(key, S * count).reshape(S, count, -1)
        gen = lambda k, a: two_layer_dense_signal(k, D1, D2, s2, l1, amplitude=a, sigma=sigma)  # noqa: E731
        return jax.vmap(lambda ks, a: jax.vmap(lambda k: gen(k, a))(ks))(keys, amps)   # leaves (S, count, ...)

    rho_of = lambda lam: p["rho_per_lam"] * lam   # noqa: E731  (ADMM penalty on the scale of the l1 weight)

    @jax.jit
    def pursue(D1, D2, Y, lam_h, lam_p, l1):
        hol = jax.vmap(lambda y, lh: H.holistic_pursuit(D1, D2, y, lh, l1, rounds=rounds, rho=rho_of(lh),
                                                        max_iter=p["max_iter"], tol=p["tol"]))(Y, lam_h)
        prj = jax.vmap(lambda y, lp: H.projection_pursuit_dense(D1, D2, y, lp, rho=rho_of(lp), max_iter=p["max_iter"],
                                                                tol=p["tol"]))(Y, lam_p)
        return hol.codes[-1], prj.codes[-1], hol.converged, prj.converged

    @jax.jit
    def oracles(D1, D2, S2, C1, G2):
        nrm = jnp.sum(G2 * G2, axis=-1)
        po = jax.vmap(lambda s: H.projection_oracle_mse(D1, D2, s, sigma))(S2)
        ho = jax.vmap(lambda s, c: H.holistic_oracle_mse(D1, D2, s, c, sigma))(S2, C1)
        return po / nrm, ho / nrm

    sig4 = lambda a: [float(f"{v:.4g}") for v in np.asarray(a).ravel()]  # noqa: E731
    rel = lambda est, G2: np.asarray(jnp.sum((est - G2) ** 2, -1) / jnp.sum(G2 * G2, -1))  # noqa: E731
    D = len(l1s)
    err_h = np.zeros((S, D, 0))
    err_p = np.zeros((S, D, 0))
    or_h = np.zeros((S, D, 0))
    or_p = np.zeros((S, D, 0))
    lam_sel = []
    n_conv, n_solves = np.zeros(2), 0      # converged holistic / projection solves, of n_solves each
    key = jax.random.PRNGKey(seed)
    for d in range(p["dictionaries"]):
        key, k1, k2, kv, kt = jax.random.split(key, 5)
        D1 = random_gaussian(k1, n, m1)
        D2 = random_gaussian(k2, m1, m2)
        # -- lambda selection on validation draws: every (setting, lambda) pair at every l1 ------------------
        val_h = np.zeros((S, G))
        val_p = np.zeros((S, G))
        for i, l1 in enumerate(l1s):
            sig = draw(jax.random.fold_in(kv, i), D1, D2, l1, G * V)         # (S, G*V)
            Y = sig.y.reshape(S * G * V, n)
            lam = jnp.asarray(np.broadcast_to(grid[None, :, None], (S, G, V)).reshape(-1), jnp.float32)
            gh, gp, ch, cp = pursue(D1, D2, Y, lam, lam, l1)
            n_conv += np.array([np.sum(ch), np.sum(cp)])
            n_solves += ch.size
            G2 = sig.G2.reshape(S * G * V, m2)
            val_h += rel(gh, G2).reshape(S, G, V).mean(-1)
            val_p += rel(gp, G2).reshape(S, G, V).mean(-1)
        lh, lp = grid[val_h.argmin(1)], grid[val_p.argmin(1)]
        lam_sel.append({"holistic": lh.tolist(), "projection": lp.tolist()})
        # -- test draws ---------------------------------------------------------------------------------------
        eh, ep, oh, op = (np.zeros((S, D, T)) for _ in range(4))
        for i, l1 in enumerate(l1s):
            sig = draw(jax.random.fold_in(kt, i), D1, D2, l1, T)
            Y = sig.y.reshape(S * T, n)
            G2 = sig.G2.reshape(S * T, m2)
            lam_h = jnp.asarray(np.repeat(lh, T), jnp.float32)
            lam_p = jnp.asarray(np.repeat(lp, T), jnp.float32)
            gh, gp, ch, cp = pursue(D1, D2, Y, lam_h, lam_p, l1)
            eh[:, i] = rel(gh, G2).reshape(S, T)
            ep[:, i] = rel(gp, G2).reshape(S, T)
            po, ho = oracles(D1, D2, sig.support2.reshape(S * T, s2), sig.cosupport1.reshape(S * T, l1), G2)
            op[:, i], oh[:, i] = np.asarray(po).reshape(S, T), np.asarray(ho).reshape(S, T)
            n_conv += np.array([np.sum(ch), np.sum(cp)])
            n_solves += ch.size
        print(f"{NAME}: dictionary {d + 1}/{p['dictionaries']} done at {time.time() - trial.started:.0f} s; "
              f"converged so far: holistic {n_conv[0] / n_solves:.4f}, projection {n_conv[1] / n_solves:.4f}",
              file=sys.stderr, flush=True)
        err_h, err_p = np.concatenate([err_h, eh], -1), np.concatenate([err_p, ep], -1)
        or_h, or_p = np.concatenate([or_h, oh], -1), np.concatenate([or_p, op], -1)
        # the partial record (long presets): every error so far, and the table of the dictionaries done
        np.savez(out_dir / f"{NAME}_{trial.preset}_errors.npz", err_h=err_h, err_p=err_p, or_h=or_h, or_p=or_p,
                 lam_h=np.asarray([x["holistic"] for x in lam_sel]),
                 lam_p=np.asarray([x["projection"] for x in lam_sel]),
                 converged=n_conv, solves=n_solves, l1=np.asarray(l1s))
        if d + 1 < p["dictionaries"]:
            part = _summary(err_h, err_p, or_h, or_p, lam_sel, l1s, grid, sigma, np.random.default_rng(seed))[0]
            print(format_table(make_table(part)), file=sys.stderr, flush=True)

    rng = np.random.default_rng(seed)
    rows, improvement, claim, (mh, ch_, mp, cp_, moh, mop) = _summary(err_h, err_p, or_h, or_p, lam_sel, l1s,
                                                                      grid, sigma, rng)
    finite = bool(np.isfinite(err_h).all() and np.isfinite(err_p).all())
    t8 = bool(np.all(moh <= mop * (1 + 1e-4)))
    names = _figures(out_dir, l1s, mh, ch_, mp, cp_, moh, mop, err_h, err_p, rng)
    fractions = {"holistic": n_conv[0] / n_solves, "projection": n_conv[1] / n_solves}
    return EXPERIMENT.result(
        trial,
        measured={
            "sizes": f"n={n}, m1={m1}, m2={m2}, s2={s2}, sigma={sigma}",
            "trials_per_point": int(err_h.shape[-1]),
            "dictionaries": p["dictionaries"],
            "amplitudes_||x||": dict(zip([s[0] for s in SETTINGS], np.round(_amplitudes(n, sigma), 3).tolist())),
            "l1": l1s,
            "lambda_selected_per_dictionary": lam_sel,
            "holistic_mean": {s[0]: sig4(mh[i]) for i, s in enumerate(SETTINGS)},
            "holistic_ci95": {s[0]: sig4(ch_[i]) for i, s in enumerate(SETTINGS)},
            "projection_mean": {s[0]: sig4(mp[i]) for i, s in enumerate(SETTINGS)},
            "projection_ci95": {s[0]: sig4(cp_[i]) for i, s in enumerate(SETTINGS)},
            "holistic_oracle": {s[0]: sig4(moh[i]) for i, s in enumerate(SETTINGS)},
            "projection_oracle": {s[0]: sig4(mop[i]) for i, s in enumerate(SETTINGS)},
            "relative_change_holistic_vs_projection_at_max_l1": improvement,
            "solves": int(n_solves),
            "fraction_converged": {k: round(float(v), 6) for k, v in fractions.items()},
        },
        predicted={
            "published_relative_change_at_l1_10": PUBLISHED,
            "holistic": "error decreases with l1; projection flat (published convention)",
            "oracles": "holistic oracle <= projection oracle (T8)",
        },
        table=rows,
        converged=fractions,
        figures=names,
        passed=finite and t8,
        claim_shown=claim,
    )


def _summary(err_h, err_p, or_h, or_p, lam_sel, l1s, grid, sigma, rng):
    """The table rows (one per SNR setting), the relative changes at the largest l1 with bootstrap intervals,
    the claim's verdict, and the means / 95% half-widths of the errors and oracles."""
    mh, ch_ = _ci(err_h)
    mp, cp_ = _ci(err_p)
    moh, mop = or_h.mean(-1), or_p.mean(-1)
    improvement, rows = {}, []
    claim = True
    for s, (label, _, _) in enumerate(SETTINGS):
        r, ci = _bootstrap_ratio(err_h[s, -1], err_p[s, -1], rng)
        improvement[label] = {"relative_change": round(r, 4), "ci95": [round(c, 4) for c in ci]}
        pub = PUBLISHED.get(label)
        lam_h = sorted({float(d["holistic"][s]) / sigma for d in lam_sel})
        lam_p = sorted({float(d["projection"][s]) / sigma for d in lam_sel})
        edge = any(v in (grid[0] / sigma, grid[-1] / sigma) for v in lam_h + lam_p)
        rows.append({"setting": label, "holistic l1=min": _pm(mh[s, 0], ch_[s, 0]),
                     f"holistic l1={l1s[-1]}": _pm(mh[s, -1], ch_[s, -1]),
                     f"projection l1={l1s[-1]}": _pm(mp[s, -1], cp_[s, -1]),
                     "change": f"{100 * r:+.1f}%", "95% CI": f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]%",
                     "published": None if pub is None else f"{100 * pub:+.0f}%",
                     "lambda/sigma hol; proj": f"{_lams(lam_h)}; {_lams(lam_p)}" + (" (grid edge)" if edge else "")})
        if pub is not None:   # the published claim, at its own SNRs: a clear reduction, of the published order
            decreases = mh[s, -1] + ch_[s, -1] < mh[s, 0] - ch_[s, 0]
            claim &= bool(decreases and ci[1] < 0 and r <= 0.5 * pub)
    rows.append({"setting": "every setting", "holistic l1=min": "T8: holistic oracle <= projection oracle",
                 "published": "holds" if bool(np.all(moh <= mop * (1 + 1e-4))) else "VIOLATED"})
    return rows, improvement, claim, (mh, ch_, mp, cp_, moh, mop)


def _pm(mean, half):
    return f"{mean:.3g} +- {half:.2g}"


def _lams(values):
    return "/".join(f"{v:g}" for v in values)


def _figures(out_dir, l1s, mh, ch, mp, cp, moh, mop, err_h, err_p, rng):
    fig = Figure(figsize=(10, 7.5))
    for s, (label, _, _) in enumerate(SETTINGS):
        ax = fig.add_subplot(2, 2, s + 1)
        ax.errorbar(l1s, mh[s], yerr=ch[s], fmt="o-", color="C0", ms=4, capsize=3, label="holistic")
        ax.errorbar(l1s, mp[s], yerr=cp[s], fmt="s--", color="C1", ms=4, capsize=3, label="projection")
        ax.plot(l1s, moh[s], ":", color="C0", label="holistic oracle (T8)")
        ax.plot(l1s, mop[s], ":", color="C1", label="projection oracle (T8)")
        ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("cocardinality l1")
        ax.set_ylabel(r"$\|G_2 - \hat G_2\|^2 / \|G_2\|^2$")
        if s == 0:
            ax.legend(fontsize=7)
    names = [save_figure(fig, out_dir, f"{NAME}_error.png")]

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for s, (label, _, _) in enumerate(SETTINGS):
        vals = [_bootstrap_ratio(err_h[s, i], err_p[s, i], rng, reps=500) for i in range(len(l1s))]
        r = np.array([100 * v[0] for v in vals])
        lo = np.array([100 * v[1][0] for v in vals])
        hi = np.array([100 * v[1][1] for v in vals])
        ax.errorbar(l1s, r, yerr=[r - lo, hi - r], fmt="o-", ms=4, capsize=3, label=label)
    ax.axhline(-18, color="gray", ls="--", lw=1)
    ax.axhline(-47, color="gray", ls="--", lw=1)
    ax.set_xlabel("cocardinality l1")
    ax.set_ylabel("holistic vs projection error (%)")
    ax.set_title("relative change (95% bootstrap CI); dashed: published -18% / -47%", fontsize=9)
    ax.legend(fontsize=7)
    names.append(save_figure(fig, out_dir, f"{NAME}_improvement.png"))
    return names


def main(argv=None) -> int:
    return EXPERIMENT.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
