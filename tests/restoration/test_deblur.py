"""sparsejax.restoration.deblur: the blur operator is circular convolution (scipy) with an exact adjoint and norm,
the composed and patch-synthesis operators pass the dot-product test, and deblurring a camera crop gains PSNR over
the blurred image at a point that satisfies the Lasso optimality conditions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import convolve

from sparsejax.datasets import images as data
from sparsejax.imaging import psnr
from sparsejax.patches import extract_patches
from sparsejax.restoration.dct import overcomplete_dct
from sparsejax.restoration.deblur import (
    Blur,
    Composed,
    PatchSynthesis,
    box_psf,
    deblur,
    gaussian_psf,
)
from sparsejax.separation import LocalDCT


def _dot_test(op, dtype, rng):
    a = jnp.asarray(rng.standard_normal(op.code_shape), dtype)
    y = jnp.asarray(rng.standard_normal(op.signal_shape), dtype)
    lhs, rhs = float(jnp.vdot(jax.jit(op.apply)(a), y)), float(jnp.vdot(a, jax.jit(op.adjoint)(y)))
    tol = 1e-11 if dtype == np.float64 else 1e-4
    assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs))


def test_blur_is_circular_convolution_with_exact_adjoint_and_norm(dtype):
    rng = np.random.default_rng(0)
    psf = np.asarray(rng.uniform(size=(5, 3)), dtype)
    x = rng.standard_normal((12, 10)).astype(dtype)
    B = Blur(jnp.asarray(psf), (12, 10))
    np.testing.assert_allclose(B.apply(jnp.asarray(x)), convolve(x, psf, mode="wrap"),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)
    _dot_test(B, dtype, rng)
    # ||H||^2 = the largest squared singular value of the circulant matrix, built column by column
    Hmat = np.stack([convolve(e.reshape(12, 10), psf, mode="wrap").ravel() for e in np.eye(120, dtype=dtype)], 1)
    assert float(B.lipschitz()) == pytest.approx(np.linalg.norm(Hmat, 2) ** 2, rel=1e-5)


def test_composed_and_patch_synthesis_adjoints(x64):
    dtype = np.float64
    rng = np.random.default_rng(1)
    S = PatchSynthesis(overcomplete_dct(4, 36, dtype=dtype), (10, 9), 4, 3)
    _dot_test(S, dtype, rng)
    _dot_test(Composed(Blur(gaussian_psf(3, 1.0, dtype), (10, 9)), S), dtype, rng)
    # averaging: codes equal to the patches' own coefficients in an orthonormal basis give the image back
    x = jnp.asarray(rng.standard_normal((8, 8)), dtype)
    Q = PatchSynthesis(jnp.eye(16, dtype=dtype), (8, 8), 4, 2)
    np.testing.assert_allclose(Q.apply(extract_patches(x, 4, 2)), x, atol=1e-5)


def test_deblur_gains_over_the_blurred_image_at_a_lasso_optimum():
    x = jnp.asarray(data.load_image("camera")[200:232, 220:252], jnp.float32)
    psf = gaussian_psf(7, 1.5)
    y = Blur(psf, x.shape).apply(x) + 0.005 * jax.random.normal(jax.random.PRNGKey(0), x.shape)
    lam = 5e-4
    res = deblur(y, psf, lam=lam, max_iter=500)
    assert bool(res.solution.converged)
    assert float(psnr(x, res.image)) > float(psnr(x, y)) + 2.0
    # KKT of min 1/2||H Phi a - y||^2 + lam ||w a||_1: |g| <= lam w off the support, g = -lam w sign(a) on it
    F = LocalDCT(x.shape, 8)
    A = Composed(Blur(psf, x.shape), F)
    w = jnp.where(jnp.isinf(F.thresholds(1.0)), 0.0, 1.0)
    g = A.adjoint(y - A.apply(res.codes))
    on = res.codes != 0
    off_gap = float(jnp.max(jnp.where(on, 0.0, jnp.abs(g) - lam * w)))
    on_gap = float(jnp.max(jnp.where(on, jnp.abs(g - lam * w * jnp.sign(res.codes)), 0.0)))
    assert off_gap < 1e-3 * lam and on_gap < 0.5 * lam      # FISTA stopped at tol 1e-4, not at the exact optimum
    assert res.params["lam"] == pytest.approx(lam) and "local DCT" in res.params["dictionary"]


def test_bad_input_is_named():
    y = jnp.zeros((16, 16))
    with pytest.raises(ValueError, match="size must be odd"):
        gaussian_psf(4, 1.0)
    with pytest.raises(ValueError, match="psf"):
        deblur(y, jnp.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="multiples of patch_size"):
        deblur(jnp.zeros((15, 16)), box_psf(3))
    with pytest.raises(ValueError, match="p\\*p rows"):
        deblur(y, box_psf(3), dictionary=jnp.ones((10, 20)))
    with pytest.raises(ValueError, match="lam"):
        deblur(y, box_psf(3), lam=-1.0)
    with pytest.raises(ValueError, match="shape must be"):
        Blur(jnp.ones((5, 5)), (4, 4))
