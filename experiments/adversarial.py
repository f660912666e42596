"""Adversarial robustness of unfolded pursuits (Romano, Aberdam, Sulam & Elad, "Adversarial noise attacks of
deep learning architectures: stability analysis via sparse-modeled signals", J. Math. Imaging Vis. 62, 2020; the
T9 margin of ``sparsejax.theory.multilayer``).

Two parts.

(a) MNIST. The CNN (layered thresholding), the unfolded ML-ISTA and the unfolded layered BP networks of
``sparsejax.nn.unfolded`` (same parameter count) are trained with the training function of the
``mnist_classification`` experiment (imported, not copied), or loaded from its checkpoints when they are in
the output folder. Each is attacked in l_inf with ``sparsejax.nn.attacks``:

    FGSM  x' = clip(x + eps sign(grad_x l(x, y)), 0, 1)                        (Goodfellow et al., ICLR 2015)
    PGD   x_{t+1} = clip(P_eps(x_t + alpha sign(grad_x l(x_t, y))), 0, 1), x_0 = x, alpha = 2.5 eps / steps,
          P_eps the projection onto ||x' - x||_inf <= eps; per image the iterate of largest loss is kept
          (Madry et al., ICLR 2018, without the random start; with steps = 1 and alpha = eps it is FGSM)

and its test accuracy is reported at each attack size eps with a 95% Wilson binomial interval. The claim
tested (the better pursuit is more robust) is reported (``claim_more_robust_than_cnn`` per network, and the
result's ``claim_shown``: both ML-ISTA and LBP ahead of the CNN in mean attacked accuracy, each by more than
1.96 sqrt(2 p (1 - p) / n), p the CNN's, n the attacked images: 7 points at 45% on 400 images), not asserted.

(b) Synthetic margin check of T9 on the two-layer circular ML-CSC model
``sparsejax.theory.multilayer.incoherent_conv_layers`` (D_1 Barker-13, mu = 1/13; D_2 a sparse length-4 filter,
mu = 1/3) with signals from ``sparsejax.multilayer.signals.conv_multilayer_signal`` (spikes of G_2 32 apart,
contrast 0.8), a linear classifier sign(<w, G_2>) on the deepest code (w = G_2/||G_2|| + Gaussian noise). The
certified radii ``lt_certified_radius`` (layered hard thresholding with the T5 window midpoints as thresholds) and
``lbp_certified_radius`` (layered BP with the T6 weights xi_i = 4 eps_{i-1} of the budget 0.99 x radius, kept fixed
for every perturbation size) bound the size eps_0 = ||E||^p_{2,inf} of a perturbation that cannot flip the decision.
Asserted on every draw: perturbations (random directions and the
model attack direction -label D_1 D_2 w) of size 0.99 x radius never flip it. Reported: how often
perturbations of larger, common sizes flip it, for layered thresholding vs layered BP.

Presets (``--preset``; ``--quick`` is the quick one):

* quick (< 90 s on this 2-core CPU): T = 1, the models trained here on 384 images for one epoch (batch 32,
  lr 0.05; checkpoints in ``<out>/checkpoints/adversarial/quick``), attacks on 80 test images at
  eps in {0, 0.1, 0.2}, PGD with 3 steps; T9 on 2 draws x 5 directions.
* short: the ``mnist_classification`` short configuration (T = 2, all 60,000 images, 3 epochs; its
  checkpoints ``<out>/checkpoints/mnist_classification/short/<model>_T2_seed<seed>`` are
  loaded when present, trained there otherwise), 400 test images, eps in {0, .05, .1, .15, .2}, PGD 5 steps;
  T9 on 16 draws x 33 directions: 3.2 min here with the checkpoints present (about 20 min more to train them).
* full (GPU): the published protocol of ``mnist_classification`` full (T = 6, 60,000 images, 100 epochs;
  checkpoints shared the same way), all 10,000 test images, PGD 20 steps; T9 on 64 draws x 65 directions.

``passed``: the experiment ran, every accuracy is finite, PGD never does worse than FGSM by more than the
binomial noise, and no perturbation below a certified radius flipped a synthetic decision.
"""
from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib.figure import Figure

from sparsejax.datasets.mnist import load_mnist
from sparsejax.learn.checkpoint import load_checkpoint
from sparsejax.multilayer.layered import layered_thresholding
from sparsejax.multilayer.layered_bp import layered_bp
from sparsejax.multilayer.model import Chain
from sparsejax.multilayer.signals import conv_multilayer_signal
from sparsejax.nn.attacks import pgd, wilson_interval
from sparsejax.nn.unfolded import count_params
from sparsejax.reproduce.experiment import Experiment, save_figure
from sparsejax.reproduce.registry import load_experiment
from sparsejax.theory import multilayer as tm

NAME = "adversarial"
TITLE = "Adversarial robustness: FGSM / PGD on CNN vs ML-ISTA vs LBP, and the T9 certified margin"

MODELS = ("cnn", "ml_ista", "lbp")
LABELS = {"cnn": "CNN", "ml_ista": "ML-ISTA", "lbp": "LBP"}

PRESETS = {
    "quick": dict(source=None, train=dict(T=1, n_train=384, n_test=80, epochs=1, batch=32, lr=0.05),
                  n_eval=80, eps=(0.0, 0.1, 0.2), pgd_steps=3, chunk=80,
                  t9_draws=2, t9_random=4, t9_grid=(0.01, 0.03, 0.1, 0.3, 1.0)),
    "short": dict(source="short", train=None, n_eval=400, eps=(0.0, 0.05, 0.1, 0.15, 0.2),
                  pgd_steps=5, chunk=200, t9_draws=16, t9_random=32,
                  t9_grid=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)),
    "full": dict(source="full", train=None, n_eval=10000, eps=(0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
                 pgd_steps=20, chunk=1000, t9_draws=64, t9_random=64,
                 t9_grid=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)),
}
EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="short")


# ----------------------------------------------------------------------------------------------------
# accuracy under attack (the attacks: sparsejax.nn.attacks)
# ----------------------------------------------------------------------------------------------------
def _ce(apply, params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), y)


@functools.partial(jax.jit, static_argnames=("apply",))
def _attacked_correct(apply, params, x, y, eps, alpha, steps):
    """Number of images of the chunk still classified correctly after PGD(eps, alpha, steps) (steps = 0: clean,
    steps = 1 and alpha = eps: FGSM). One compilation per network for all attacks and sizes."""
    loss = functools.partial(_ce, apply, params)
    xa = pgd(loss, x, y, eps, steps, alpha)
    return jnp.sum(jnp.argmax(apply(params, xa), axis=1) == y), jnp.max(jnp.abs(xa - x))


def robustness_curve(apply, params, X, Y, eps_grid, pgd_steps: int, chunk: int = 250) -> dict:
    """Accuracy (correct counts and Wilson 95% intervals) under FGSM and PGD at every eps of ``eps_grid``."""
    n = len(X)
    out = {"eps": [float(e) for e in eps_grid], "n": n}
    def count(e, alpha, steps):
        c, m = 0, 0.0
        for i in range(0, n, chunk):
            ci, mi = _attacked_correct(apply, params, X[i:i + chunk], Y[i:i + chunk], jnp.float32(e),
                                       jnp.float32(alpha), jnp.int32(steps))
            c, m = c + int(ci), max(m, float(mi))
        return c, m

    clean = count(0.0, 0.0, 0)
    for attack in ("fgsm", "pgd"):
        correct, linf = [], []
        for e in eps_grid:
            steps = 1 if attack == "fgsm" else pgd_steps
            c, m = clean if e == 0 else count(e, e if attack == "fgsm" else 2.5 * e / pgd_steps, steps)
            correct.append(c)
            linf.append(m)
        lo, hi = wilson_interval(np.array(correct), n)
        out[attack] = {"correct": correct, "accuracy": (np.array(correct) / n).tolist(), "ci95_lo": lo.tolist(),
                       "ci95_hi": hi.tolist(), "max_linf": linf}
    return out


# ----------------------------------------------------------------------------------------------------
# MNIST models: trained with mnist_classification's function, or loaded from its checkpoints
# ----------------------------------------------------------------------------------------------------
def _config(p: dict):
    mc = load_experiment("mnist_classification")
    if p["source"] is not None:
        return mc, dict(mc.PRESETS[p["source"]]), ("mnist_classification", p["source"])
    return mc, dict(mc.PRESETS["quick"], **p["train"], checkpoint_every=8), ("adversarial", "quick")


def _load_params(mc, model: str, cfg: dict, ckdir: Path, seed: int):
    """The trained parameters in ``ckdir``: the checkpoint holds mnist_classification's training state, whose
    template ``mc.training_setup`` rebuilds."""
    net, _, like = mc.training_setup(model, cfg, cfg["n_train"], seed)
    ck = load_checkpoint(ckdir, like)
    return net, ck.tree["params"], ck.step


def mnist_part(p: dict, out_dir: Path, seed: int, progress: bool) -> dict:
    mc, cfg, (exp, tag) = _config(p)
    Xtr, Ytr = load_mnist("train", limit=cfg["n_train"])
    Xte, Yte = load_mnist("test", limit=max(cfg["n_test"], p["n_eval"]))
    data = (jnp.asarray(Xtr), jnp.asarray(Ytr), jnp.asarray(Xte[:cfg["n_test"]]), jnp.asarray(Yte[:cfg["n_test"]]))
    Xev, Yev = jnp.asarray(Xte[:p["n_eval"]]), jnp.asarray(Yte[:p["n_eval"]])
    res = {"training_config": {k: v for k, v in cfg.items() if k != "models"}, "checkpoints": f"{exp}/{tag}"}
    for m in MODELS:
        ckdir = out_dir / "checkpoints" / exp / tag / f"{m}_T{cfg['T']}_seed{seed}"
        t0 = time.time()
        info = mc.train_model(m, cfg, data, seed, ckdir, progress)     # resumes / returns at once when done
        net, params, step = _load_params(mc, m, cfg, ckdir, seed)
        t1 = time.time()
        curve = robustness_curve(jax.jit(net.apply), params, Xev, Yev, p["eps"], p["pgd_steps"], p["chunk"])
        res[m] = {"params": count_params(params), "steps_trained": step, "status": info["status"],
                  "train_seconds": t1 - t0, "attack_seconds": time.time() - t1, **curve}
    return res


# ----------------------------------------------------------------------------------------------------
# synthetic T9 margin check
# ----------------------------------------------------------------------------------------------------
def _t9_batch(L, key, n_draws, n_random, levels_rel, grid):
    """Draw signals and classifiers, the two certified radii, and run layered thresholding / layered BP on
    every perturbed signal. Returns numpy arrays."""
    k_sig, k_w, k_dir = jax.random.split(key, 3)
    sig = jax.vmap(lambda k: conv_multilayer_signal(k, L, 6, contrast=0.8, separation=32))(
        jax.random.split(k_sig, n_draws))
    mu = tm.layer_coherences(L)
    DL = Chain(L)
    dt = sig.x.dtype

    def per_draw(x, codes, kw, kd):
        G2 = codes[-1]
        st = tm.layer_statistics(L, codes)
        w = G2 / jnp.linalg.norm(G2) + 0.3 * jax.random.normal(kw, G2.shape, dt) / math.sqrt(G2.size)
        margins, norms = tm.classifier_margins(w, 0.0, G2)
        label = jnp.sign(jnp.sum(w * G2))
        thr = tm.lt_bound(mu, st, 0.0).threshold                  # T5 window midpoints
        r_lt = tm.lt_certified_radius(mu, st, thr, margins, norms)
        r_lbp = tm.lbp_certified_radius(mu, st, margins, norms)
        dirs = jnp.concatenate([jax.random.normal(kd, (n_random,) + tuple(L[0].signal_shape), dt),
                                (-label * DL.apply(w))[None]])
        dirs = dirs / jax.vmap(lambda e: tm.noise_level(L, e))(dirs)[:, None, None]   # unit eps_0

        def decide_lt(eps0, d):
            G = layered_thresholding(L, x + eps0 * d, (thr[0], thr[1]), prox="hard").codes
            return jnp.sign(jnp.sum(w * G[-1])) == label

        xi = tm.lbp_bound(mu, st, levels_rel[-1] * r_lbp).xi        # T6 weights for the budget 0.99 r

        def decide_lbp(eps0, d):
            G = layered_bp(L, x + eps0 * d, (xi[0], xi[1]), max_iter=1000, tol=1e-8).codes
            return jnp.sign(jnp.sum(w * G[-1])) == label

        lt_levels = jnp.concatenate([levels_rel * r_lt, grid])
        lbp_levels = jnp.concatenate([levels_rel * r_lbp, grid])
        keep_lt = jax.vmap(lambda e: jax.vmap(lambda d: decide_lt(e, d))(dirs))(lt_levels)
        keep_lbp = jax.vmap(lambda e: jax.vmap(lambda d: decide_lbp(e, d))(dirs))(lbp_levels)
        return r_lt, r_lbp, keep_lt, keep_lbp, st.stripe_l0

    f = jax.jit(jax.vmap(per_draw))
    out = f(sig.x, sig.codes, jax.random.split(k_w, n_draws), jax.random.split(k_dir, n_draws))
    return [np.asarray(a) for a in out]


def t9_part(p: dict, seed: int) -> dict:
    """Synthetic T9 check (module docstring (b)); computed in float64."""
    levels_rel = np.array([0.5, 0.99])
    grid = np.asarray(p["t9_grid"], float)
    with jax.enable_x64(True):
        L = tm.incoherent_conv_layers(256, jnp.float64)
        mu = np.asarray(tm.layer_coherences(L)).tolist()
        r_lt, r_lbp, keep_lt, keep_lbp, k = _t9_batch(L, jax.random.PRNGKey(1000 + seed), p["t9_draws"],
                                                      p["t9_random"], jnp.asarray(levels_rel), jnp.asarray(grid))
    nl = len(levels_rel)
    # keep_*: (draws, levels, directions); the last direction is the model attack
    below = {"lt": keep_lt[:, :nl], "lbp": keep_lbp[:, :nl]}
    res = {"coherences": mu, "stripe_l0_per_layer": k[0].tolist(), "draws": int(r_lt.shape[0]),
           "random_directions": p["t9_random"], "radius_lt": r_lt.tolist(), "radius_lbp": r_lbp.tolist(),
           "radius_fractions_checked": levels_rel.tolist(),
           "below_radius_flips": {m: int(np.sum(~b)) for m, b in below.items()},
           "below_radius_checked": {m: int(b.size) for m, b in below.items()},
           "certified_everywhere": bool(np.all(r_lt > 0) and np.all(r_lbp > 0)),
           "eps0_grid": grid.tolist()}
    for m, keep in (("lt", keep_lt), ("lbp", keep_lbp)):
        g = keep[:, nl:]
        res[f"flip_rate_random_{m}"] = (1 - g[:, :, :-1].mean(axis=(0, 2))).tolist()
        res[f"flip_rate_attack_{m}"] = (1 - g[:, :, -1].mean(axis=0)).tolist()
    return res


# ----------------------------------------------------------------------------------------------------
# figures and run
# ----------------------------------------------------------------------------------------------------
def _figures(out_dir: Path, mn: dict, t9: dict, tag: str):
    fig = Figure(figsize=(14, 4.2))
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    for ax, attack in zip(axes[:2], ("fgsm", "pgd")):
        for j, m in enumerate(MODELS):
            r = mn[m]
            e = np.asarray(r["eps"])
            a = 100 * np.asarray(r[attack]["accuracy"])
            ax.plot(e, a, "o-", color=f"C{j}", label=LABELS[m])
            ax.fill_between(e, 100 * np.asarray(r[attack]["ci95_lo"]), 100 * np.asarray(r[attack]["ci95_hi"]),
                            color=f"C{j}", alpha=0.2)
        ax.set_xlabel("attack size eps (l_inf, pixels in [0, 1])")
        ax.set_ylabel("test accuracy (%) with 95% Wilson interval")
        ax.set_title(f"{attack.upper()} ({tag}, T = {mn['training_config']['T']}, n = {mn['cnn']['n']})",
                     fontsize=9)
        ax.legend(fontsize=8)
    ax = axes[2]
    g = np.asarray(t9["eps0_grid"])
    for j, (m, lab) in enumerate((("lt", "layered thresholding"), ("lbp", "layered BP"))):
        ax.plot(g, t9[f"flip_rate_attack_{m}"], "o-", color=f"C{j}", label=f"{lab}: attack direction")
        ax.plot(g, t9[f"flip_rate_random_{m}"], "s--", color=f"C{j}", label=f"{lab}: random directions")
        ax.axvline(np.min(t9[f"radius_{m}"]), color=f"C{j}", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("eps_0 = ||E||^p_{2,inf}  (dotted: smallest certified radius)")
    ax.set_ylabel("fraction of decisions flipped")
    ax.set_title("T9 synthetic margin check", fontsize=9)
    ax.legend(fontsize=7)
    return [save_figure(fig, out_dir, f"{NAME}_{tag}.png")]


def run(quick: bool, out_dir: Path, seed: int = 0, preset: str | None = None, progress: bool = True) -> dict:
    """Run a preset ("quick" when ``quick``, else ``preset``, default "short"); see the module docstring."""
    trial = EXPERIMENT.start(quick, preset, out_dir, seed)
    tag, p, out_dir = trial.preset, trial.config, trial.out_dir
    mn = mnist_part(p, out_dir, seed, progress and not quick)
    t9 = t9_part(p, seed)
    figs = _figures(out_dir, mn, t9, tag)

    finite = all(bool(np.all(np.isfinite(mn[m][a]["accuracy"]))) for m in MODELS for a in ("fgsm", "pgd"))
    in_ball = all(mn[m][a]["max_linf"][i] <= e + 1e-6 for m in MODELS for a in ("fgsm", "pgd")
                  for i, e in enumerate(mn[m]["eps"]))
    # PGD at least as strong as FGSM up to binomial noise (its first iterate is not FGSM's step)
    n = mn["cnn"]["n"]
    pgd_ok = all(mn[m]["pgd"]["correct"][i] <= mn[m]["fgsm"]["correct"][i] + 3 * math.sqrt(n) + 1
                 for m in MODELS for i in range(len(p["eps"])))
    same_params = mn["ml_ista"]["params"] == mn["cnn"]["params"] == mn["lbp"]["params"]
    t9_ok = (t9["below_radius_flips"]["lt"] == 0 and t9["below_radius_flips"]["lbp"] == 0
             and t9["certified_everywhere"])
    # the claim: the better pursuit is more robust (mean PGD / FGSM accuracy over eps > 0)
    score = {m: float(np.mean([mn[m][a]["accuracy"][i] for a in ("fgsm", "pgd")
                               for i, e in enumerate(p["eps"]) if e > 0])) for m in MODELS}
    # ahead beyond the test-set noise: a lead of more than 1.96 standard errors of a difference of two accuracies
    # on n images (conservative: the attacked accuracies of one model are correlated across eps and attacks)
    pc = min(max(score["cnn"], 0.0), 1.0)
    lead_needed = 1.96 * math.sqrt(2 * pc * (1 - pc) / n)
    claim = {m: score[m] - score["cnn"] > lead_needed for m in ("ml_ista", "lbp")}
    return EXPERIMENT.result(
        trial,
        table=[{"model": m, "mean attacked accuracy": score[m],
                "lead over CNN": None if m == "cnn" else score[m] - score["cnn"],
                "lead needed": None if m == "cnn" else lead_needed,
                "more robust (claim)": None if m == "cnn" else claim[m]} for m in MODELS],
        measured={"preset": tag, "mnist": mn, "mean_attacked_accuracy": score, "lead_needed": lead_needed,
                  "claim_more_robust_than_cnn": claim, "t9": t9,
                  "checks": {"finite": finite, "inside_ball": in_ball, "pgd_not_weaker": pgd_ok,
                             "equal_parameters": same_params, "t9_no_flip_below_radius": t9_ok}},
        predicted={"claim": "the better pursuit (ML-ISTA, LBP) keeps more accuracy under attack than the CNN "
                            "(Romano et al. JMIV 2020)",
                   "t9": "no decision flips for perturbations with ||E||^p_{2,inf} below the certified radius "
                         "(T5 for layered thresholding, T6 for layered BP)"},
        figures=figs,
        passed=finite and in_ball and pgd_ok and same_params and t9_ok,
        claim_shown=all(claim.values()),
    )


def main(argv=None) -> int:
    return EXPERIMENT.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
