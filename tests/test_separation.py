"""sparsejax.separation: the frames are Parseval with exact adjoints (dot-product test, scipy's block DCT), the
threshold schedule's closed forms, MCA with one frame is hard thresholding, MCA separates a known cartoon + texture,
and bad input is named before anything compiles."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.fft import dctn

from sparsejax.imaging import psnr, random_mask
from sparsejax.separation import (
    LocalDCT,
    UndecimatedHaar,
    cartoon_texture,
    mca,
    threshold_schedule,
)

CASES = [(lambda dt: LocalDCT((16, 24), 8, 4, dtype=dt), np.float32),
         (lambda dt: LocalDCT((8, 8), 4, 1, dtype=dt), np.float64),
         (lambda dt: UndecimatedHaar((16, 24), 3, dtype=dt), np.float32),
         (lambda dt: UndecimatedHaar((8, 16), 2, dtype=dt), np.float64)]


@pytest.mark.parametrize("make,dtype", CASES, ids=["dct-8-4-f32", "dct-4-1-f64", "haar-3-f32", "haar-2-f64"])
def test_frames_are_parseval_with_exact_adjoints(make, dtype):
    with jax.enable_x64(dtype == np.float64):
        _parseval_and_adjoint(make(np.dtype(dtype).name), dtype)


def _parseval_and_adjoint(F, dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(F.signal_shape), dtype)
    a = jnp.asarray(rng.standard_normal(F.code_shape), dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    apply, adjoint = jax.jit(F.apply), jax.jit(F.adjoint)
    lhs, rhs = float(jnp.vdot(apply(a), x)), float(jnp.vdot(a, adjoint(x)))
    assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs)) * 10
    c = adjoint(x)
    assert c.dtype == x.dtype
    np.testing.assert_allclose(apply(c), x, atol=100 * tol)             # Phi Phi^T = I
    # atom norms: one atom of each band, synthesised from a unit code
    norms = np.broadcast_to(np.asarray(F.atom_norms()), F.code_shape)
    for band in range(F.code_shape[0]):
        e = np.zeros(F.code_shape)
        e[band, 1, 2] = 1.0
        atom = apply(jnp.asarray(e, dtype))
        assert float(jnp.linalg.norm(atom)) == pytest.approx(norms[band, 1, 2], rel=1e-4)


def test_local_dct_with_stride_p_is_scipy_block_dct():
    x = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    c = np.asarray(LocalDCT((16, 8), 8, 8).adjoint(jnp.asarray(x)))[0]
    ref = np.concatenate([dctn(x[:8], norm="ortho"), dctn(x[8:], norm="ortho")])
    np.testing.assert_allclose(c, ref, atol=1e-5)


def test_threshold_schedule_closed_forms():
    np.testing.assert_allclose(threshold_schedule(10.0, 1.0, 10), 10.0 - np.arange(10.0), rtol=1e-6)
    np.testing.assert_allclose(threshold_schedule(8.0, 1.0, 4, "exponential"), [8.0, 4.0, 2.0, 1.0], rtol=1e-6)


def test_mca_with_one_frame_is_hard_thresholding():
    F = LocalDCT((16, 16), 8, 8, exclude_dc=False)
    y = jnp.asarray(np.random.default_rng(2).standard_normal((16, 16)), jnp.float32)
    res = mca(y, [F], num_iter=3, lam_max=2.0, lam_min=0.5, schedule="linear")
    c = F.adjoint(y)
    expect = F.apply(jnp.where(jnp.abs(c) > 0.5, c, 0.0))          # norms are 1 (S = 1)
    np.testing.assert_allclose(res.components[0], expect, atol=1e-5)
    np.testing.assert_allclose(res.thresholds, [2.0, 1.25, 0.5], rtol=1e-6)
    assert bool(res.finite) and res.params["lam_min"] == pytest.approx(0.5)


def _cartoon_texture(n):
    yy, xx = np.mgrid[0:n, 0:n] / n
    c = np.full((n, n), 0.3)
    c[(yy - 0.35) ** 2 + (xx - 0.3) ** 2 < 0.2 ** 2] = 0.8
    c[(yy > 0.55) & (yy < 0.9) & (xx > 0.5) & (xx < 0.85)] = 0.55
    Y, X = np.mgrid[0:n, 0:n]
    t = 0.08 * np.cos(2 * np.pi * 0.21 * (np.cos(0.3) * X + np.sin(0.3) * Y) + 1.0)
    t += 0.08 * np.cos(2 * np.pi * 0.13 * (np.cos(1.9) * X + np.sin(1.9) * Y) + 2.0)
    return c.astype(np.float32), t.astype(np.float32)


def test_mca_separates_a_known_cartoon_and_texture():
    c, t = _cartoon_texture(64)
    res = cartoon_texture(c + t, patch_size=16, stride=8, levels=3, num_iter=30)
    cart, tex = res.components
    assert float(psnr(c, cart)) > 40.0
    assert float(jnp.linalg.norm(tex - t) / np.linalg.norm(t)) < 0.15
    np.testing.assert_allclose(cart + tex, c + t, atol=0.05)
    # far from the input itself as a cartoon estimate
    assert float(psnr(c, cart)) > float(psnr(c, c + t)) + 15.0
    # MCA inpainting (the same compiled solver): 20% of the pixels missing, both parts fill them in
    mask = np.asarray(random_mask(jax.random.PRNGKey(0), c.shape, 0.2))
    frames = [UndecimatedHaar((64, 64), 3), LocalDCT((64, 64), 16, 8)]
    inp = mca((c + t) * mask, frames, num_iter=30, mask=mask)
    full = mca(c + t, frames, num_iter=30, mask=np.ones_like(mask))
    np.testing.assert_allclose(full.components, res.components, atol=1e-5)     # an all-ones mask changes nothing
    missing = jnp.asarray((c + t)[mask == 0])
    filled = jnp.asarray(np.asarray(inp.components.sum(0))[mask == 0])
    mean_fill = jnp.full_like(missing, float(np.mean((c + t)[mask > 0])))
    assert float(psnr(missing, filled)) > max(22.0, float(psnr(missing, mean_fill)) + 8.0)      # measured 25.4
    assert float(psnr(t, inp.components[1])) > 35.0                                             # measured 44.4


def test_bad_input_is_named():
    F = LocalDCT((16, 16), 8)
    with pytest.raises(ValueError, match="stride must divide"):
        LocalDCT((16, 16), 8, 3)
    with pytest.raises(ValueError, match="multiples of patch_size"):
        LocalDCT((15, 16), 8)
    with pytest.raises(ValueError, match="levels"):
        UndecimatedHaar((8, 8), 4)
    with pytest.raises(ValueError, match="frames\\[0\\] has signal shape"):
        mca(jnp.zeros((8, 8)), [F])
    with pytest.raises(TypeError, match="frames\\[0\\] must be a LinearOperator"):
        mca(jnp.zeros((16, 16)), [np.eye(16)])
    with pytest.raises(ValueError, match="lam_min must be <="):
        mca(jnp.zeros((16, 16)), [F], lam_max=1.0, lam_min=2.0)
    with pytest.raises(ValueError, match="schedule"):
        mca(jnp.zeros((16, 16)), [F], schedule="cubic")
    with pytest.raises(ValueError, match="image"):
        mca(jnp.full((16, 16), jnp.nan), [F])
