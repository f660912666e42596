"""The conversions of sparsejax.interop checked against the libraries they convert from: scikit-learn's Lasso
and OMP scales, SPORCO's filter layout (its synthesis by FFT), and Flax's nn.Conv as our adjoint."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax import interop


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((20, 30))
    D /= np.linalg.norm(D, axis=0)
    a = np.zeros(30)
    a[[2, 7, 11]] = [1.5, -2.0, 1.0]
    return D, D @ a + 0.01 * rng.standard_normal(20)


def test_lasso_scale_matches_sklearn(problem, x64):
    linear_model = pytest.importorskip("sklearn.linear_model")
    D, y = problem
    alpha = 0.02
    ref = linear_model.Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(D, y).coef_
    lam = interop.lam_from_sklearn_alpha(alpha, n_samples=D.shape[0])
    ours = sj.fista(jnp.asarray(D), jnp.asarray(y), lam, max_iter=20_000, tol=1e-12).codes
    np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-6)
    assert interop.sklearn_alpha_from_lam(lam, D.shape[0]) == pytest.approx(alpha)
    # the dictionary layout of scikit-learn's estimators is the transpose
    assert interop.components_from_dictionary(D).shape == (30, 20)
    np.testing.assert_array_equal(interop.dictionary_from_components(interop.components_from_dictionary(D)), D)


def test_omp_tolerance_matches_sklearn(problem, x64):
    linear_model = pytest.importorskip("sklearn.linear_model")
    D, y = problem
    tol_sklearn = 0.05 ** 2
    ref = linear_model.orthogonal_mp(D, y, tol=tol_sklearn)
    ours = sj.omp(jnp.asarray(D), jnp.asarray(y), tol=interop.omp_tol_from_sklearn(tol_sklearn))
    np.testing.assert_allclose(np.asarray(ours.codes), ref, atol=1e-10)
    assert interop.sklearn_omp_tol(interop.omp_tol_from_sklearn(tol_sklearn)) == pytest.approx(tol_sklearn)


def test_sporco_layout_gives_sporco_synthesis(x64):
    """SPORCO's synthesis is the circular sum over m of d_m * x_m, computed here by FFT on its own layout; a
    non-square filter catches a swapped h / w."""
    rng = np.random.default_rng(1)
    Ds = rng.standard_normal((3, 5, 4))                  # (h, w, M)
    Xs = rng.standard_normal((16, 12, 1, 1, 4))          # (H, W, C, K, M)
    pad = np.zeros((16, 12, 4))
    pad[:3, :5] = Ds
    ref = np.real(np.fft.ifft2(np.fft.fft2(pad, axes=(0, 1)) * np.fft.fft2(Xs[:, :, 0, 0], axes=(0, 1)),
                               axes=(0, 1))).sum(-1)
    filters = interop.filters_from_sporco(Ds)
    codes = interop.codes_from_sporco(Xs)
    ours = sj.conv_synthesis(jnp.asarray(filters), jnp.asarray(codes), boundary="circular")
    np.testing.assert_allclose(np.asarray(ours)[0], ref, atol=1e-10)
    np.testing.assert_array_equal(interop.filters_to_sporco(filters), Ds)
    multi = rng.standard_normal((3, 5, 2, 4))            # (h, w, C, M)
    np.testing.assert_array_equal(interop.filters_to_sporco(interop.filters_from_sporco(multi)), multi)
    with pytest.raises(ValueError, match="X must hold one single-channel image"):
        interop.codes_from_sporco(np.zeros((4, 4, 2, 1, 3)))


def test_flax_conv_layer_is_our_adjoint():
    nn = pytest.importorskip("flax.linen")
    rng = np.random.default_rng(2)
    kernel = rng.standard_normal((3, 5, 2, 4)).astype(np.float32)      # (h, w, C_in, M)
    image = rng.standard_normal((2, 10, 9)).astype(np.float32)          # (C, H, W)
    layer = nn.Conv(features=4, kernel_size=(3, 5), padding="VALID", use_bias=False)
    out = layer.apply({"params": {"kernel": jnp.asarray(kernel)}}, jnp.asarray(image.transpose(1, 2, 0))[None])
    filters = interop.filters_from_flax_kernel(kernel)
    ours = sj.conv_adjoint(jnp.asarray(filters), jnp.asarray(image), boundary="full")
    np.testing.assert_allclose(np.asarray(ours), np.asarray(out[0]).transpose(2, 0, 1), atol=1e-4)
    np.testing.assert_array_equal(interop.filters_to_flax_kernel(filters), kernel)


def test_bad_layouts_and_scales_are_named():
    with pytest.raises(ValueError, match="filters must have 4 dimensions"):
        interop.filters_to_sporco(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="alpha must be a non-negative number"):
        interop.lam_from_sklearn_alpha(-1.0, 10)
    with pytest.raises(ValueError, match="components must have 2 dimensions"):
        interop.dictionary_from_components(np.zeros(3))
