"""Convergence of ML-ISTA, ML-FISTA and projection pursuit on the ML-BP objective (Sulam, Aberdam, Beck & Elad,
"On multi-layer basis pursuit, efficient algorithms and convolutional neural networks", IEEE TPAMI 42(8), 2020,
for ML-ISTA / ML-FISTA; projection pursuit from Sulam, Papyan, Romano & Elad, "Multilayer convolutional sparse
modeling: pursuit and dictionary learning", IEEE TSP 66(15), 2018).

ML-BP:  F(G_K) = 1/2||y - D_1 ... D_K G_K||^2 + sum_{i<K} lam_i ||D_{i+1} ... D_K G_K||_1 + lam_K ||G_K||_1.

Model: two dense layers (``sparsejax.multilayer.signals.random_dense_layers``, n = 50, m_1 = 100, m_2 = 150, sparse
atoms in D_2), y from ``sparsejax.multilayer.signals.dense_multilayer_signal`` (8 nonzeros in G_2, noise 0.02),
float64 throughout.

Reference F*: ADMM on the split z_1 = D_2 G_2, z_2 = G_2 with an exact (Cholesky) G_2-update, float64, run
until its primal and dual residuals are below 1e-12 (or the iteration cap). ADMM is used because the l1 terms
act on linear images of G_2 (no cheap prox of the whole regulariser): with an exact linear solve it converges
to a true minimiser for any rho > 0, whereas ML-ISTA / ML-FISTA are approximate proximal-gradient schemes
whose fixed points are not guaranteed to be ML-BP minimisers. Two runs with different rho must agree, and
no iterate of any method may fall below F* (checked).

Two settings: (A) lam_1 > 0 (the real ML-BP problem: projection pursuit, which ignores lam_1, solves another
problem and its gap must stall); (B) lam_1 = 0 (ML-BP = the Lasso on D_1 D_2 that projection pursuit solves;
all three must converge). ML-ISTA / ML-FISTA run with the algorithm weights lam_i r_1 ... r_{i-1} that
correspond to the objective's lam_i (see ``_traces``). Reported: F(G_K^k) - F* vs iteration (log scale). No
O(1/k^2) rate is asserted for ML-FISTA (the published claim was withdrawn).

Presets: quick (500 iterations, reference capped at 20,000) and full (5,000; 100,000). ``passed``: the reference
runs agree and no iterate is below F*, and the convergence expectations of both settings hold (the claim;
``claim_shown`` is the same verdict).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from sparsejax.multilayer.layered import ml_bp_objective, ml_ista_solver
from sparsejax.multilayer.model import Chain
from sparsejax.multilayer.signals import dense_multilayer_signal, random_dense_layers
from sparsejax.pursuit.ista import fista_solver
from sparsejax.reproduce.experiment import Experiment, save_figure
from sparsejax.solve import Solver, iterate

NAME = "ml_convergence"
TITLE = "ML-ISTA, ML-FISTA and projection pursuit on the ML-BP objective vs a float64 ADMM reference"

PRESETS = {
    "quick": dict(dims=(50, 100, 150), atom_nnz=10, nnz=8, sigma=0.02, iters=500, ref_iters=20000),
    "full": dict(dims=(50, 100, 150), atom_nnz=10, nnz=8, sigma=0.02, iters=5000, ref_iters=100000),
}
EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")


class _ADMMState(NamedTuple):
    x: jax.Array
    z1: jax.Array
    z2: jax.Array
    u1: jax.Array
    u2: jax.Array
    r: jax.Array       # primal residual
    s: jax.Array       # dual residual


def _admm_reference_solver(B, A, y, lam1, lam2, rho) -> Solver:
    """Over-relaxed ADMM for min 1/2||y - B x||^2 + lam1 ||A x||_1 + lam2 ||x||_1 (z_1 = A x, z_2 = x), scaled
    duals; the stopping measure is the larger of the primal and dual residuals."""
    m = B.shape[1]
    alpha = 1.6
    M = B.T @ B + rho * (A.T @ A + jnp.eye(m, dtype=B.dtype))
    cf = jax.scipy.linalg.cho_factor(M, lower=True)
    Bty = B.T @ y
    soft = lambda v, t: jnp.sign(v) * jnp.maximum(jnp.abs(v) - t, 0.0)  # noqa: E731

    def step(state):
        _, z1, z2, u1, u2, _, _ = state
        x = jax.scipy.linalg.cho_solve(cf, Bty + rho * (A.T @ (z1 - u1) + z2 - u2))
        Ax = A @ x
        h1 = alpha * Ax + (1 - alpha) * z1   # over-relaxation (Boyd et al., Found. Trends Mach. Learn. 2011, 3.4.3)
        h2 = alpha * x + (1 - alpha) * z2
        z1n = soft(h1 + u1, lam1 / rho)
        z2n = soft(h2 + u2, lam2 / rho)
        u1 = u1 + h1 - z1n
        u2 = u2 + h2 - z2n
        r = jnp.sqrt(jnp.sum((Ax - z1n) ** 2) + jnp.sum((x - z2n) ** 2))
        s = rho * jnp.sqrt(jnp.sum((A.T @ (z1n - z1) + (z2n - z2)) ** 2))
        return _ADMMState(x, z1n, z2n, u1, u2, r, s)

    def init():
        z0, w0, inf = jnp.zeros((m,), B.dtype), jnp.zeros((A.shape[0],), B.dtype), jnp.asarray(jnp.inf, B.dtype)
        return _ADMMState(z0, w0, z0, w0, z0, inf, inf)

    return Solver(init, step, codes=lambda state: state.x, error=lambda old, new: jnp.maximum(new.r, new.s))


@partial(jax.jit, static_argnames=("iters",))
def _admm_reference(B, A, y, lam1, lam2, rho, *, iters):
    """The ADMM reference run until both residuals are below 1e-12 or ``iters`` steps.
    Returns (x, primal residual, dual residual, steps)."""
    sol = iterate(_admm_reference_solver(B, A, y, lam1, lam2, rho), max_iter=iters, tol=1e-12)
    return sol.codes, sol.state.r, sol.state.s, sol.num_steps


def _objective_trace(solver, objective, iters):
    """F at the codes after each of ``iters`` steps of a Solver: ``iterate``'s history (``mode="scan"``)."""
    traced = solver._replace(objective=lambda state: objective(solver.codes(state)))
    return iterate(traced, max_iter=iters, tol=0.0, mode="scan", history=True).history


@partial(jax.jit, static_argnames=("iters",))
def _traces(layers, y, lams, *, iters):
    F = lambda GK: ml_bp_objective(layers, y, GK, lams)  # noqa: E731
    steps = tuple(1.0 / D.lipschitz() for D in layers)
    G0 = tuple(jnp.zeros(tuple(D.code_shape), y.dtype) for D in layers)
    # ML-ISTA's layer-i threshold r_i lam_i acts after a gradient step r_1 ... r_i on the data term, so the
    # ML-BP weight lam_i corresponds to the algorithm's lam_i r_1 ... r_{i-1} (for lam_1 = 0 this is the
    # exact reduction to ISTA on D_1 D_2 with step r_1 r_2 and weight lam_2' / r_1 = lam_2)
    scale = jnp.cumprod(jnp.stack((jnp.ones((), y.dtype),) + steps[:-1]))
    alg_lams = tuple(l * c for l, c in zip(lams, scale))
    out = {}
    for name, fista in (("ml_ista", False), ("ml_fista", True)):
        out[name] = _objective_trace(ml_ista_solver(layers, y, alg_lams, steps, G0, fista=fista), F, iters)
    D = Chain(layers)
    proj = fista_solver(D, y, lams[-1], D.lipschitz().astype(y.dtype), G0[-1])
    out["projection"] = _objective_trace(proj, F, iters)
    return out


def _setting(layers, y, lams, p):
    A1, A2 = layers[0].atoms, layers[1].atoms
    refs = []
    for rho in (1.0, 0.3):
        x, r, s, k = _admm_reference(A1 @ A2, A2, y, lams[0], lams[1], jnp.asarray(rho, y.dtype),
                                     iters=p["ref_iters"])
        refs.append((float(ml_bp_objective(layers, y, x, lams)), float(r), float(s), int(k)))
    tr = {k: np.asarray(v) for k, v in _traces(layers, y, lams, iters=p["iters"]).items()}
    Fstar = min(f for f, *_ in refs)
    return tr, Fstar, refs


def _figure(out_dir, results):
    fig = Figure(figsize=(11, 4.2))
    for j, (label, (tr, Fstar, _)) in enumerate(results.items()):
        ax = fig.add_subplot(1, 2, j + 1)
        k = np.arange(1, len(next(iter(tr.values()))) + 1)
        for name, style in (("ml_ista", "-"), ("ml_fista", "-"), ("projection", "--")):
            gap = np.maximum((tr[name] - Fstar) / abs(Fstar), 1e-17)
            ax.loglog(k, gap, style, label=name)
        ax.set_xlabel("iteration k")
        ax.set_ylabel("(F(G_K^k) - F*) / |F*|")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=8)
    return [save_figure(fig, out_dir, f"{NAME}.png")]


def run(quick: bool, out_dir: Path, seed: int = 0, preset: str | None = None) -> dict:
    """Run a preset ("quick" when ``quick``, else ``preset``, default "full"); see the module docstring."""
    trial = EXPERIMENT.start(quick, preset, out_dir, seed)
    p, out_dir = trial.config, trial.out_dir
    with jax.enable_x64(True):
        k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
        layers = random_dense_layers(k1, p["dims"], atom_nnz=p["atom_nnz"], dtype=jnp.float64)
        sig = dense_multilayer_signal(k2, layers, p["nnz"], contrast=0.3, scale=1.0, sigma=p["sigma"])
        y = sig.y
        c1 = float(jnp.max(jnp.abs(layers[0].adjoint(y))))
        c2 = float(jnp.max(jnp.abs(layers[1].adjoint(layers[0].adjoint(y)))))
        settings = {
            "A: lam_1 > 0 (ML-BP)": (jnp.asarray(0.05 * c1), jnp.asarray(0.1 * c2)),
            "B: lam_1 = 0 (Lasso on D_1 D_2)": (jnp.asarray(0.0), jnp.asarray(0.1 * c2)),
        }
        results = {lab: _setting(layers, y, lams, p) for lab, lams in settings.items()}
    names = _figure(out_dir, results)
    measured, ok = {}, True
    for lab, (tr, Fstar, refs) in results.items():
        rel = {k: (v - Fstar) / abs(Fstar) for k, v in tr.items()}
        agree = abs(refs[0][0] - refs[1][0]) / abs(Fstar)
        below = min(float(v.min()) for v in rel.values())
        final = {k: float(v[-1]) for k, v in rel.items()}
        measured[lab] = {
            "F_star": Fstar,
            "reference_runs (F, primal_res, dual_res, steps) for rho = 1, 0.3": refs,
            "reference_agreement_rel": agree,
            "min_rel_gap_over_all_iterates": below,
            "final_rel_gap": final,
            "rel_gap_at_iteration": {str(i): {k: float(v[i - 1]) for k, v in rel.items()}
                                     for i in (10, 100, len(next(iter(rel.values()))))},
        }
        ok &= agree < 1e-6 and below > -1e-6
        if lab.startswith("B"):
            ok &= final["projection"] < 1e-5 and final["ml_fista"] < 1e-5
            ok &= final["ml_ista"] < 0.1 * float(rel["ml_ista"][9])
        else:
            ok &= final["ml_ista"] < 2e-2 and final["ml_fista"] < 2e-2 and final["projection"] > final["ml_fista"]
    table = []
    for lab, m in measured.items():
        for meth, gap in m["final_rel_gap"].items():
            if lab.startswith("B"):
                pred = "< 1e-5" if meth != "ml_ista" else "< 0.1 x its gap at iteration 10"
            else:
                pred = "< 2e-2" if meth != "projection" else "above ML-FISTA's"
            table.append({"setting": lab, "method": meth, "gap at 10": m["rel_gap_at_iteration"]["10"][meth],
                          "final relative gap": gap, "predicted": pred,
                          "reference agreement": m["reference_agreement_rel"]})
    return EXPERIMENT.result(
        trial,
        table=table,
        measured={"dims": p["dims"], "iterations": p["iters"], **measured},
        predicted={
            "reference": "ADMM float64, two rho values agree to 1e-6 relative; no iterate below F* - 1e-6 |F*|",
            "setting_B": "projection and ML-FISTA reach relative gap < 1e-5; ML-ISTA (step r_1 r_2, slower) "
                         "gains at least 10x from iteration 10",
            "setting_A": "ML-ISTA / ML-FISTA come within 2e-2 of F* (fixed-step ML-ISTA is an approximate "
                         "proximal-gradient scheme: its fixed point need not be the ML-BP minimiser, and a "
                         "plateau of a few 1e-3 is measured); projection stalls above them",
            "ml_fista_rate": "none asserted (the O(1/k^2) claim was withdrawn)",
        },
        figures=names,
        passed=ok,
        claim_shown=ok,
    )


def main(argv=None) -> int:
    return EXPERIMENT.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
