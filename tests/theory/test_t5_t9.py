"""T5-T9 (the theorems of ``sparsejax.theory``): multi-layer guarantees as executable checks (``sparsejax.theory.multilayer``).

Model: ``theory_ml.incoherent_conv_layers`` -- 1-D circular, D_1 = Barker-13 (mu = 1/13), D_2 = one length-4
filter with equal taps on the Golomb ruler {0, 1, 3} (mu = 1/3), N = 256; signals from
``ml_signals.conv_multilayer_signal`` with 6 spikes in G_2 at least 32 apart, so ||G_2||^s_{0,inf} = 1 and
||G_1||^s_{0,inf} = 3: T6 holds at both layers, T5 for contrast 0.8 and small noise, T7 on D_1 D_2
(molecule length 16, mu ~= 0.41). Every instance is checked to MEET the conditions before the conclusions
are asserted on it; bounds are asserted to hold, never to be tight.
"""
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import mutual_coherence, normalize_atoms

from sparsejax.conv import norms as conv_norms
from sparsejax.theory import multilayer as tm
from sparsejax.multilayer.layered import layered_thresholding
from sparsejax.multilayer.layered_bp import layered_bp, projection_pursuit
from sparsejax.multilayer.signals import conv_multilayer_signal, two_layer_dense_signal
from sparsejax.multilayer.model import Chain, synthesize, to_dense

N = 256
B = 16            # instances per check
SEP = 32          # spacing of G_2's spikes
NNZ = 6


class Sig(NamedTuple):
    x: jax.Array
    y: jax.Array
    codes: tuple
    noise: jax.Array


@jax.jit
def _synth_batch(L, G2, noise):
    codes, x = jax.vmap(lambda g: synthesize(L, g))(G2)
    return Sig(x, x + noise, tuple(codes) + (G2,), noise)


def _draw(L, seed, sigma, contrast=0.8):
    """B instances: G_2 with NNZ spikes on a random-offset lattice of spacing SEP (random sites, signs,
    magnitudes in [contrast, 1] with both extremes attained), G_1 = D_2 G_2, x = D_1 G_1 (``synthesize``),
    y = x + N(0, sigma^2). The same construction as ``ml_signals.conv_multilayer_signal`` (cross-checked in
    ``test_model_coherences_and_statistics``) without its per-dtype compilation cost."""
    rng = np.random.default_rng(seed)
    G2 = np.zeros((B, 1, N))
    for b in range(B):
        pos = rng.integers(SEP) + SEP * rng.choice(N // SEP, NNZ, replace=False)
        mag = rng.uniform(contrast, 1.0, NNZ)
        mag[0], mag[-1] = 1.0, contrast
        G2[b, 0, pos] = mag * rng.choice([-1.0, 1.0], NNZ)
    dt = L[0].dtype
    return _synth_batch(L, jnp.asarray(G2, dt), jnp.asarray(sigma * rng.standard_normal((B, 1, N)), dt))


@jax.jit
def _stats_batch(L, codes, noise):
    stats = jax.vmap(lambda *c: tm.layer_statistics(L, c))(*codes)
    return stats, jax.vmap(lambda e: tm.noise_level(L, e))(noise)


def _quantities(L, sig):
    stats, eps0 = _stats_batch(L, sig.codes, sig.noise)
    return tm.layer_coherences(L), stats, eps0


def _patch_err(L, i, err):
    """||err||^p_{2,inf} w.r.t. the footprint of D_{i+2} (0-based layer i), ||err||_2 for the last layer."""
    if i + 1 < len(L):
        return jax.vmap(lambda e: conv_norms.patch_l2_inf(e, L[i + 1].filter_shape))(err)
    return jnp.sqrt(jnp.sum(err * err, axis=(1, 2)))


# ------------------------------------------------------------------------------ bound functions
def test_bound_functions_hand_values():
    # one layer: k = 2, mu = 0.1, |G| in [0.6, 1], eps0 = 0.05, p = 3, ||G||_0 = 5
    st = tm.ModelStats(*(jnp.array([v]) for v in (2.0, 3.0, 5.0, 0.6, 1.0)))
    lt = tm.lt_bound(jnp.array([0.1]), st, 0.05)
    # C = 0.1, K = 0.2: window (0.25, 0.45), midpoint 0.35
    np.testing.assert_allclose([lt.window_lo[0], lt.window_hi[0], lt.threshold[0]], [0.25, 0.45, 0.35])
    assert bool(lt.condition[0]) and bool(lt.stripe_condition[0])
    np.testing.assert_allclose(lt.linf[0], 0.15)                  # eps + C
    np.testing.assert_allclose(lt.eps[0], np.sqrt(3) * 0.15)
    np.testing.assert_allclose(lt.l2[0], np.sqrt(5) * 0.15)
    lts = tm.lt_bound(jnp.array([0.1]), st, 0.05, soft=True)
    np.testing.assert_allclose(lts.linf[0], 0.15 + 0.35)          # + b for soft
    # threshold outside the window or a failed stripe condition -> no guarantee (inf)
    assert not bool(tm.lt_bound(jnp.array([0.1]), st, 0.05, thresholds=jnp.array([0.2])).guaranteed[0])
    bad = tm.lt_bound(jnp.array([0.1]), st, 0.11)                # window (0.31, 0.39)? lo 0.31 < hi 0.39
    assert bool(bad.condition[0])
    worse = tm.lt_bound(jnp.array([0.1]), st, 0.2)               # lo 0.4 > hi 0.3
    assert not bool(worse.condition[0]) and not bool(worse.stripe_condition[0])
    assert np.isinf(worse.linf[0]) and np.isinf(worse.eps[0])
    # the published inequality equals "window non-empty" on a grid (and mu = 0 is allowed)
    mu, eps, k = (a.ravel() for a in np.meshgrid([0.0, 0.05, 0.2, 0.5], np.linspace(0, 0.5, 11), [1, 2, 3, 5]))
    grid = jax.jit(jax.vmap(lambda m, e, kk: tm.lt_bound(m[None], tm.ModelStats(
        kk[None], jnp.ones(1), kk[None], jnp.full(1, 0.3), jnp.ones(1)), e)))(mu, eps, k.astype(float))
    np.testing.assert_array_equal(grid.stripe_condition[:, 0], grid.window_lo[:, 0] < grid.window_hi[:, 0])
    assert 0 < int(jnp.sum(grid.stripe_condition)) < mu.size
    # T6: conditions k < (1 + 1/mu)/3, recursion == closed form 7.5^i eps0 prod sqrt(p_j)
    st2 = tm.ModelStats(jnp.array([3.0, 1.0]), jnp.array([3.0, 6.0]), jnp.array([18.0, 6.0]),
                        jnp.array([0.4, 0.8]), jnp.array([0.6, 1.0]))
    lb = tm.lbp_bound(jnp.array([1 / 13, 1 / 3]), st2, 0.01)
    assert bool(jnp.all(lb.condition))
    np.testing.assert_allclose(lb.eps, tm.lbp_eps_closed_form(st2, 0.01), rtol=1e-6)
    np.testing.assert_allclose(lb.eps, [7.5 * np.sqrt(3) * 0.01, 7.5 ** 2 * np.sqrt(3 * 6) * 0.01], rtol=1e-6)
    np.testing.assert_allclose(lb.xi, [0.04, 4 * 7.5 * np.sqrt(3) * 0.01], rtol=1e-6)
    assert not bool(tm.lbp_bound(jnp.array([0.25, 0.25]), st2, 0.01).condition[0])   # 3 < 5/3 fails
    # T7: the published form = the general inequality with s = 2k, delta = eps, unit atoms
    for mu, k, eps in [(0.1, 2, 0.3), (0.41, 1, 0.05), (0.05, 5, 1.0)]:
        np.testing.assert_allclose(tm.projection_bound(mu, k, eps), 4 * eps ** 2 / (1 - (2 * k - 1) * mu))
        np.testing.assert_allclose(tm.projection_error_bound(mu, 2 * k, eps, eps), tm.projection_bound(mu, k, eps))
    assert bool(tm.projection_condition(0.41, 1)) and not bool(tm.projection_condition(0.41, 2))
    assert np.isinf(tm.projection_bound(0.41, 2, 0.1)) and np.isinf(tm.projection_error_bound(0.5, 4, 1, 1))


def test_classifier_margins_and_radius_closed_form():
    G = jnp.array([[0.0, 2.0, 0.0, -1.0]])
    W = jnp.stack([jnp.array([[0.0, 1.0, 0.0, 0.0]]), jnp.array([[0.0, 0.0, 0.0, -1.0]]),
                   jnp.array([[1.0, 0.0, 0.0, 0.0]])])
    m, n = tm.classifier_margins(W, jnp.zeros(3), G)                 # scores 2, 1, 0: class 0
    np.testing.assert_allclose(m, [np.inf, 1.0, 2.0])
    np.testing.assert_allclose(n, [1.0, np.sqrt(2), np.sqrt(2)])
    mb, nb = tm.classifier_margins(W[1], -3.0, G)                    # |1 - 3| = 2, ||w|| = 1
    np.testing.assert_allclose([mb[0], nb[0]], [2.0, 1.0])
    # LBP radius: margin / (||w|| sqrt(l0_K) 7.5^K prod_{j<K} sqrt(p_j))
    st = tm.ModelStats(jnp.array([3.0, 1.0]), jnp.array([3.0, 6.0]), jnp.array([18.0, 6.0]),
                       jnp.array([0.4, 0.8]), jnp.array([0.6, 1.0]))
    r = tm.lbp_certified_radius(jnp.array([1 / 13, 1 / 3]), st, jnp.array([2.0]), jnp.array([1.0]))
    np.testing.assert_allclose(r, 2.0 / (np.sqrt(6) * 7.5 ** 2 * np.sqrt(3)), rtol=1e-6)
    # LT radius: at eps0 = r the binding constraint is met with equality
    mu = jnp.array([1 / 13, 1 / 3])
    b = tm.lt_bound(mu, st, 0.0).threshold
    r = tm.lt_certified_radius(mu, st, b, jnp.array([2.0]), jnp.array([1.0]))
    assert float(r) > 0
    lo = tm.lt_bound(mu, st, 0.999 * r, thresholds=b)
    hi = tm.lt_bound(mu, st, 1.001 * r, thresholds=b)
    ok_lo = bool(jnp.all(lo.condition)) and float(lo.l2[-1]) < 2.0
    ok_hi = bool(jnp.all(hi.condition)) and float(hi.l2[-1]) < 2.0
    assert ok_lo and not ok_hi


def test_model_coherences_and_statistics(x64):
    L = tm.incoherent_conv_layers(64, jnp.float64)
    mu = tm.layer_coherences(L)
    np.testing.assert_allclose(mu, [1 / 13, 1 / 3], rtol=1e-12)
    # = the coherence of the explicit circulant dictionaries
    np.testing.assert_allclose([mutual_coherence(D.to_dense()) for D in L], mu, rtol=1e-12)
    mu_e, nu_min, nu_max = tm.effective_constants(L)
    A = to_dense(Chain(L))
    np.testing.assert_allclose(mu_e, mutual_coherence(A), rtol=1e-10)
    np.testing.assert_allclose([nu_min, nu_max], [jnp.min(jnp.sum(A * A, 0)), jnp.max(jnp.sum(A * A, 0))])
    L256 = tm.incoherent_conv_layers(N, jnp.float64)
    sig = _draw(L256, 1, 0.0)
    _, stats, _ = _quantities(L256, sig)
    np.testing.assert_array_equal(stats.stripe_l0, np.broadcast_to([3, 1], (B, 2)))
    np.testing.assert_allclose(stats.gmin / stats.gmax, 0.8, rtol=1e-12)
    # patch l0 of G_1 in a 4-window (D_2's footprint): brute force
    G1 = np.asarray(sig.codes[0])[:, 0] != 0
    brute = [max(G1[b, (np.arange(4) + i) % N].sum() for i in range(N)) for b in range(B)]
    np.testing.assert_array_equal(stats.patch_l0[:, 0], brute)
    with pytest.raises(ValueError, match="unit-norm"):
        tm.layer_coherences((L[0], type(L[1])(2 * L[1].filters, (1, 64))))
    with pytest.raises(ValueError, match="boundary"):
        tm.layer_coherences((type(L[0])(L[0].filters, (1, 64), boundary="same"),))


@pytest.mark.slow
def test_statistics_match_ml_signals_generator(x64):
    """The stripe sparsity and contrast measured here equal those ``ml_signals.conv_multilayer_signal``
    reports, and its draws have the statistics of the tests' own draws (slow: one generator compilation)."""
    L256 = tm.incoherent_conv_layers(N, jnp.float64)
    keys = jax.random.split(jax.random.PRNGKey(1), B)
    sig = jax.vmap(lambda k: conv_multilayer_signal(k, L256, NNZ, contrast=0.8, separation=SEP))(keys)
    _, stats, _ = _quantities(L256, sig)
    np.testing.assert_array_equal(stats.stripe_l0, sig.l0_inf)
    np.testing.assert_allclose(stats.gmin / stats.gmax, sig.contrast, rtol=1e-12)
    mine = _quantities(L256, _draw(L256, 1, 0.0))[1]
    np.testing.assert_array_equal(mine.stripe_l0, stats.stripe_l0)
    np.testing.assert_array_equal(mine.patch_l0, stats.patch_l0)


# ------------------------------------------------------------------------------ T5
@partial(jax.jit, static_argnames=("prox",))
def _lt_batch(L, Y, b, prox):
    return jax.vmap(lambda y, bb: layered_thresholding(L, y, tuple(bb), prox=prox).codes)(Y, b)


@pytest.mark.parametrize("prox", ["hard", "soft"])
def test_t5_layered_thresholding(dtype, prox):
    """Hard: both layers. Soft: the bias b_i enters eps_i (eps_1 = sqrt(p_1)(eps_0 + C_1 + b_1) ~= 0.4 here),
    which breaks layer 2's window on this model, so the soft check runs on D_1 alone (G_1 the deepest code)."""
    L2 = tm.incoherent_conv_layers(N, dtype)
    sig = _draw(L2, 5, sigma=0.003)
    mu, stats, eps0 = _quantities(L2, sig)
    soft = prox == "soft"
    L = L2[:1] if soft else L2
    if soft:
        mu = mu[:1]
        stats = tm.ModelStats(*(jnp.stack([a[:, 0]], axis=1) for a in stats))
        stats = stats._replace(patch_l0=stats.l0)          # no next layer: p_1 = ||G_1||_0
        lt2 = jax.vmap(lambda s, e: tm.lt_bound(tm.layer_coherences(L2), s, e, soft=True))(
            *_quantities(L2, sig)[1:])
        assert not bool(jnp.any(lt2.guaranteed[:, 1]))      # the bias compounding, as computed by T5
    lt = jax.vmap(lambda s, e: tm.lt_bound(mu, s, e, soft=soft))(stats, eps0)
    assert bool(jnp.all(lt.guaranteed)), "every drawn instance must meet T5's conditions"
    G = _lt_batch(L, sig.y, lt.threshold, prox)
    for i in range(len(L)):
        Gt = sig.codes[i]
        assert bool(jnp.all((G[i] != 0) == (Gt != 0))), f"layer {i + 1}: support not recovered"
        err = G[i] - Gt
        assert bool(jnp.all(jnp.max(jnp.abs(err), axis=(1, 2)) <= lt.linf[:, i]))
        assert bool(jnp.all(_patch_err(L, i, err) <= lt.eps[:, i]))
        assert bool(jnp.all(jnp.sqrt(jnp.sum(err * err, axis=(1, 2))) <= lt.l2[:, i]))


# ------------------------------------------------------------------------------ T6
@jax.jit
def _lbp_batch(L, Y, xi):
    return jax.vmap(lambda y, x: layered_bp(L, y, (x[0], x[1]), max_iter=4000, tol=1e-13))(Y, xi)


def test_t6_layered_bp(x64):
    L = tm.incoherent_conv_layers(N, jnp.float64)
    sig = _draw(L, 6, sigma=0.0012, contrast=0.3)      # low contrast: LBP's condition does not involve it
    mu, stats, eps0 = _quantities(L, sig)
    lb = jax.vmap(lambda s, e: tm.lbp_bound(mu, s, e))(stats, eps0)
    assert bool(jnp.all(lb.guaranteed))
    sol = _lbp_batch(L, sig.y, lb.xi)
    assert bool(jnp.all(sol.converged)) and not bool(jnp.any(sol.diverged))
    for i in range(2):
        Gt, Gh = sig.codes[i], sol.codes[i]
        assert bool(jnp.all((Gh == 0) | (Gt != 0))), f"layer {i + 1}: support not inside the true one"
        err = Gh - Gt
        linf = jnp.max(jnp.abs(err), axis=(1, 2))
        assert bool(jnp.all(linf <= lb.linf[:, i]))
        big = jnp.abs(Gt) > lb.linf[:, i, None, None]
        assert bool(jnp.all(~big | (Gh != 0))), "an entry above the bound was missed"
        assert bool(jnp.any(big))        # the 'found' claim is not vacuous on these instances
        assert bool(jnp.all(_patch_err(L, i, err) <= lb.eps[:, i]))
        assert bool(jnp.all(jnp.sqrt(jnp.sum(err * err, axis=(1, 2))) <= lb.l2[:, i]))


# ------------------------------------------------------------------------------ T7
@jax.jit
def _projection_batch(L, Y, lam):
    return jax.vmap(lambda y, l: projection_pursuit(L, y, l, max_iter=3000, tol=1e-12).codes[-1])(Y, lam)


@jax.jit
def _debias(A, Y, supp):
    """Least squares of each y on the columns of A in supp (others 0): the normal equations on the support,
    identity rows elsewhere."""
    gram = A.T @ A

    def one(y, s):
        m = s.astype(A.dtype)
        M = gram * m[:, None] * m[None, :] + jnp.diag(1.0 - m)
        return jnp.linalg.solve(M, m * (A.T @ y))
    return jax.vmap(one)(Y, supp)


def test_t7_projection(x64):
    L = tm.incoherent_conv_layers(N, jnp.float64)
    sig = _draw(L, 7, sigma=0.002)
    mu_e, nu_min, nu_max = tm.effective_constants(L)
    E = (sig.y - sig.x)[:, 0]
    eps = jnp.sqrt(jnp.sum(E * E, axis=1))
    mol_len = 13 + 4 - 1
    k = jax.vmap(lambda g: conv_norms.stripe_l0_inf(g, mol_len))(sig.codes[-1])
    assert bool(jnp.all(tm.projection_condition(mu_e, k)))
    lam = 4.0 * jax.vmap(lambda e: conv_norms.patch_l2_inf(e, mol_len))(sig.y - sig.x)
    G = _projection_batch(L, sig.y, lam)
    A = to_dense(Chain(L))
    Gd = _debias(A, sig.y[:, 0], (G != 0)[:, 0])[:, None, :]
    for est in (G, Gd):      # the inequality behind T7 holds for any estimate
        delta = jnp.sqrt(jnp.sum((sig.y[:, 0] - est[:, 0] @ A.T) ** 2, axis=1))
        s = jax.vmap(lambda d: conv_norms.stripe_l0_inf(d, mol_len))(est - sig.codes[-1])
        bound = tm.projection_error_bound(mu_e, s, eps, delta, nu_min, nu_max)
        assert bool(jnp.all(jnp.isfinite(bound)))
        assert bool(jnp.all(jnp.sum((est - sig.codes[-1]) ** 2, axis=(1, 2)) <= bound))
    # the published form applies to the debiased estimate when its stripe sparsity <= k and residual <= eps;
    # nu = 1 there is replaced by the measured effective norms (the molecules have ||.||^2 ~= 1.05)
    delta = jnp.sqrt(jnp.sum((sig.y[:, 0] - Gd[:, 0] @ A.T) ** 2, axis=1))
    kd = jax.vmap(lambda g: conv_norms.stripe_l0_inf(g, mol_len))(Gd)
    meets = (kd <= k) & (delta <= eps)
    assert bool(jnp.all(meets))
    ref = 4 * eps ** 2 / (nu_min - (2 * k - 1) * mu_e * nu_max)
    np.testing.assert_allclose(tm.projection_error_bound(mu_e, 2 * k, eps, eps, nu_min, nu_max), ref)
    assert bool(jnp.all(jnp.sum((Gd - sig.codes[-1]) ** 2, axis=(1, 2)) <= ref))


# ------------------------------------------------------------------------------ T8
def test_t8_oracle_closed_form_vs_monte_carlo(x64):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(8), 4)
    n, m1, m2, s2, l1, sigma = 20, 40, 30, 6, 3, 0.1
    D1 = normalize_atoms(jax.random.normal(k1, (n, m1), jnp.float64))
    D2 = normalize_atoms(jax.random.normal(k2, (m1, m2), jnp.float64))
    sig = two_layer_dense_signal(k3, D1, D2, s2, l1, amplitude=1.0, sigma=0.0)
    chk = tm.oracle_mse_check(k4, D1, D2, sig.support2, sig.cosupport1, sigma, n_trials=2000, G2=sig.G2)
    assert abs(float(chk.projection_z)) < 4.0 and abs(float(chk.holistic_z)) < 4.0
    assert float(chk.holistic_closed) <= float(chk.projection_closed)
    assert float(chk.holistic_mc) < float(chk.projection_mc)


# ------------------------------------------------------------------------------ T9
def _classifier(key, G):
    w = G / jnp.linalg.norm(G) + 0.3 * jax.random.normal(key, G.shape, G.dtype) / np.sqrt(G.size)
    return w


def _perturbations(key, L, n, r, attack):
    """n random perturbations plus the attack directions, each scaled to ||E||^p_{2,inf} = r."""
    E = jax.random.normal(key, (n,) + tuple(L[0].signal_shape), attack.dtype)
    E = jnp.concatenate([E, attack])
    scale = jax.vmap(lambda e: tm.noise_level(L, e))(E)
    return E * (r / scale)[:, None, None]


def test_t9_certified_radius(x64):
    L = tm.incoherent_conv_layers(N, jnp.float64)
    sig = _draw(L, 9, sigma=0.0, contrast=0.8)
    mu, stats, _ = _quantities(L, sig)
    DL = Chain(L)
    for b in range(2):
        st = jax.tree_util.tree_map(lambda a: a[b], stats)
        G2, x = sig.codes[-1][b], sig.x[b]
        w = _classifier(jax.random.PRNGKey(90 + b), G2)
        margins, norms = tm.classifier_margins(w, 0.0, G2)
        label = jnp.sign(jnp.sum(w * G2))
        # layered (hard) thresholding with fixed thresholds: the window midpoints at a design budget 0.01
        thr = tm.lt_bound(mu, st, 0.01).threshold
        r_lt = float(tm.lt_certified_radius(mu, st, thr, margins, norms))
        assert r_lt > 0.01
        score = lambda y: jnp.sum(w * layered_thresholding(L, y, (thr[0], thr[1]), prox="hard").codes[-1])  # noqa: E731
        g = jax.grad(score)(x)
        attack = jnp.stack([-label * g, label * g, -label * DL.apply(w)])
        E = _perturbations(jax.random.PRNGKey(b), L, B - 3, 0.99 * r_lt, attack)
        G = _lt_batch(L, x[None] + E, jnp.broadcast_to(thr, (B, 2)), "hard")
        s = jnp.sum(w[None] * G[-1], axis=(1, 2))
        assert bool(jnp.all(jnp.sign(s) == label)), "a perturbation below the T5 radius flipped the decision"
        # layered BP run with xi_i = 4 eps_{i-1} for the budget r
        r_lbp = float(tm.lbp_certified_radius(mu, st, margins, norms))
        assert r_lbp > 0
        r = 0.99 * r_lbp
        xi = tm.lbp_bound(mu, st, r).xi
        E = _perturbations(jax.random.PRNGKey(10 + b), L, B - 3, r, attack)
        G = _lbp_batch(L, x[None] + E, jnp.broadcast_to(xi, (B, 2)))
        s = jnp.sum(w[None] * G.codes[-1], axis=(1, 2))
        assert bool(jnp.all(jnp.sign(s) == label)), "a perturbation below the T6 radius flipped the decision"
