"""sparsejax.restoration.inpaint: masked OMP equals scikit-learn's OMP on the renormalised known rows, a planted
image sparse in the block DCT is recovered exactly from half of its pixels, a photograph crop gains over the
mean fill, and bad input is named."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.datasets import images as data
from sparsejax.imaging import psnr, random_mask
from sparsejax.restoration.inpaint import inpaint_patches, masked_omp
from sparsejax.separation import dct_matrix


def test_masked_omp_is_sklearn_omp_on_the_renormalised_known_rows():
    from sklearn.linear_model import OrthogonalMatchingPursuit

    rng = np.random.default_rng(0)
    D = rng.standard_normal((16, 36))
    D /= np.linalg.norm(D, axis=0)                          # generic atoms: no ties in the greedy choice
    Y = rng.standard_normal((5, 16))
    M = (rng.uniform(size=(5, 16)) < 0.6).astype(np.float64)
    with jax.enable_x64(True):
        mc = masked_omp(jnp.asarray(D), jnp.asarray(Y), jnp.asarray(M), k=3)
        codes = np.asarray(mc.codes)
    for i in range(5):
        A = D * M[i][:, None]
        nrm = np.linalg.norm(A, axis=0)
        ref = OrthogonalMatchingPursuit(n_nonzero_coefs=3, fit_intercept=False).fit(A / nrm, Y[i] * M[i]).coef_
        np.testing.assert_allclose(codes[i], ref / nrm, atol=1e-8)
        r = (Y[i] - D @ codes[i]) * M[i]
        assert float(mc.residual_rms[i]) == pytest.approx(np.sqrt(np.sum(r ** 2) / M[i].sum()), rel=1e-8)


def test_planted_block_dct_sparse_image_is_recovered_from_half_the_pixels():
    # a 32 x 32 image whose every 8 x 8 block is 3-sparse in the orthonormal 2-D DCT; 50% of the pixels known
    p, k = 8, 3
    C = np.asarray(dct_matrix(p), np.float64)
    B = np.kron(C.T, C.T)                                   # (64, 64): columns are the 2-D DCT atoms
    rng = np.random.default_rng(1)
    img = np.zeros((32, 32))
    for bi in range(4):
        for bj in range(4):
            a = np.zeros(64)
            a[rng.choice(64, k, replace=False)] = rng.choice([-1, 1], k) * rng.uniform(0.5, 1.0, k)
            img[bi * p:(bi + 1) * p, bj * p:(bj + 1) * p] = (B @ a).reshape(p, p)
    mask = np.asarray(random_mask(jax.random.PRNGKey(3), img.shape, 0.5))
    res = inpaint_patches(jnp.asarray(img * mask, jnp.float32), mask, patch_size=p, stride=p,
                          dictionary=jnp.asarray(B, jnp.float32), k=k)
    assert res.params["known_fraction"] == pytest.approx(mask.mean())
    assert float(jnp.max(jnp.abs(res.image - img))) < 1e-4
    assert res.codes.num_atoms.tolist() == [k] * 16
    assert bool(res.finite) and bool(jnp.all(res.codes.converged))


@pytest.mark.slow
def test_photograph_crop_gains_over_the_mean_fill():
    x = jnp.asarray(data.load_image("camera")[200:232, 220:252], jnp.float32)
    mask = random_mask(jax.random.PRNGKey(1), x.shape, 0.5)
    mean_fill = jnp.where(mask > 0, x, jnp.sum(mask * x) / jnp.sum(mask))
    res = inpaint_patches(x * mask, mask, stride=2)             # default: overcomplete DCT 64 x 256, k = 8
    assert float(psnr(x, res.image)) > float(psnr(x, mean_fill)) + 8.0
    np.testing.assert_array_equal(np.asarray(res.image)[np.asarray(mask) > 0], np.asarray(x)[np.asarray(mask) > 0])
    assert res.params["k"] == 8 and res.params["dictionary"] == "overcomplete DCT 64x256"


def test_bad_input_is_named():
    x = jnp.zeros((16, 16))
    with pytest.raises(ValueError, match="mask must have the image's shape"):
        inpaint_patches(x, jnp.ones((16, 15)))
    with pytest.raises(ValueError, match="at least one known pixel"):
        inpaint_patches(x, jnp.zeros((16, 16)))
    with pytest.raises(ValueError, match="patch_size\\^2 = 64 rows"):
        inpaint_patches(x, jnp.ones((16, 16)), dictionary=jnp.ones((16, 32)))
    with pytest.raises(ValueError, match="k"):
        inpaint_patches(x, jnp.ones((16, 16)), k=100)
    with pytest.raises(ValueError, match="image \\(known pixels\\)"):
        inpaint_patches(x.at[3, 3].set(jnp.nan), jnp.ones((16, 16)))
    with pytest.raises(ValueError, match="patch_size must be <="):
        inpaint_patches(jnp.zeros((4, 4)), jnp.ones((4, 4)))
