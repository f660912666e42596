"""Convolutional coherence, stripe and patch norms (Papyan, Sulam & Elad, "Working locally thinking globally:
theoretical guarantees for convolutional sparse coding", IEEE TSP 2017) against brute-force numpy loops."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.conv.operator import Conv, normalize_filters
from sparsejax.conv.norms import (conv_coherence, conv_cross_correlation, patch_l2_inf, stripe_counts,
                                  stripe_l0_inf, stripe_l2_inf)


# ----------------------------------------------------------------------------------------------------
# brute force
# ----------------------------------------------------------------------------------------------------
def brute_coherence(f, stride=1):
    """max over pairs (m, m') and shifts |t| < k of |<d_m shifted by t, d_m'>|, normalised filters."""
    f = f / np.sqrt(np.sum(f ** 2, axis=tuple(range(1, f.ndim)), keepdims=True))
    M = f.shape[0]
    k = f.shape[2:]
    best = 0.0
    for m, mm in itertools.product(range(M), range(M)):
        for t in itertools.product(*[range(-kk + 1, kk) for kk in k]):
            if m == mm and all(tt == 0 for tt in t):
                continue
            if any(tt % stride for tt in t):
                continue
            v = 0.0
            for j in itertools.product(*[range(kk) for kk in k]):
                jt = tuple(jj + tt for jj, tt in zip(j, t))
                if all(0 <= a < kk for a, kk in zip(jt, k)):
                    v += np.sum(f[(m, slice(None)) + jt] * f[(mm, slice(None)) + j])
            best = max(best, abs(v))
    return best


def brute_stripe(G, k, periodic, power):
    """Per position i: measure of all coefficients at positions i - k + 1 .. i + k - 1 (each counted once)."""
    G = np.asarray(G, np.float64)
    d = len(k)
    P = G.shape[-d:]
    v = (G != 0).astype(float) if power == 0 else G ** 2
    v = v.reshape((-1,) + P).sum(0)
    out = np.zeros(P)
    for i in itertools.product(*[range(p) for p in P]):
        pos = set()
        for t in itertools.product(*[range(-kk + 1, kk) for kk in k]):
            q = tuple(ii + tt for ii, tt in zip(i, t))
            if periodic:
                pos.add(tuple(qq % pp for qq, pp in zip(q, P)))
            elif all(0 <= qq < pp for qq, pp in zip(q, P)):
                pos.add(q)
        out[i] = sum(v[q] for q in pos)
    return out


def brute_patch(X, k, periodic):
    X = np.asarray(X, np.float64)
    d = len(k)
    N = X.shape[-d:]
    X = X.reshape((-1,) + N)
    best = 0.0
    starts = [range(n) if periodic else range(n - kk + 1) for n, kk in zip(N, k)]
    for i in itertools.product(*starts):
        idx = np.ix_(*[(np.arange(kk) + ii) % n for kk, ii, n in zip(k, i, N)])
        best = max(best, np.sqrt(sum(np.sum(x[idx] ** 2) for x in X)))
    return best


# ----------------------------------------------------------------------------------------------------
# coherence
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 1, 4), (2, 3, 5), (3, 2, 3, 2)])
@pytest.mark.parametrize("stride", [1, 2])
def test_coherence_matches_brute_force(x64, shape, stride):
    f = np.random.default_rng(0).standard_normal(shape)
    assert float(conv_coherence(f, stride=stride)) == pytest.approx(brute_coherence(f, stride), rel=1e-12)


def test_cross_correlation_matches_numpy(x64):
    f = np.random.default_rng(1).standard_normal((2, 2, 4))
    R = np.asarray(conv_cross_correlation(f, normalize=False))
    for m, mm in itertools.product(range(2), range(2)):
        ref = sum(np.correlate(f[m, c], f[mm, c], mode="full") for c in range(2))
        np.testing.assert_allclose(R[m, mm], ref, atol=1e-12)


@pytest.mark.parametrize("shape,sig,stride", [((4, 1, 5), (1, 12), 1), ((3, 2, 4), (2, 12), 1),
                                              ((3, 2, 4), (2, 12), 2), ((3, 1, 3, 2), (1, 6, 6), 1),
                                              ((2, 2, 3, 3), (2, 6, 6), 2)])
def test_coherence_equals_dense_circulant_dictionary(x64, shape, sig, stride):
    """Periodic dictionary long enough (N >= 2k - 1): its explicit mutual coherence is the conv coherence."""
    D = Conv(normalize_filters(np.random.default_rng(2).standard_normal(shape)), sig, stride=stride)
    A = D.to_dense()  # columns: the operator applied to unit vectors
    assert float(D.coherence()) == pytest.approx(float(sj.mutual_coherence(A)), rel=1e-12)


def test_coherence_is_scale_invariant_and_bounded(dtype):
    f = jnp.asarray(np.random.default_rng(3).standard_normal((4, 1, 6)), dtype)
    mu = conv_coherence(f)
    assert mu.dtype == dtype and 0.0 < float(mu) <= 1.0 + 1e-6
    assert float(conv_coherence(3.0 * f)) == pytest.approx(float(mu), rel=1e-5)
    assert float(jax.jit(conv_coherence)(f)) == pytest.approx(float(mu), rel=1e-6)
    # a filter and its shifted copy are fully coherent
    g = jnp.zeros((2, 1, 6), dtype).at[0, 0, :3].set(1.0).at[1, 0, 2:5].set(1.0)
    assert float(conv_coherence(g)) == pytest.approx(1.0, rel=1e-6)


# ----------------------------------------------------------------------------------------------------
# stripe and patch norms
# ----------------------------------------------------------------------------------------------------
def sparse_codes(shape, density=0.25, seed=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * (rng.random(shape) < density)


@pytest.mark.parametrize("shape,k", [((3, 15), (3,)), ((2, 5), (4,)), ((3, 6, 7), (2, 3)), ((2, 4, 4), (3, 3))])
@pytest.mark.parametrize("periodic", [True, False])
def test_stripe_norms_match_brute_force(x64, shape, k, periodic):
    G = sparse_codes(shape)
    fs = k[0] if len(k) == 1 else k
    for power in (0, 2):
        ref = brute_stripe(G, k, periodic, power)
        np.testing.assert_allclose(np.asarray(stripe_counts(G, fs, periodic=periodic, power=power)), ref,
                                   atol=1e-12)
    assert int(stripe_l0_inf(G, fs, periodic=periodic)) == int(brute_stripe(G, k, periodic, 0).max())
    assert float(stripe_l2_inf(G, fs, periodic=periodic)) == pytest.approx(
        np.sqrt(brute_stripe(G, k, periodic, 2).max()), rel=1e-12)


def test_stripe_l0_of_a_single_spike_and_jit():
    G = jnp.zeros((3, 20)).at[1, 7].set(2.0).at[2, 9].set(-1.0).at[0, 19].set(1.0)
    # positions 7 and 9 share every stripe i in 5..11 for n = 5 (window 9); 19 is 10 away from 9
    assert int(stripe_l0_inf(G, 5)) == 2
    assert int(jax.jit(lambda g: stripe_l0_inf(g, 5))(G)) == 2
    # periodic: position 19 neighbours position 0..3 wrapped; with n = 12 everything is within one stripe
    assert int(stripe_l0_inf(G, 12)) == 3
    assert float(stripe_l2_inf(G, 5)) == pytest.approx(np.sqrt(5.0))


@pytest.mark.parametrize("shape,k", [((20,), (4,)), ((2, 9), (3,)), ((5, 6), (2, 3)), ((2, 5, 4), (3, 2))])
@pytest.mark.parametrize("periodic", [True, False])
def test_patch_l2_inf_matches_brute_force(x64, shape, k, periodic):
    X = np.random.default_rng(5).standard_normal(shape)
    ps = k[0] if len(k) == 1 else k
    assert float(patch_l2_inf(X, ps, periodic=periodic)) == pytest.approx(brute_patch(X, k, periodic),
                                                                          rel=1e-12)


def test_patch_norm_bounds():
    """||V||^p_{2,inf} <= ||V||_2, with equality for a patch-sized signal."""
    X = jnp.asarray(np.random.default_rng(6).standard_normal((2, 16)), jnp.float32)
    p = float(patch_l2_inf(X, 5))
    assert p <= float(jnp.linalg.norm(X)) + 1e-6
    assert float(patch_l2_inf(X, 16)) == pytest.approx(float(jnp.linalg.norm(X)), rel=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="filters"):
        conv_coherence(jnp.ones((3, 4)))
    with pytest.raises(TypeError, match="filters"):
        conv_coherence(jnp.ones((2, 1, 3), jnp.int32))
    with pytest.raises(ValueError, match="stride"):
        conv_coherence(jnp.ones((2, 1, 3)), stride=0)
    with pytest.raises(ValueError, match="filter_shape"):
        stripe_l0_inf(jnp.ones((2, 8)), 0)
    with pytest.raises(ValueError, match="filter_shape"):
        stripe_l0_inf(jnp.ones((8,)), (2, 2))
    with pytest.raises(ValueError, match="patch_shape"):
        patch_l2_inf(jnp.ones((2, 8)), 9)
    with pytest.raises(ValueError, match="power"):
        stripe_counts(jnp.ones((2, 8)), 3, power=1)
