"""Image applications: PSNR, Tikhonov split, CSC denoising / inpainting, data loaders, denoise/inpaint CLI."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from sparsejax import conv_synthesis

from sparsejax.cli import commands as cli

from sparsejax.datasets import images as data
from sparsejax import imaging as im


@pytest.fixture(scope="module")
def filters():
    return data.load_conv_dictionary("G_8x8x32")


@pytest.fixture(scope="module")
def synthetic(filters):
    """A 48x48 image that obeys the model: 0.5 + 0.3 D x with 25 non-zero codes (circular synthesis)."""
    rng = np.random.default_rng(0)
    X = np.zeros((filters.shape[0], 48, 48), np.float32)
    idx = rng.choice(X.size, 25, replace=False)
    X.flat[idx] = rng.choice([-1.0, 1.0], 25) * rng.uniform(0.5, 1.0, 25)
    return jnp.asarray(0.5 + 0.3 * np.asarray(conv_synthesis(filters, jnp.asarray(X)))[0])


# ----------------------------------------------------------------------------------------------------
# PSNR and the low-pass split
# ----------------------------------------------------------------------------------------------------
def test_psnr_values():
    ref = jnp.zeros((8, 8))
    assert float(im.psnr(ref, ref + 0.1)) == pytest.approx(20.0, abs=1e-4)
    assert float(im.psnr(ref, ref + 0.1, data_range=2.0)) == pytest.approx(20.0 + 20 * np.log10(2), abs=1e-4)
    a = jnp.asarray(np.random.default_rng(1).uniform(size=(5, 7)), jnp.float32)
    b = a + 0.05 * jnp.asarray(np.random.default_rng(2).standard_normal((5, 7)), jnp.float32)
    mse = float(jnp.mean((a - b) ** 2))
    assert float(im.psnr(a, b)) == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)
    assert np.isinf(float(im.psnr(a, a)))
    with pytest.raises(ValueError, match="img"):
        im.psnr(a, a[:4])


def _tv(x):
    return float(jnp.sum(jnp.abs(jnp.diff(x, axis=0))) + jnp.sum(jnp.abs(jnp.diff(x, axis=1))))


def test_tikhonov_split_sums_and_smooths():
    x = jnp.asarray(np.random.default_rng(3).uniform(size=(40, 36)), jnp.float32)
    low, high = im.tikhonov_split(x, 5.0, 8)
    np.testing.assert_allclose(np.asarray(low + high), np.asarray(x), atol=1e-6)
    assert _tv(low) < 0.3 * _tv(x)
    # lam = 0 is the identity, a constant image is its own low-pass part (symmetric padding: no edge effect)
    np.testing.assert_allclose(np.asarray(im.tikhonov_split(x, 0.0, 8)[0]), np.asarray(x), atol=1e-5)
    c = jnp.full((20, 24), 0.3)
    np.testing.assert_allclose(np.asarray(im.tikhonov_split(c, 10.0)[0]), 0.3, atol=1e-5)


def test_masked_tikhonov_all_ones_is_tikhonov_and_fills_holes():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.uniform(size=(32, 32)), jnp.float32)
    low, _ = im.tikhonov_split(x, 3.0, 16)
    low1 = im.masked_tikhonov(x, jnp.ones_like(x), 3.0, 16)
    np.testing.assert_allclose(np.asarray(low1), np.asarray(low), atol=1e-4)
    # a smooth ramp with half of the pixels missing is filled close to the ramp
    r = jnp.asarray(np.add.outer(np.linspace(0, 1, 32), np.linspace(0, 0.5, 32)) / 1.5, jnp.float32)
    m = im.random_mask(jax.random.PRNGKey(0), r.shape, 0.5)
    fill = im.masked_tikhonov(m * r, m, 0.5)
    assert float(im.psnr(r, fill)) > 35.0


# ----------------------------------------------------------------------------------------------------
# CSC restoration on an image that obeys the model
# ----------------------------------------------------------------------------------------------------
def test_denoise_synthetic_improves_psnr(synthetic, filters):
    y = im.add_noise(jax.random.PRNGKey(0), synthetic, 0.1)
    out, info = im.csc_denoise(y, filters, 0.2, max_iter=100)
    assert out.shape == synthetic.shape
    p_noisy, p_out = float(im.psnr(synthetic, y)), float(im.psnr(synthetic, out))
    assert p_out > p_noisy + 6.0, (p_noisy, p_out)        # measured ~ +10 dB
    assert info["nnz_fraction"] < 0.05
    np.testing.assert_allclose(np.asarray(info["low"] + info["high"]), np.asarray(y), atol=1e-5)
    np.testing.assert_allclose(np.asarray(info["low"] + info["high_fit"]), np.asarray(out), atol=1e-6)


def test_inpaint_all_ones_mask_equals_denoise(synthetic, filters):
    y = im.add_noise(jax.random.PRNGKey(1), synthetic, 0.1)
    kw = dict(tik_lam=5.0, max_iter=500, tol=1e-4)
    a, _ = im.csc_denoise(y, filters, 0.2, **kw)
    b, _ = im.csc_inpaint(y, jnp.ones_like(y), filters, 0.2, **kw)
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=2e-3)   # same problem, two ADMM variants


def test_inpaint_synthetic_beats_mean_fill(synthetic, filters):
    m = im.random_mask(jax.random.PRNGKey(2), synthetic.shape, 0.5)
    mean_fill = jnp.where(m > 0, synthetic, jnp.sum(m * synthetic) / jnp.sum(m))
    out, info = im.csc_inpaint(m * synthetic, m, filters, 0.005, tik_lam=1.0, max_iter=150)
    assert float(im.psnr(synthetic, out)) > float(im.psnr(synthetic, mean_fill)) + 3.0   # measured ~ +5 dB
    kept, _ = im.csc_inpaint(m * synthetic, m, filters, 0.005, tik_lam=1.0, max_iter=150, keep_known=True)
    np.testing.assert_array_equal(np.asarray(kept)[np.asarray(m) > 0], np.asarray(synthetic)[np.asarray(m) > 0])


def test_nonnegative_codes_by_prox(synthetic, filters):
    y = im.add_noise(jax.random.PRNGKey(3), synthetic, 0.1)
    out, info = im.csc_denoise(y, filters, 0.2, max_iter=50, prox="nonneg_soft")
    assert float(jnp.min(info["codes"])) >= 0.0 and out.shape == synthetic.shape
    signed = im.csc_denoise(y, filters, 0.2, max_iter=50)[1]["codes"]
    assert float(jnp.min(signed)) < 0.0
    with pytest.raises(ValueError, match="prox must be one of"):
        im.csc_inpaint(y, jnp.ones_like(y), filters, 0.2, prox="hard")


def test_bad_inputs_raise(filters):
    x = jnp.full((24, 24), 0.5)
    with pytest.raises(ValueError, match="mask"):
        im.csc_inpaint(x, jnp.ones((24, 20)), filters, 0.01)
    with pytest.raises(ValueError, match="mask"):
        im.csc_inpaint(x, 2.0 * jnp.ones((24, 24)), filters, 0.01)
    with pytest.raises(ValueError, match="mask"):
        im.csc_inpaint(x, jnp.zeros((24, 24)), filters, 0.01)
    with pytest.raises(ValueError, match="img"):
        im.csc_denoise(x.at[3, 4].set(jnp.nan), filters, 0.1)
    with pytest.raises(ValueError, match="img"):
        im.csc_inpaint(x.at[0, 0].set(jnp.inf), jnp.ones((24, 24)), filters, 0.1)
    with pytest.raises(ValueError, match="img"):
        im.tikhonov_split(jnp.ones((2, 3, 4)), 1.0)
    with pytest.raises(ValueError, match="filters"):
        im.csc_denoise(x, jnp.ones((4, 3, 5, 5)), 0.1)
    with pytest.raises(ValueError, match="lam"):
        im.csc_denoise(x, filters, -1.0)
    with pytest.raises(ValueError, match="npad"):
        im.csc_denoise(x, filters, 0.1, npad=-1)


# ----------------------------------------------------------------------------------------------------
# defaults that work on ordinary data (one default per function, shared with the CLI; any image range)
# ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def camera_crop():
    """A 48 x 48 textured crop of the bundled camera image and a noisy copy (sigma 0.1)."""
    x = data.load_image("camera")[100:148, 300:348]
    return x, np.asarray(im.add_noise(jax.random.PRNGKey(3), x, 0.1))


def test_api_and_cli_share_one_default_per_function():
    den, inp = inspect.signature(im.csc_denoise).parameters, inspect.signature(im.csc_inpaint).parameters
    parser = cli.build_parser()
    d = parser.parse_args(["denoise", "in.png", "out.png"])
    i = parser.parse_args(["inpaint", "in.png", "m.png", "out.png"])
    assert (d.lam, d.tik_lam) == (den["lam"].default, den["tik_lam"].default) == (None, im.DENOISE_TIK_LAM)
    assert (i.lam, i.tik_lam) == (inp["lam"].default, inp["tik_lam"].default) == (im.INPAINT_LAM, im.INPAINT_TIK_LAM)


def test_noise_sigma_estimate():
    for sigma in (0.02, 0.1, 0.3):
        y = im.add_noise(jax.random.PRNGKey(0), jnp.full((96, 96), 0.5), sigma)
        assert float(im.noise_sigma(y)) == pytest.approx(sigma, rel=0.08)
    assert float(im.noise_sigma(jnp.full((9, 9), 0.3))) == 0.0


def test_default_denoise_beats_gaussian_blur_and_the_old_default(camera_crop, filters):
    x, y = camera_crop
    blur = max(float(im.psnr(x, gaussian_filter(y, s, mode="reflect"))) for s in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0))
    out, info = im.csc_denoise(y, filters)
    assert info["lam"] == pytest.approx(im.DENOISE_LAM_PER_SIGMA * 0.1, rel=0.1)
    assert float(im.psnr(x, out)) > blur + 1.0                                   # measured 30.5 vs 28.3 dB
    old, _ = im.csc_denoise(y, filters, 0.1)                                    # the former default: 24.9 dB
    assert float(im.psnr(x, out)) > float(im.psnr(x, old)) + 3.0


def test_images_in_0_255_are_rescaled_and_larger_ranges_refused(camera_crop, filters):
    x, y = camera_crop
    out, _ = im.csc_denoise(y, filters)
    for lam in (None, 0.25):                      # lam is in [0, 1] units whatever the image's range
        out255, info255 = im.csc_denoise(255.0 * y, filters, lam)
        assert info255["scale"] == 255.0
        ref = out if lam is None else im.csc_denoise(y, filters, lam)[0]
        np.testing.assert_allclose(np.asarray(out255) / 255.0, np.asarray(ref), atol=2e-4)
        assert float(im.psnr(255.0 * x, out255, data_range=255.0)) > float(im.psnr(x, y)) + 8.0
    m = np.asarray(im.random_mask(jax.random.PRNGKey(1), x.shape, 0.3), np.float32)
    a, _ = im.csc_inpaint(m * x, m, filters, max_iter=50)
    b, ib = im.csc_inpaint(255.0 * m * x, m, filters, max_iter=50)
    assert ib["scale"] == 255.0
    np.testing.assert_allclose(np.asarray(b) / 255.0, np.asarray(a), atol=2e-4)
    with pytest.raises(ValueError, match="img values reach 6.*e\\+04.*data_range"):
        im.csc_denoise(65535.0 * x, filters)
    assert im.image_scale(y) == 1.0 and im.image_scale(65535.0 * x, data_range=65535.0) == 65535.0


# ----------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------
def test_load_image_and_dictionaries(tmp_path):
    cam = data.load_image("camera")
    assert cam.shape == (512, 512) and cam.dtype == np.float32
    assert 0.0 <= cam.min() < 0.1 and 0.9 < cam.max() <= 1.0
    assert "camera" in data.image_names()
    D = data.load_conv_dictionary()
    assert D.shape == (32, 1, 8, 8) and D.dtype == np.float32
    norms = np.linalg.norm(D.reshape(32, -1), axis=1)     # as published: unit norm but for the last filter
    assert np.all(norms < 1.002) and np.median(norms) > 0.99
    assert data.load_conv_dictionary("G_12x12x36").shape == (36, 1, 12, 12)
    assert set(data.dictionary_names()) >= {"G_8x8x32", "G_12x12x36"}
    with pytest.raises(ValueError, match="G_8x8x32"):
        data.load_conv_dictionary("nope")
    # a file: what 'sparsejax learn --kind conv' writes (filters (M, 1, h, w)), or a .npy of filters
    np.savez(tmp_path / "learned.npz", filters=D[:5], loss=np.zeros(3), kind="conv")
    np.testing.assert_array_equal(data.load_conv_dictionary(str(tmp_path / "learned.npz")), D[:5])
    np.save(tmp_path / "f.npy", D[:3, 0])
    assert data.load_conv_dictionary(tmp_path / "f.npy").shape == (3, 1, 8, 8)
    np.savez(tmp_path / "dense.npz", dictionary=np.zeros((64, 16)))
    with pytest.raises(ValueError, match="dense"):
        data.load_conv_dictionary(tmp_path / "dense.npz")
    np.savez(tmp_path / "bad.npz", filters=np.zeros((4, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"\(M, 1, h, w\)"):
        data.load_conv_dictionary(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        data.load_conv_dictionary(str(tmp_path / "absent.npz"))
    missing = tmp_path / "none.png"
    with pytest.raises(FileNotFoundError, match="none.png"):
        data.load_image(missing)
    with pytest.raises(FileNotFoundError, match="no_such_image"):
        data.load_image("no_such_image")
    # round trip through an 8-bit PNG, loading by path
    p = data.save_image(tmp_path / "sub" / "c.png", cam[:40, :50])
    back = data.load_image(p)
    assert back.shape == (40, 50)
    np.testing.assert_allclose(back, cam[:40, :50], atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="array"):
        data.save_image(tmp_path / "bad.png", np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="array"):
        data.save_image(tmp_path / "bad.png", np.zeros((2, 4, 4)))


# ----------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------
def test_cli_denoise_and_inpaint_write_pngs(tmp_path, capsys):
    cam = data.load_image("camera")[200:248, 200:248]
    noisy = np.clip(cam + 0.1 * np.random.default_rng(0).standard_normal(cam.shape), 0, 1)
    src = data.save_image(tmp_path / "noisy.png", noisy)
    out = tmp_path / "den.png"
    np.savez(tmp_path / "filters.npz", filters=data.load_conv_dictionary())    # as 'sparsejax learn' writes them
    assert cli.main(["denoise", str(src), str(out), "--sigma-lam", "0.2", "--iters", "30",
                     "--dict", str(tmp_path / "filters.npz")]) == 0
    den = data.load_image(out)
    assert den.shape == cam.shape
    assert float(im.psnr(cam, den)) > float(im.psnr(cam, noisy)) + 2.0
    assert "iterations" in capsys.readouterr().err

    mask = (np.random.default_rng(1).uniform(size=cam.shape) > 0.5).astype(np.float32)
    mpath = data.save_image(tmp_path / "mask.png", mask)
    cpath = data.save_image(tmp_path / "corrupt.png", cam * mask)
    out2 = tmp_path / "inp.png"
    assert cli.main(["inpaint", str(cpath), str(mpath), str(out2), "--iters", "30", "--keep-known"]) == 0
    inp = data.load_image(out2)
    assert inp.shape == cam.shape
    assert float(im.psnr(cam, inp)) > float(im.psnr(cam, cam * mask)) + 5.0

    # bad inputs: exit status 2 with a message naming the problem
    small = data.save_image(tmp_path / "small.png", mask[:20, :20])
    assert cli.main(["inpaint", str(cpath), str(small), str(tmp_path / "x.png")]) == 2
    assert "mask" in capsys.readouterr().err
    assert cli.main(["denoise", str(tmp_path / "absent.png"), str(tmp_path / "y.png")]) == 2
    assert "absent.png" in capsys.readouterr().err
    assert cli.main(["denoise", str(src), str(tmp_path / "y.png"), "--dict", "nope"]) == 2
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
