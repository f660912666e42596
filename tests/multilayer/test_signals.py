"""Signal generators of the multi-layer models (sparsejax.multilayer.signals): the generated signals obey the model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tol_for
from sparsejax.multilayer import signals as M
from sparsejax.conv.operator import Conv
from sparsejax.conv.norms import stripe_l0_inf
from sparsejax.dictionary import random_gaussian


def _pair(dtype, n=20, m1=40, m2=24, seed=1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return random_gaussian(k1, n, m1, dtype), random_gaussian(k2, m1, m2, dtype)


@pytest.mark.parametrize("s2,l1", [(6, 0), (6, 3), (8, 7)])
def test_two_layer_signal_obeys_the_model(dtype, s2, l1):
    D1, D2 = _pair(dtype)
    sig = M.two_layer_dense_signal(jax.random.PRNGKey(3), D1, D2, s2, l1, amplitude=2.5, sigma=0.1)
    tol = tol_for(dtype, 1e-5, 1e-12)
    # G_1 vanishes exactly on the cosupport, which has l1 distinct entries
    assert sig.cosupport1.shape == (l1,) and len(set(np.asarray(sig.cosupport1).tolist())) == l1
    assert np.all(np.asarray(sig.G1)[np.asarray(sig.cosupport1)] == 0)
    # G_2 has exactly s2 nonzeros, on support2
    nz = np.flatnonzero(np.asarray(sig.G2))
    assert np.array_equal(nz, np.sort(np.asarray(sig.support2)))
    # the chain of the model: G_1 = D_2 G_2 (its cosupport entries were already ~0), x = D_1 G_1 = D_1 D_2 G_2
    scale = float(jnp.max(jnp.abs(sig.G1)))
    assert float(jnp.max(jnp.abs(D2 @ sig.G2 - sig.G1))) <= tol * 10 * scale
    assert float(jnp.max(jnp.abs(D1 @ (D2 @ sig.G2) - sig.x))) <= tol * 10 * float(jnp.max(jnp.abs(sig.x)))
    np.testing.assert_allclose(float(jnp.linalg.norm(sig.x)), 2.5, rtol=tol * 10)
    np.testing.assert_allclose(np.asarray(sig.y - sig.x), np.asarray(sig.noise), atol=tol * 10)
    assert sig.x.dtype == dtype


def test_two_layer_signal_vmaps_over_keys_and_noise_statistics():
    D1, D2 = _pair(np.float32)
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    batch = jax.vmap(lambda k: M.two_layer_dense_signal(k, D1, D2, 7, 4, sigma=0.3))(keys)
    one = M.two_layer_dense_signal(keys[5], D1, D2, 7, 4, sigma=0.3)
    np.testing.assert_allclose(np.asarray(batch.y[5]), np.asarray(one.y), rtol=1e-5, atol=1e-6)
    assert np.array_equal(np.asarray(batch.support2[5]), np.asarray(one.support2))
    # the noise has variance sigma^2 (64 x 20 samples: 6 standard errors of the variance estimate)
    v = np.asarray(batch.noise).ravel()
    assert abs(v.var() / 0.09 - 1) < 6 * np.sqrt(2 / v.size)
    # the supports differ between draws
    assert len({tuple(s) for s in np.asarray(batch.support2).tolist()}) > 32


def test_two_layer_signal_rejects_bad_sizes():
    D1, D2 = _pair(np.float32)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="l1"):
        M.two_layer_dense_signal(key, D1, D2, 5, 5)
    with pytest.raises(TypeError, match="l1"):
        M.two_layer_dense_signal(key, D1, D2, 5, 2.0)
    with pytest.raises(ValueError, match="s2"):
        M.two_layer_dense_signal(key, D1, D2, 30, 2)
    with pytest.raises(ValueError, match="D2"):
        M.two_layer_dense_signal(key, D1, D2.T, 5, 2)
    with pytest.raises(ValueError, match="amplitude"):
        M.two_layer_dense_signal(key, D1, D2, 5, 2, amplitude=-1.0)


def test_null_space_is_orthonormal_and_annihilates(x64):
    A = jax.random.normal(jax.random.PRNGKey(0), (3, 8), jnp.float64)
    K = M.null_space(A, 5)
    np.testing.assert_allclose(np.asarray(K.T @ K), np.eye(5), atol=1e-12)
    np.testing.assert_allclose(np.asarray(A @ K), 0.0, atol=1e-12)


def test_random_conv_layers_sparse_unit_filters():
    layers = M.random_conv_layers(jax.random.PRNGKey(0), (1, 48), (4, 6, 8), (5, 3, 3), filter_nnz=(None, 3, 2))
    assert [tuple(D.filters.shape) for D in layers] == [(4, 1, 5), (6, 4, 3), (8, 6, 3)]
    for i, D in enumerate(layers):
        f = np.asarray(D.filters).reshape(D.filters.shape[0], -1)
        np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
        nnz = (f != 0).sum(axis=1)
        assert np.all(nnz == (f.shape[1] if i == 0 else (3, 2)[i - 1]))


@pytest.mark.parametrize("two_d,dtype", [(False, np.float64), (True, np.float32)])
def test_conv_multilayer_signal_chain_stripe_and_contrast(two_d, dtype):
    with jax.enable_x64(dtype == np.float64):
        key = jax.random.PRNGKey(2)
        if two_d:
            layers = M.random_conv_layers(key, (1, 24, 24), (3, 4), (4, 3), filter_nnz=(None, 3), stride=(2, 1),
                                          dtype=dtype)
        else:
            layers = M.random_conv_layers(key, (1, 64), (4, 6, 8), (5, 3, 3), filter_nnz=(None, 3, 2), dtype=dtype)
        sig = M.conv_multilayer_signal(jax.random.PRNGKey(7), layers, 5, contrast=0.25, scale=2.0, sigma=0.05)
        K = len(layers)
        GK = np.asarray(sig.codes[-1])
        # G_K: the requested number of nonzeros, contrast and scale exactly
        assert (GK != 0).sum() == 5
        a = np.abs(GK[GK != 0])
        np.testing.assert_allclose([a.max(), a.min() / a.max()], [2.0, 0.25], rtol=tol_for(dtype, 1e-6, 1e-12))
        np.testing.assert_allclose(float(sig.contrast[-1]), 0.25, rtol=tol_for(dtype, 1e-6, 1e-12))
        # well separated (lattice spacing = filter size): at most 2 sites per axis in a stripe
        d = GK.ndim - 1
        assert int(sig.l0_inf[-1]) <= 2 ** d
        # the chain G_{i-1} = D_i G_i, x = D_1 G_1 against the operators' own (FFT or direct) synthesis
        prev = (sig.x,) + sig.codes[:-1]
        for D, G, P in zip(layers, sig.codes, prev):
            Df = Conv(D.filters, D.signal_shape, stride=D.stride, boundary=D.boundary, method="fft")
            scale = float(jnp.max(jnp.abs(P)))
            assert float(jnp.max(jnp.abs(Df.apply(G) - P))) <= tol_for(dtype, 1e-5, 1e-12) * 10 * scale
        # measured stripe l0,inf and contrast agree with direct evaluation
        for i, (D, G) in enumerate(zip(layers, sig.codes)):
            win = tuple(-(-k // D.stride) for k in D.filter_shape)
            assert int(sig.l0_inf[i]) == int(stripe_l0_inf(G, win))
            g = np.abs(np.asarray(G))
            np.testing.assert_allclose(float(sig.contrast[i]), g[g > 0].min() / g.max(), rtol=1e-6)
            assert int(sig.l0_inf[i]) >= 1
        # sparse deeper filters keep the intermediate codes sparse: ||G_{i-1}||_0 <= nnz(filter_i) ||G_i||_0
        for i in range(1, K):
            nnz_f = int(np.max((np.asarray(layers[i].filters) != 0).reshape(layers[i].filters.shape[0], -1).sum(1)))
            assert (np.asarray(sig.codes[i - 1]) != 0).sum() <= nnz_f * (np.asarray(sig.codes[i]) != 0).sum()
        np.testing.assert_allclose(np.asarray(sig.y - sig.x), np.asarray(sig.noise), atol=1e-6)


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_conv_multilayer_signal_jit_vmap_and_errors():
    layers = M.random_conv_layers(jax.random.PRNGKey(0), (1, 40), (3, 5), (4, 3), filter_nnz=(None, 2))
    keys = jax.random.split(jax.random.PRNGKey(1), 6)
    batch = jax.vmap(lambda k: M.conv_multilayer_signal(k, layers, 4, contrast=0.5))(keys)
    one = M.conv_multilayer_signal(keys[3], layers, 4, contrast=0.5)
    np.testing.assert_allclose(np.asarray(batch.x[3]), np.asarray(one.x), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(batch.l0_inf[3]), np.asarray(one.l0_inf))
    with pytest.raises(ValueError, match="nnz_K"):
        M.conv_multilayer_signal(keys[0], layers, 100)
    with pytest.raises(ValueError, match="contrast"):
        M.conv_multilayer_signal(keys[0], layers, 3, contrast=1.5)
    with pytest.raises(TypeError, match="Conv"):
        M.conv_multilayer_signal(keys[0], M.random_dense_layers(keys[0], (10, 20)), 3)


def test_dense_multilayer_signal():
    dtype = np.float32
    layers = M.random_dense_layers(jax.random.PRNGKey(0), (20, 40, 60, 80), atom_nnz=3, dtype=dtype)
    for D in layers[1:]:
        assert np.all((np.asarray(D.atoms) != 0).sum(axis=0) == 3)
    sig = M.dense_multilayer_signal(jax.random.PRNGKey(4), layers, 5, contrast=0.2, sigma=0.0)
    D1, D2, D3 = (D.atoms for D in layers)
    G1, G2, G3 = sig.codes
    tol = tol_for(dtype, 1e-5, 1e-12)
    np.testing.assert_allclose(np.asarray(D1 @ (D2 @ (D3 @ G3))), np.asarray(sig.x), atol=tol * 10)
    np.testing.assert_array_equal(np.asarray(sig.l0_inf), [int((np.asarray(G) != 0).sum()) for G in sig.codes])
    assert int(sig.l0_inf[2]) == 5
    assert int(sig.l0_inf[1]) <= 15 and int(sig.l0_inf[0]) <= 45
    np.testing.assert_allclose(float(sig.contrast[2]), 0.2, rtol=tol * 10)
    np.testing.assert_array_equal(np.asarray(sig.y), np.asarray(sig.x))
