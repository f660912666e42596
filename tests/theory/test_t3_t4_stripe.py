"""T3 and T4 (Papyan, Sulam & Elad, IEEE TSP 2017): stripe (local) sparsity guarantees for 1-D periodic CSC.

Filter banks (all normalised; mu computed with ``conv_coherence``, the admissible stripe sparsities with the
``max_stripe_sparsity_*`` helpers and checked against hand-computed values):

* "barker13": M = 1, n = 13, the Barker-13 code; aperiodic autocorrelation sidelobes <= 1, so mu = 1/13:
  T3 for k_stripe <= 6 (k < 7), T4 for k_stripe <= 4 (k < 14/3).
* "designed_pair": M = 2, n = 16, real filters designed offline for low coherence (minimax of all
  auto/cross-correlations: smoothed-max objective, L-BFGS, best of 3 seeded starts, rounded to 3 decimals),
  mu ~= 0.1590: T3 for k_stripe <= 3, T4 for k_stripe <= 2. (Random +-1 pairs of length 16, even after
  bit-flip hill climbing, only reach mu = 0.25: T4 then only for k = 1.)
* "gauss_pair": M = 2, n = 16, Gaussian filters from PRNGKey(6) -- picked among keys 0..7 for mu < 1/2
  (mu ~= 0.401; the median random pair has mu ~= 0.48-0.5): T3 and T4 only for k_stripe = 1.
* "gauss_quad": M = 4, n = 16, Gaussian filters from PRNGKey(0), mu ~= 0.576: T3 for k_stripe = 1, T4 is
  vacuous (k < 0.91) -- typical random filters are too coherent for the noisy stripe theorem.

Signals: N = 64 (>= 2n - 1, so conv_coherence equals the coherence of the circulant matrix), codes from
``stripe_sparse_signals`` (maximal random packing: most stripes hold exactly k_stripe nonzeros), magnitudes in
[0.5, 2]. The total ||G||_0 is far above the global coherence bound (1 + 1/mu)/2: the point of the stripe
theorems. Float64 throughout.

What is asserted, per instance (hundreds per filter bank, all seeded):
* T3 / OMP (``omp`` under vmap on ``Conv.to_dense()``): exactly ||G||_0 atoms chosen, codes == G (1e-9).
* T3 / BP: the exact dual certificate D^T D_S (D_S^T D_S)^{-1} sign(G_S) is < 1 off S (G is the unique BP
  solution), and the convolutional Lasso (FISTA on ``Conv``) at lam = 1e-3 has supp == supp(G); LS on it == G.
* T4 (lam = 4 ||E||^p_{2,inf}, FISTA on ``Conv``, converged to tol 1e-13): supp(G_BP) inside supp(G),
  ||G_BP - G||_inf <= 7.5 ||E||^p_{2,inf}, every |G_i| > 7.5 ||E||^p_{2,inf} found. The constants are
  the papers' constants as read: asserted to hold, not to be tight (observed max err / bound: 0.6-0.75).
"""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import Conv, conv_coherence, normalize_filters, patch_l2_inf, stripe_l0_inf
from sparsejax.theory import conv as tc
N = 64
MIN_ABS, MAX_ABS = 0.5, 2.0
N_SIG = 100       # signals per k_stripe value (T3) and per (k_stripe, noise level) (T4); one batch size
N_T3 = N_T4 = N_SIG   # for all generator calls, so their jit compiles are shared
NOISE_LEVELS = (0.02, 0.1)   # ||E||^p_{2,inf}; 7.5 x 0.1 = 0.75 > MIN_ABS, so small entries may be missed

BARKER13 = [1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1]
DESIGNED_PAIR = [
    [-0.265, 0.157, 0.396, -0.053, -0.131, 0.198, 0.067, 0.201, 0.227, 0.11, 0.161, 0.248, 0.01, 0.519,
     -0.453, 0.137],
    [-0.342, 0.018, 0.208, -0.087, 0.085, -0.161, 0.182, 0.535, 0.198, -0.192, -0.156, -0.186, -0.254,
     -0.377, 0.37, -0.004],
]

# name -> (expected mu (approx), expected max k for T3, expected max k for T4)
EXPECTED = {
    "barker13": (1 / 13, 6, 4),
    "designed_pair": (0.1590, 3, 2),
    "gauss_pair": (0.401, 1, 1),
    "gauss_quad": (0.576, 1, 0),
}


def _filters(name):
    if name == "barker13":
        f = jnp.asarray(BARKER13, jnp.float64)[None, None, :]
    elif name == "designed_pair":
        f = jnp.asarray(DESIGNED_PAIR, jnp.float64)[:, None, :]
    elif name == "gauss_pair":
        f = jax.random.normal(jax.random.PRNGKey(6), (2, 1, 16), jnp.float64)
    elif name == "gauss_quad":
        f = jax.random.normal(jax.random.PRNGKey(0), (4, 1, 16), jnp.float64)
    else:
        raise KeyError(name)
    return normalize_filters(f)


def _setup(name):
    op = Conv(_filters(name), (1, N))
    mu = float(conv_coherence(op.filters))
    mu_exp, k3, k4 = EXPECTED[name]
    assert mu == pytest.approx(mu_exp, abs=1e-3)
    assert tc.max_stripe_sparsity_unique(mu) == k3
    assert tc.max_stripe_sparsity_bp(mu) == k4
    return op, mu


@partial(jax.jit, static_argnums=1)
def _stripe(G, n):
    return jax.vmap(lambda g: stripe_l0_inf(g, n))(G)


@partial(jax.jit, static_argnums=1)
def _patch(E, n):
    return jax.vmap(lambda e: patch_l2_inf(e, n))(E)


def _draw_t3(op, kmax, seed):
    """N_T3 noiseless signals for every k_stripe = 1..kmax (one jit compile: k is traced)."""
    Ys, Gs, ks = [], [], []
    for k in range(1, kmax + 1):
        Y, G, E = tc.stripe_sparse_signals(jax.random.PRNGKey(seed + k), op, k, N_T3, MIN_ABS, MAX_ABS)
        assert float(jnp.max(jnp.abs(E))) == 0.0
        Ys.append(Y), Gs.append(G), ks.append(np.full(N_T3, k))
    return jnp.concatenate(Ys), jnp.concatenate(Gs), np.concatenate(ks)


def _check_t3_premise(op, mu, G, ks):
    n = op.filter_shape[0]
    s = np.asarray(_stripe(G, n))
    assert np.all(s <= ks)                                             # the generator's guarantee
    assert np.all(np.asarray(tc.stripe_uniqueness_condition(mu, s)))   # T3's condition, per instance
    nnz = np.asarray(jnp.sum(G != 0, axis=(1, 2)))
    # the stripe theorem covers far more nonzeros than the global bound (1 + 1/mu)/2
    assert nnz.max() > 0.5 * (1 + 1 / mu)
    return int(nnz.max())


# ------------------------------------------------------------------------------ bound functions
def test_conditions_and_bounds_hand_values():
    mu = 1 / 16
    assert tc.max_stripe_sparsity_unique(mu) == 8       # k < 17/2
    assert tc.max_stripe_sparsity_bp(mu) == 5           # k < 17/3 = 5.67
    assert tc.max_stripe_sparsity_unique(1 / 13) == 6   # k < 7: the edge itself is excluded
    assert tc.max_stripe_sparsity_bp(1 / 13) == 4       # k < 14/3
    assert tc.max_stripe_sparsity_bp(1 / 5) == 1        # k < 2 exactly
    assert tc.max_stripe_sparsity_unique(1 / 5) == 2    # k < 3 exactly
    assert tc.max_stripe_sparsity_bp(0.5) == 0          # k < 1
    assert tc.max_stripe_sparsity_unique(0.6) == 1      # k < 4/3
    assert tc.max_stripe_sparsity_bp(0.6) == 0          # k < 8/9
    assert tc.max_stripe_sparsity_unique(1.0) == 0      # k < 1
    # a float mu a hair below 1/13 (as conv_coherence returns for Barker-13) must not admit k = 7
    assert tc.max_stripe_sparsity_unique(np.nextafter(1 / 13, 0) * (1 - 1e-15)) == 6
    for k in range(0, 12):
        assert bool(tc.stripe_uniqueness_condition(1 / 16, k)) == (k <= 8)
        assert bool(tc.stripe_bp_condition(1 / 16, k)) == (k <= 5)
        assert bool(tc.stripe_bp_condition(0.2, k)) == (k <= 1)
    np.testing.assert_array_equal(tc.stripe_uniqueness_condition(jnp.array([0.1, 0.2, 0.5]), 3),
                                  [True, False, False])             # thresholds 5.5, 3, 1.5
    assert float(tc.stripe_bp_lambda(0.1)) == pytest.approx(0.4)
    assert float(tc.stripe_bp_linf_bound(0.1)) == pytest.approx(0.75)
    np.testing.assert_allclose(tc.stripe_bp_linf_bound(jnp.array([0.0, 0.2])), [0.0, 1.5])
    np.testing.assert_array_equal(tc.stripe_support(jnp.array([0.7, -0.8, 0.0, 0.75]), 0.1),
                                  [False, True, False, False])


def _stripe_numpy(G, n):
    """Independent stripe l0,inf: count nonzeros of all maps at periodic positions i-n+1..i+n-1."""
    M, Nn = G.shape
    nz = (G != 0).sum(axis=0)
    if 2 * n - 1 >= Nn:
        return int(nz.sum())
    return max(int(sum(nz[(i + t) % Nn] for t in range(-n + 1, n))) for i in range(Nn))


def test_stripe_sparse_signals_generator(x64):
    op = Conv(_filters("designed_pair"), (1, N))
    n = op.filter_shape[0]
    for k in (0, 1, 2, 3, 5):
        Y, G, E = tc.stripe_sparse_signals(jax.random.PRNGKey(30 + k), op, k, N_SIG, MIN_ABS, MAX_ABS,
                                           noise_patch_level=0.05)
        assert Y.shape == (N_SIG, 1, N) and G.shape == (N_SIG, 2, N) and E.shape == (N_SIG, 1, N)
        assert G.dtype == jnp.float64
        s = np.asarray(_stripe(G, n))
        assert np.all(s <= k)
        if k > 0:
            assert np.mean(s == k) > 0.9                    # maximal packing: the budget is used
            nz = np.abs(np.asarray(G))[np.asarray(G) != 0]
            assert nz.min() >= MIN_ABS and nz.max() <= MAX_ABS
            assert np.all(np.sum(np.asarray(G) != 0, axis=(0, 2)) > 0)   # both maps used
        else:
            assert not np.any(np.asarray(G))
        for i in range(5):
            assert _stripe_numpy(np.asarray(G[i]), n) == s[i]
        pn = _patch(E, n)
        np.testing.assert_allclose(pn, 0.05, rtol=1e-12)
        np.testing.assert_allclose(Y, jax.vmap(op.apply)(G) + E, atol=1e-12)
    # seeded, capped, noiseless
    Y1, G1, _ = tc.stripe_sparse_signals(jax.random.PRNGKey(3), op, 2, N_SIG)
    Y2, G2, _ = tc.stripe_sparse_signals(jax.random.PRNGKey(3), op, 2, N_SIG)
    np.testing.assert_array_equal(Y1, Y2)
    np.testing.assert_array_equal(G1, G2)
    _, G3, E3 = tc.stripe_sparse_signals(jax.random.PRNGKey(3), op, 3, N_SIG, max_nonzeros=4)
    assert np.all(np.sum(np.asarray(G3) != 0, axis=(1, 2)) == 4)
    assert not np.any(np.asarray(E3))
    # a window wider than the signal covers it once: at most k nonzeros in all
    small = Conv(_filters("designed_pair"), (1, 20))
    _, Gs, _ = tc.stripe_sparse_signals(jax.random.PRNGKey(4), small, 3, 20)
    assert np.all(np.sum(np.asarray(Gs) != 0, axis=(1, 2)) == 3)
    with pytest.raises(ValueError, match="circular"):
        tc.stripe_sparse_signals(jax.random.PRNGKey(0), Conv(op.filters, (1, N), boundary="full"), 1, 2)
    with pytest.raises(ValueError, match="min_abs"):
        tc.stripe_sparse_signals(jax.random.PRNGKey(0), op, 1, 2, min_abs=3.0, max_abs=2.0)


def test_filter_banks(x64):
    for name in EXPECTED:
        _setup(name)
    op = Conv(_filters("barker13"), (1, N))
    assert float(conv_coherence(op.filters)) == pytest.approx(1 / 13, rel=1e-12)
    # conv_coherence = coherence of the explicit circulant dictionary (N >= 2n - 1)
    for name in ("designed_pair", "gauss_quad"):
        op = Conv(_filters(name), (1, N))
        D = np.asarray(op.to_dense())
        np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, rtol=1e-12)
        Gm = np.abs(D.T @ D) - np.eye(D.shape[1])
        assert Gm.max() == pytest.approx(float(conv_coherence(op.filters)), rel=1e-12)


# ------------------------------------------------------------------------------ T3 (noiseless)
T3_CONFIGS = ["barker13", "designed_pair", "gauss_pair", "gauss_quad"]


@pytest.mark.parametrize("name", T3_CONFIGS)
def test_t3_omp_recovers_exactly(x64, name):
    op, mu = _setup(name)
    kmax = tc.max_stripe_sparsity_unique(mu)
    Y, G, ks = _draw_t3(op, kmax, 1000)
    nnz_max = _check_t3_premise(op, mu, G, ks)
    # OMP with room for the largest ||G||_0 of the batch; each signal stops at its exact fit
    codes, sol = tc.recover_stripe_omp(op, Y, nnz_max, tol=1e-9)
    same = np.asarray(jnp.all((codes != 0) == (G != 0), axis=(1, 2)))
    assert same.all(), (name, int((~same).sum()), "failures at k =", np.unique(ks[~same]))
    np.testing.assert_array_equal(np.asarray(sol.num_steps), np.asarray(jnp.sum(G != 0, axis=(1, 2))))
    np.testing.assert_allclose(codes, G, atol=1e-9)


def _restricted(D, Y, G):
    """Per signal, with S = supp(G) and s = sign(G_S): the least-squares fit on S and the BP dual
    certificate c = D^T D_S (D_S^T D_S)^{-1} s (masked normal equations, batched NumPy float64 -- a jitted,
    vmapped jnp.linalg.solve here hung intermittently on the shared 2-core CPU, see the report)."""
    D, Y, G = np.asarray(D), np.asarray(Y), np.asarray(G)
    B = G.shape[0]
    Gf = G.reshape(B, -1)
    sup = Gf != 0
    A = D[None, :, :] * sup[:, None, :]                                   # (B, n, m)
    H = np.einsum("bni,bnj->bij", A, A) + np.eye(D.shape[1])[None] * (~sup)[:, :, None]
    ls = np.linalg.solve(H, np.einsum("bni,bn->bi", A, Y.reshape(B, -1))[..., None])[..., 0] * sup
    w = np.linalg.solve(H, np.sign(Gf)[..., None])[..., 0]
    cert = np.einsum("ni,bn->bi", D, np.einsum("bni,bi->bn", A, w))
    return ls.reshape(G.shape), cert, sup


@pytest.mark.parametrize("name", T3_CONFIGS)
def test_t3_bp_recovers_exactly(x64, name):
    """Noiseless BP, min ||G'||_1 s.t. D G' = Y.

    (a) Exact algebra: the dual certificate c = D^T D_S (D_S^T D_S)^{-1} sign(G_S) equals sign(G) on S and has
        |c_j| < 1 off S (Fuchs' condition; D_S has full column rank), so G is the *unique* BP solution.
    (b) The solver: the convolutional Lasso (FISTA on the Conv operator) at lam = 1e-3, whose minimiser is
        G_S - lam (D_S^T D_S)^{-1} sign(G_S) under (a), has exactly supp(G), values within O(lam), and least
        squares on its support gives G.
    """
    op, mu = _setup(name)
    kmax = tc.max_stripe_sparsity_unique(mu)
    Y, G, ks = _draw_t3(op, kmax, 2000)
    _check_t3_premise(op, mu, G, ks)
    D = op.to_dense()
    ls, cert, sup = _restricted(D, Y, G)
    np.testing.assert_allclose(ls, G, atol=1e-9)
    np.testing.assert_allclose(np.where(sup, cert, 0.0), np.sign(np.asarray(G).reshape(sup.shape)), atol=1e-9)
    off = np.max(np.where(sup, 0.0, np.abs(cert)), axis=1)
    assert off.max() < 1 - 1e-6, (name, float(off.max()))
    lam = 1e-3
    sol = tc.recover_stripe_bp(op, Y, lam, max_iter=20000, tol=1e-12)
    assert bool(jnp.all(sol.converged))
    codes = sol.codes
    same = np.asarray(jnp.all((codes != 0) == (G != 0), axis=(1, 2)))
    assert same.all(), (name, int((~same).sum()), "failures at k =", np.unique(ks[~same]))
    assert float(jnp.max(jnp.abs(codes - G))) < 10 * lam
    deb, _, _ = _restricted(D, Y, codes)
    np.testing.assert_allclose(deb, G, atol=1e-9)


# ------------------------------------------------------------------------------ T4 (noisy BP)
@pytest.mark.parametrize("name", ["barker13", "designed_pair", "gauss_pair"])
def test_t4_bp_stability(x64, name):
    op, mu = _setup(name)
    n = op.filter_shape[0]
    kmax = tc.max_stripe_sparsity_bp(mu)
    assert kmax >= 1
    Ys, Gs, Es, eps_l, ks = [], [], [], [], []
    for i, eps in enumerate(NOISE_LEVELS):
        for k in range(1, kmax + 1):
            Y, G, E = tc.stripe_sparse_signals(jax.random.PRNGKey(3000 + 100 * i + k), op, k, N_T4, MIN_ABS,
                                               MAX_ABS, noise_patch_level=eps)
            Ys.append(Y), Gs.append(G), Es.append(E)
            eps_l.append(np.full(N_T4, eps)), ks.append(np.full(N_T4, k))
    Y, G, E = jnp.concatenate(Ys), jnp.concatenate(Gs), jnp.concatenate(Es)
    ks = np.concatenate(ks)
    # the premises, per instance: stripe condition and the actual patch noise level
    s = np.asarray(_stripe(G, n))
    assert np.all(s <= ks) and np.all(np.asarray(tc.stripe_bp_condition(mu, s)))
    pn = _patch(E, n)
    np.testing.assert_allclose(pn, np.concatenate(eps_l), rtol=1e-12)
    lam = tc.stripe_bp_lambda(pn)
    sol = tc.recover_stripe_bp(op, Y, lam, max_iter=20000, tol=1e-13)
    assert bool(jnp.all(sol.converged))
    codes = sol.codes
    # (1) supp(G_BP) inside supp(G)
    inside = np.asarray(jnp.all((codes == 0) | (G != 0), axis=(1, 2)))
    assert inside.all(), (name, int((~inside).sum()), np.unique(ks[~inside]))
    # (2) ||G_BP - G||_inf <= 7.5 ||E||^p_{2,inf}
    err = jnp.max(jnp.abs(codes - G), axis=(1, 2))
    bound = tc.stripe_bp_linf_bound(pn)
    ratio = np.asarray(err / bound)
    assert np.all(ratio <= 1 + 1e-9), (name, float(ratio.max()))
    # (3) every entry above the bound is found
    big = tc.stripe_support(G, pn[:, None, None])
    found = np.asarray(jnp.all(~big | (codes != 0), axis=(1, 2)))
    assert found.all(), (name, int((~found).sum()))
    # the small-noise half: 7.5 x 0.02 = 0.15 < MIN_ABS, so there the support is recovered exactly
    small = np.concatenate(eps_l) == NOISE_LEVELS[0]
    exact = np.asarray(jnp.all((codes != 0) == (G != 0), axis=(1, 2)))
    assert exact[small].all()


def test_t4_checks_have_teeth_outside_the_condition(x64):
    """Not a theorem: the same checks, on stripe sparsity k = 3 for gauss_pair (mu ~= 0.401, T4 needs
    k < 1.16), do fail on some seeded instance -- so the assertions above are not vacuous. (Measured: about
    4% of these instances get a spurious support entry and max err / (7.5 eps) ~= 1.3.)"""
    op, mu = _setup("gauss_pair")
    n, k, eps = op.filter_shape[0], 3, 0.02
    assert not bool(tc.stripe_bp_condition(mu, k))
    Y, G, E = tc.stripe_sparse_signals(jax.random.PRNGKey(80), op, k, N_SIG, MIN_ABS, MAX_ABS,
                                       noise_patch_level=eps)
    pn = _patch(E, n)
    codes = tc.recover_stripe_bp(op, Y, tc.stripe_bp_lambda(pn), max_iter=20000, tol=1e-13).codes
    inside = jnp.all((codes == 0) | (G != 0), axis=(1, 2))
    within = jnp.max(jnp.abs(codes - G), axis=(1, 2)) <= tc.stripe_bp_linf_bound(pn)
    assert not bool(jnp.all(inside & within))
