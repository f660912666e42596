"""K-SVD denoising (Elad & Aharon 2006): the DCT dictionary, the OMP error target per patch (against a plain numpy
OMP), the closed-form image update (zero gradient of the MAP objective), the approximate K-SVD update, and the PSNR
gain of the whole pipeline on a small image."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.datasets.images import load_image
from sparsejax.imaging import psnr
from sparsejax.patches import extract_patches
from sparsejax.restoration import (
    approximate_ksvd_update,
    error_target,
    image_update,
    ksvd_denoise,
    overcomplete_dct,
    overcomplete_dct_1d,
    paper_lambda,
    sparse_code_patches,
)


def _crop(size=40):
    return jnp.asarray(load_image("camera")[200:200 + size, 220:220 + size])


def test_overcomplete_dct_is_the_separable_cosine_frame():
    D1 = overcomplete_dct_1d(8, 16)
    t, k = np.arange(8)[:, None], np.arange(16)[None, :]
    ref = np.cos(np.pi * t * k / 16)
    ref[:, 1:] -= ref[:, 1:].mean(0)
    np.testing.assert_allclose(D1, ref / np.linalg.norm(ref, axis=0), atol=1e-12)
    D = np.asarray(overcomplete_dct(8, 256, jnp.float32))
    assert D.shape == (64, 256)
    # atom i*16 + j is the (row-major flattened) outer product d_i d_j^T
    np.testing.assert_allclose(D[:, 3 * 16 + 5], np.outer(D1[:, 3], D1[:, 5]).ravel(), atol=1e-6)
    with pytest.raises(ValueError, match="n_atoms"):
        overcomplete_dct(8, 200)


def _numpy_omp(D, y, target):
    """Plain OMP to the error target, in float64: the reference."""
    S, r = [], y.copy()
    while r @ r > target and len(S) < D.shape[0] // 2:
        S.append(int(np.argmax(np.abs(D.T @ r))))
        coef, *_ = np.linalg.lstsq(D[:, S], y, rcond=None)
        r = y - D[:, S] @ coef
    return len(S), r @ r


# one small geometry for the whole module (4 x 4 patches, 64 DCT atoms, at most 8 atoms a patch), so the pursuit
# compiles once
PATCH, ATOMS = 4, 64


def test_omp_meets_the_error_target_per_patch():
    sigma = 10 / 255
    x = _crop(32)
    y = x + sigma * jax.random.normal(jax.random.PRNGKey(0), x.shape)
    P = extract_patches(y, PATCH)
    D = overcomplete_dct(PATCH, ATOMS)
    pc = sparse_code_patches(D, P, sigma)
    target = error_target(sigma, PATCH * PATCH)
    Pn, Dn = np.asarray(P, np.float64), np.asarray(D, np.float64)
    R = Pn - Pn.mean(1, keepdims=True) - np.asarray(pc.codes, np.float64) @ Dn.T
    res2 = np.sum(R * R, axis=1)
    conv = np.asarray(pc.converged)
    assert conv.mean() > 0.95 and np.mean(np.asarray(pc.num_atoms)) > 1.0
    assert np.all(res2[conv] <= target * (1 + 1e-4))
    np.testing.assert_allclose(res2, np.asarray(pc.residual_norm2), rtol=1e-3, atol=1e-5)
    np.testing.assert_array_equal(np.sum(np.asarray(pc.codes) != 0, axis=1), np.asarray(pc.num_atoms))
    # the same number of atoms as a plain OMP run to the same target (a few patches)
    for i in np.linspace(0, len(Pn) - 1, 40).astype(int):
        k_ref, _ = _numpy_omp(Dn, Pn[i] - Pn[i].mean(), target)
        assert int(pc.num_atoms[i]) == k_ref


def test_image_update_is_the_minimiser_of_the_map_objective(x64):
    rng = np.random.default_rng(0)
    Y = jnp.asarray(rng.standard_normal((9, 10)))
    P = jnp.asarray(rng.standard_normal(extract_patches(Y, 4, 2).shape))
    lam = 0.7
    X = image_update(Y, P, lam, 4, 2)

    def f(X):
        return lam * jnp.sum((X - Y) ** 2) + jnp.sum((P - extract_patches(X, 4, 2)) ** 2)

    g = jax.grad(f)(X)
    assert float(jnp.max(jnp.abs(g))) < 1e-10
    assert float(f(X)) < float(f(X + 1e-3 * jnp.asarray(rng.standard_normal(X.shape))))
    assert paper_lambda(25 / 255) == pytest.approx(30 / 25)


def test_approximate_ksvd_update_closed_form_and_monotone():
    key1 = jax.random.PRNGKey(3)
    D = overcomplete_dct(PATCH, ATOMS)
    Y = jax.random.normal(key1, (841, 16))
    A = sparse_code_patches(D, Y, 0.5).codes
    D1, A1, unused = approximate_ksvd_update(D, Y, A)
    assert float(jnp.linalg.norm(Y - A1 @ D1.T)) <= float(jnp.linalg.norm(Y - A @ D.T)) * (1 + 1e-6)
    # atom 0 is updated first: d_0 = E_0^T a / ||.|| with E_0 the residual without atom 0
    a = np.asarray(A[:, 0], np.float64)
    E = np.asarray(Y, np.float64) - np.asarray(A, np.float64) @ np.asarray(D, np.float64).T + np.outer(a, D[:, 0])
    if np.any(a != 0):
        g = E.T @ a
        np.testing.assert_allclose(D1[:, 0], g / np.linalg.norm(g), atol=1e-4)
        np.testing.assert_allclose(A1[:, 0], np.where(a != 0, E @ np.asarray(D1[:, 0], np.float64), 0), atol=1e-4)
    np.testing.assert_array_equal(unused, ~jnp.any(A1 != 0, axis=0))


def test_ksvd_denoise_gains_psnr_and_learning_sparsifies():
    sigma = 25 / 255
    x = _crop(32)
    y = x + sigma * jax.random.normal(jax.random.PRNGKey(1), x.shape)
    dct = ksvd_denoise(y, sigma, n_iter=0, patch_size=PATCH, n_atoms=ATOMS)
    learned = ksvd_denoise(y, sigma, n_iter=3, patch_size=PATCH, n_atoms=ATOMS, n_train=None)
    p_noisy, p_dct, p_learned = (float(psnr(x, z)) for z in (y, dct.image, learned.image))
    assert dct.finite and learned.finite
    assert p_dct > p_noisy + 4.0 and p_learned > p_noisy + 4.0
    assert learned.converged_fraction > 0.99 and len(learned.history) == 3
    # K-SVD lowers the number of atoms the noisy patches need at the same error target
    atoms = [h["mean_atoms"] for h in learned.history] + [learned.mean_atoms]
    assert atoms[-1] < atoms[0]
    # the exact K-SVD update (rank-1 SVD, sparsejax.learn.dense) works the same way
    exact = ksvd_denoise(y, sigma, n_iter=1, patch_size=PATCH, n_atoms=ATOMS, n_train=None, update="exact")
    assert exact.finite and float(psnr(x, exact.image)) > p_noisy + 4.0
    assert exact.mean_atoms < atoms[0]


def test_bad_input_is_named():
    y = jnp.zeros((16, 16))
    with pytest.raises(ValueError, match="sigma"):
        ksvd_denoise(y, 0.0)
    with pytest.raises(ValueError, match="update"):
        ksvd_denoise(y, 0.1, update="svd")
    with pytest.raises(ValueError, match="dictionary"):
        ksvd_denoise(y, 0.1, dictionary=jnp.ones((16, 20)))
    with pytest.raises(ValueError, match="noisy"):
        ksvd_denoise(jnp.zeros(16), 0.1)
    with pytest.raises(ValueError, match="patches"):
        sparse_code_patches(overcomplete_dct(PATCH, ATOMS), jnp.zeros((3, 15)), 0.1)
