"""Image restoration with a convolutional dictionary: denoising and inpainting by convolutional sparse coding.

Both follow SPORCO's examples (Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP
2016; Wohlberg, "Boundary handling for convolutional sparse representations", ICIP 2016): a grey image s (H, W) is
split into a
smooth low-pass part l, which sparse codes represent badly, and the rest, which is coded by convolutional
BPDN (``cbpdn_admm``) with learned filters d_m (M, 1, h, w):

    x* = argmin_x 1/2 || W (sum_m d_m * x_m - (s - l)) ||^2 + lam sum_m ||x_m||_1,      restored = l + D x*.

Low-pass component
  * denoising: ``tikhonov_split`` (SPORCO ``signal.tikhonov_filter``): l solves (I + tau G^T G) l = s with
    G = [G_r; G_c] the forward differences, by FFT on the image padded symmetrically by ``npad`` pixels
    (then cropped), so l is a smoothed image and s - l its high-pass residual. On a noisy image l carries
    little noise (it is a low-pass filter with cut-off set by tau); the noise goes to s - l, where the
    l1 penalty rejects it.
  * inpainting (our choice, documented here): a *masked* Tikhonov step (``masked_tikhonov``),
        l = argmin 1/2 || W (l - s) ||^2 + tau/2 || G l ||^2,
    i.e. (W^2 + tau G^T G) l = W^2 s, solved by conjugate gradients preconditioned with the FFT inverse of
    (mean(W^2) I + tau G^T G) on the same symmetric padding. l interpolates the known pixels smoothly into
    the holes (a discrete harmonic-like fill, with smoothing of the known pixels); with W = 1 it is exactly
    ``tikhonov_split``'s low-pass part (the preconditioner is then the exact inverse).

Borders
  The Fourier-domain solver is periodic. To avoid wrap-around artefacts the high-pass image is zero-padded
  by ``npad`` pixels (default 16, at least the filter size) on every side, coded on the padded grid, and the
  reconstruction is cropped back: atoms near one edge can no longer explain structure at the opposite edge.
  The padding counts as known zero (weight 1) in both functions, so ``csc_inpaint`` with an all-ones mask
  solves exactly the problem ``csc_denoise`` solves (to the solvers' tolerance).

Inpainting weights W = mask (1 known, 0 missing; values in [0, 1] are weights). Missing pixels take the
value of l + D x* there; ``keep_known=True`` copies the known pixels back into the output.

All array work is JAX: ``tikhonov_split`` and ``masked_tikhonov`` are jitted (``npad`` static), the CSC part
is ``cbpdn_admm`` (jitted); the argument checks run in Python first. ``csc_denoise`` / ``csc_inpaint``
themselves are not meant to be wrapped in ``jax.jit`` (their ``info`` holds Python numbers).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.conv.operator import conv_synthesis
from sparsejax.pursuit.csc import cbpdn_admm
from sparsejax.solve import check_iteration

__all__ = ["psnr", "tikhonov_split", "masked_tikhonov", "csc_denoise", "csc_inpaint", "add_noise", "random_mask",
           "noise_sigma", "image_scale", "DENOISE_LAM_PER_SIGMA", "DENOISE_TIK_LAM", "INPAINT_LAM", "INPAINT_TIK_LAM"]

# Defaults, chosen by the sweep of ``benchmarks/imaging_defaults.py`` (bundled camera image, two 128 x 128 crops,
# G_8x8x32; numbers in the docstrings of csc_denoise / csc_inpaint). One value per function, used by the API and
# by the ``sparsejax denoise`` / ``inpaint`` commands alike.
DENOISE_LAM_PER_SIGMA = 2.5   # lam = this x noise_sigma(img) when csc_denoise gets lam=None
DENOISE_TIK_LAM = 5.0
INPAINT_LAM = 0.002
INPAINT_TIK_LAM = 1.0

# image value range: peak |value| <= _UNIT_PEAK is a [0, 1] image (noise included), <= _BYTE_PEAK a [0, 255] one
_UNIT_PEAK = 4.0
_BYTE_PEAK = 512.0


# ----------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------
def _image(name, img):
    img = V.as_float_array(name, img)
    if img.ndim != 2 or min(img.shape) < 2:
        raise ValueError(f"{name} must be a grey image of shape (H, W) with H, W >= 2, got shape {tuple(img.shape)}")
    V.check_finite(name, img)
    return img


def _mask(mask, img):
    if getattr(mask, "dtype", None) is not None and np.dtype(mask.dtype) == np.bool_:
        mask = jnp.asarray(mask, img.dtype)     # a boolean mask is accepted as 0/1 weights
    mask = V.as_float_array("mask", mask)
    if tuple(mask.shape) != tuple(img.shape):
        raise ValueError(f"mask must have the image's shape {tuple(img.shape)}, got {tuple(mask.shape)}")
    V.check_finite("mask", mask)
    if V.is_concrete(mask):
        m = np.asarray(mask)
        if m.min() < 0 or m.max() > 1:
            raise ValueError(f"mask values must lie in [0, 1] (1 = known pixel), got range [{m.min()}, {m.max()}]")
        if not np.any(m > 0):
            raise ValueError("mask has no known pixel (all zeros)")
    return mask.astype(img.dtype)


def _filters(filters):
    filters = V.as_float_array("filters", filters)
    if filters.ndim == 3:
        filters = filters[:, None]
    if filters.ndim != 4 or filters.shape[1] != 1:
        raise ValueError(f"filters must have shape (M, 1, h, w) (or (M, h, w)) for a grey image, got "
                         f"{tuple(filters.shape)}")
    V.check_finite("filters", filters)
    return filters


def image_scale(img, data_range=None) -> float:
    """The scale of an image's values: 1 for [0, 1] images, 255 for 8-bit [0, 255] ones.

    Rule (``data_range=None``): with peak = max |img|, peak <= 4 is a [0, 1] image (noisy ones included: a
    [0, 1] image with noise sigma 0.5 stays below 4), 4 < peak <= 512 a [0, 255] image (noisy 8-bit images
    included); a larger peak (16-bit or raw sensor values) is refused. ``data_range`` given (> 0) overrides
    the rule. ``csc_denoise`` / ``csc_inpaint`` divide the image by this scale, restore it in [0, 1] units
    (``lam`` is always in those units) and multiply the result back.

    Args:
      img: grey image (concrete values).
      data_range: None (the rule) or the image's value range (e.g. 1.0, 255.0).

    Returns:
      The scale (float).

    Example:
      >>> import numpy as np
      >>> from sparsejax import imaging
      >>> imaging.image_scale(np.full((4, 4), 0.7)), imaging.image_scale(np.full((4, 4), 200.0))
      (1.0, 255.0)
    """
    if data_range is not None:
        return float(V.check_nonnegative_scalar("data_range", data_range, strict=True))
    peak = float(np.max(np.abs(np.asarray(img))))
    if peak <= _UNIT_PEAK:
        return 1.0
    if peak <= _BYTE_PEAK:
        return 255.0
    raise ValueError(f"img values reach {peak:.4g}: expected a [0, 1] image (or an 8-bit [0, 255] one, "
                     f"rescaled automatically); divide the image by its peak value, or pass data_range")


@jax.jit
def _noise_sigma(img):
    H, W = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    a, b = img[0:H:2, 0:W:2], img[0:H:2, 1:W:2]
    c, d = img[1:H:2, 0:W:2], img[1:H:2, 1:W:2]
    hh = 0.5 * (a - b - c + d)
    return jnp.median(jnp.abs(hh)) / 0.6745


def noise_sigma(img) -> jax.Array:
    """Estimate the standard deviation of white Gaussian noise in an image (Donoho & Johnstone's MAD rule).

    sigma = median |HH| / 0.6745, HH the finest diagonal Haar wavelet coefficients (a - b - c + d) / 2 of the
    2 x 2 blocks (a b; c d): they hold little image content, and for N(0, sigma^2) noise they are
    N(0, sigma^2). Edges bias it upwards a little (0.054 for sigma 0.05 on the camera image).

    Args:
      img: grey image (H, W), H, W >= 2.

    Returns:
      The estimate (scalar, the image's dtype).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax import imaging
      >>> y = imaging.add_noise(jax.random.PRNGKey(0), jnp.full((128, 128), 0.5), 0.1)
      >>> round(float(imaging.noise_sigma(y)), 2)
      0.1
    """
    return _noise_sigma(_image("img", img))


# ----------------------------------------------------------------------------------------------------
# quality
# ----------------------------------------------------------------------------------------------------
def psnr(ref, img, data_range=1.0) -> jax.Array:
    """Peak signal-to-noise ratio 10 log10(data_range^2 / mean((ref - img)^2)) in dB (inf when equal).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax import imaging
      >>> round(float(imaging.psnr(jnp.zeros((4, 4)), jnp.full((4, 4), 0.1))), 4)
      20.0
    """
    ref = V.as_float_array("ref", ref)
    img = V.as_float_array("img", img)
    if tuple(ref.shape) != tuple(img.shape):
        raise ValueError(f"img must have the shape of ref {tuple(ref.shape)}, got {tuple(img.shape)}")
    V.check_nonnegative_scalar("data_range", data_range, strict=True)
    mse = jnp.mean((ref - img) ** 2)
    return 10.0 * jnp.log10(jnp.asarray(data_range, mse.dtype) ** 2 / mse)


def add_noise(key, img, sigma):
    """img + sigma * N(0, 1) (no clipping), the noise drawn from ``key``.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax import imaging
      >>> y = imaging.add_noise(jax.random.PRNGKey(0), jnp.zeros((200, 200)), 0.1)
      >>> round(float(jnp.std(y)), 2)
      0.1
    """
    img = jnp.asarray(img)
    return img + sigma * jax.random.normal(key, img.shape, img.dtype)


def random_mask(key, shape, frac_missing):
    """Float mask of ``shape``: 1 = known, 0 = missing, each pixel missing with probability ``frac_missing``.

    Example:
      >>> import jax
      >>> from sparsejax import imaging
      >>> m = imaging.random_mask(jax.random.PRNGKey(0), (100, 100), 0.3)
      >>> round(float(1.0 - m.mean()), 1), sorted(set(m.ravel().tolist()))
      (0.3, [0.0, 1.0])
    """
    return (jax.random.uniform(key, tuple(shape)) >= frac_missing).astype(jnp.result_type(float))


# ----------------------------------------------------------------------------------------------------
# low-pass components
# ----------------------------------------------------------------------------------------------------
def _gtg_symbol(shape, dtype):
    """Fourier symbol of G^T G (periodic forward differences) on an rfft2 grid of a (H, W) array."""
    H, W = shape
    wr = 2.0 - 2.0 * jnp.cos(2.0 * jnp.pi * jnp.arange(H, dtype=dtype) / H)
    wc = 2.0 - 2.0 * jnp.cos(2.0 * jnp.pi * jnp.arange(W // 2 + 1, dtype=dtype) / W)
    return wr[:, None] + wc[None, :]


def _gtg(x):
    """G^T G x (periodic): the 5-point negative Laplacian."""
    return (4.0 * x - jnp.roll(x, 1, 0) - jnp.roll(x, -1, 0) - jnp.roll(x, 1, 1) - jnp.roll(x, -1, 1))


@partial(jax.jit, static_argnames=("npad",))
def _tikhonov(img, lam, npad):
    sp = jnp.pad(img, npad, mode="symmetric")
    A = 1.0 + lam * _gtg_symbol(sp.shape, img.dtype)
    lp = jnp.fft.irfft2(jnp.fft.rfft2(sp) / A, s=sp.shape).astype(img.dtype)
    low = lp[npad:npad + img.shape[0], npad:npad + img.shape[1]]
    return low, img - low


def tikhonov_split(img, lam, npad: int = 16):
    """Low/high-pass split (SPORCO ``signal.tikhonov_filter``): (I + lam G^T G) low = img, high = img - low.

    Solved by FFT on the image padded symmetrically by ``npad`` pixels per side, then cropped.

    Args:
      img: grey image (H, W).
      lam: Tikhonov weight >= 0 (traced); larger is smoother. SPORCO's examples use 5 to 10.
      npad: symmetric padding (static), default 16.

    Returns:
      (low, high), each (H, W), low + high = img.

    Example: a constant image is all low-pass.
      >>> import jax.numpy as jnp
      >>> from sparsejax import imaging
      >>> low, high = imaging.tikhonov_split(jnp.full((16, 16), 0.5), 5.0, npad=4)
      >>> round(float(low.mean()), 4), round(float(jnp.abs(high).max()), 4)
      (0.5, 0.0)
    """
    img = _image("img", img)
    lam = V.check_nonnegative_scalar("lam", lam)
    return _tikhonov(img, lam.astype(img.dtype), npad=V.check_int("npad", npad))


@partial(jax.jit, static_argnames=("npad", "max_iter"))
def _masked_tik(img, w, lam, tol, npad, max_iter):
    sp = jnp.pad(img, npad, mode="symmetric")
    wp = jnp.pad(w, npad, mode="symmetric")
    w2 = wp * wp
    c = jnp.mean(w2)
    A = c + lam * _gtg_symbol(sp.shape, img.dtype)
    precond = lambda r: jnp.fft.irfft2(jnp.fft.rfft2(r) / A, s=sp.shape).astype(img.dtype)
    op = lambda x: w2 * x + lam * _gtg(x)
    b = w2 * sp
    lp, _ = jax.scipy.sparse.linalg.cg(op, b, x0=precond(b), tol=tol, maxiter=max_iter, M=precond)
    return lp[npad:npad + img.shape[0], npad:npad + img.shape[1]]


def masked_tikhonov(img, mask, lam, npad: int = 16, *, max_iter: int = 300, tol: float = 1e-6):
    """Masked Tikhonov smoothing: low = argmin 1/2||W (low - img)||^2 + lam/2 ||G low||^2, W = mask.

    Fills the unknown pixels (mask 0) smoothly from the known ones. Solved by preconditioned conjugate
    gradients on the symmetrically padded image (preconditioner: FFT inverse of mean(W^2) I + lam G^T G,
    exact when W = 1, so an all-ones mask gives ``tikhonov_split(img, lam, npad)[0]``).

    Args:
      img: grey image (H, W) (values at unknown pixels are ignored).
      mask: (H, W) weights in [0, 1], 1 = known; at least one pixel must be known.
      lam: smoothing weight > 0.
      npad: symmetric padding (static).
      max_iter, tol: CG iteration bound (static) and relative residual tolerance.

    Returns:
      low (H, W).

    Example: a smooth ramp with half of its pixels missing is filled close to the ramp.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax import imaging
      >>> ramp = jnp.add.outer(jnp.linspace(0.0, 1.0, 24), jnp.linspace(0.0, 0.5, 24)) / 1.5
      >>> m = imaging.random_mask(jax.random.PRNGKey(0), ramp.shape, 0.5)
      >>> bool(imaging.psnr(ramp, imaging.masked_tikhonov(m * ramp, m, 0.5, npad=8)) > 30.0)
      True
    """
    img = _image("img", img)
    mask = _mask(mask, img)
    lam = V.check_nonnegative_scalar("lam", lam, strict=True)
    max_iter = check_iteration(max_iter, tol, min_iter=1)
    return _masked_tik(img, mask, lam.astype(img.dtype), jnp.asarray(tol, img.dtype), npad=V.check_int("npad", npad),
                       max_iter=max_iter)


# ----------------------------------------------------------------------------------------------------
# CSC restoration
# ----------------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames=("npad",))
def _synth_crop(filters, codes, npad):
    rec = conv_synthesis(filters, codes, boundary="circular", method="fft")[0]
    H, W = rec.shape
    return rec[npad:H - npad, npad:W - npad]


def _csc_high(filters, high, lam, weight, npad, solver_kw):
    """Code the zero-padded high-pass image; weight (H, W) or None. Returns (D x cropped, Solution)."""
    hp = jnp.pad(high, npad)
    mask = None if weight is None else jnp.pad(weight, npad, constant_values=1.0)[None]
    sol = cbpdn_admm(filters.astype(high.dtype), hp[None], lam, mask=mask, **solver_kw)
    return _synth_crop(filters.astype(high.dtype), sol.codes, npad=npad), sol


def _info(low, high, dx, sol, lam, scale):
    codes = sol.codes
    return {"low": low, "high": high, "high_fit": dx, "codes": codes, "num_steps": int(sol.num_steps),
            "converged": bool(sol.converged), "objective": float(sol.objective), "error": float(sol.error),
            "nnz_fraction": float(jnp.mean(codes != 0)), "lam": float(lam), "scale": float(scale)}


def _check_common(filters, lam, npad, max_iter, tol, prox):
    filters = _filters(filters)
    lam = V.check_nonnegative_scalar("lam", lam)
    npad = filters.shape[-1] if npad is None else V.check_int("npad", npad)
    check_iteration(max_iter, tol, min_iter=1)
    shrink.get(prox, allowed=shrink.SIGN_PROXES)
    return filters, lam, npad


def _scaled(img, data_range):
    """(img / scale, scale): the image in [0, 1] units (``image_scale``; refused when out of range)."""
    if not V.is_concrete(img):
        raise TypeError("csc_denoise / csc_inpaint need a concrete image (they are not meant for jax.jit), got a "
                        "tracer")
    scale = image_scale(img, data_range)
    return (img if scale == 1.0 else img / jnp.asarray(scale, img.dtype)), scale


def csc_denoise(img, filters, lam=None, *, tik_lam=DENOISE_TIK_LAM, npad: int | None = 16, max_iter: int = 200,
                tol=1e-3, rho=None, prox: str = "soft", data_range=None):
    """Denoise a grey image by convolutional sparse coding of its high-pass part (module docstring).

    s = img / scale (``image_scale``: 1 for [0, 1] images, 255 for [0, 255] ones); low, high =
    tikhonov_split(s, tik_lam, npad); x = CBPDN(high zero-padded by npad, lam); clean = scale (low + crop(D x)).

    Default lam = DENOISE_LAM_PER_SIGMA (2.5) x ``noise_sigma(s)``, tik_lam = 5: the one default of the API and of
    ``sparsejax denoise``, chosen by ``benchmarks/imaging_defaults.py`` (camera image, two 128 x 128 crops,
    G_8x8x32, 200 iterations; k x sigma for k in 2, 2.5, 3 and tik_lam 2, 5; best mean over the noise levels).
    Mean PSNR in dB, noisy / Gaussian blur at its best sigma / this default / the former fixed lam = 0.1:

        sigma 0.05: 25.9 / 30.0 / 32.3 / 32.3
        sigma 0.1:  20.1 / 27.2 / 29.0 / 24.9
        sigma 0.2:  14.0 / 24.4 / 25.0 / 16.5

    Args:
      img: noisy grey image (H, W), finite, in [0, 1] or [0, 255] (``image_scale``).
      filters: (M, 1, h, w) (or (M, h, w)) dictionary, e.g. ``sparsejax.datasets.images.load_conv_dictionary()``.
      lam: l1 weight of CBPDN (>= 0) in units of a [0, 1] image; None: 2.5 x the estimated noise sigma.
      tik_lam: Tikhonov weight of the low-pass split.
      npad: padding in pixels (Tikhonov: symmetric; CSC: zeros). None = the filter width.
      max_iter, tol, rho: ``cbpdn_admm`` settings (iterations, relative residual tolerance, initial penalty).
      prox: "soft" (signed codes) or "nonneg_soft" (non-negative codes).
      data_range: the image's value range; None: the rule of ``image_scale``.

    Returns:
      (clean (H, W), info) with info = {"low", "high", "high_fit" (= crop(D x)), "codes" (padded grid),
      "num_steps", "converged", "objective", "error", "nnz_fraction", "lam" (used, [0, 1] units), "scale"};
      low, high, high_fit and codes are in [0, 1] units.

    Example: an image made of a few atoms, with noise, comes back cleaner.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax import imaging
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (4, 1, 5, 5)))
      >>> codes = jnp.zeros((4, 32, 32)).at[0, 8, 8].set(1.0).at[2, 20, 14].set(-1.0).at[3, 12, 24].set(1.0)
      >>> x = 0.5 + sj.conv_synthesis(f, codes)[0]
      >>> y = imaging.add_noise(jax.random.PRNGKey(1), x, 0.05)
      >>> clean, info = imaging.csc_denoise(y, f, 0.1, npad=8, max_iter=100)
      >>> clean.shape, bool(imaging.psnr(x, clean) > imaging.psnr(x, y))
      ((32, 32), True)
    """
    img = _image("img", img)
    if lam is not None:
        lam = V.check_nonnegative_scalar("lam", lam)
    filters, _, npad = _check_common(filters, 0.0, npad, max_iter, tol, prox)
    s, scale = _scaled(img, data_range)
    if lam is None:
        lam = DENOISE_LAM_PER_SIGMA * noise_sigma(s)
    low, high = tikhonov_split(s, tik_lam, npad)
    dx, sol = _csc_high(filters, high, lam, None, npad, dict(max_iter=int(max_iter), tol=tol, rho=rho, prox=prox))
    return scale * (low + dx), _info(low, high, dx, sol, lam, scale)


def csc_inpaint(img, mask, filters, lam=INPAINT_LAM, *, tik_lam=INPAINT_TIK_LAM, npad: int | None = 16,
                max_iter: int = 300, tol=1e-3, rho=None, prox: str = "soft", keep_known: bool = False,
                tik_iter: int = 300, data_range=None):
    """Inpaint (and denoise) a grey image with missing pixels by masked CSC (module docstring).

    s = img / scale (``image_scale``); low = masked_tikhonov(s, mask, tik_lam, npad); high = mask (s - low);
    x = masked CBPDN(high zero-padded, weight W = mask (1 on the padding), lam); out = scale (low + crop(D x)).

    Defaults lam = 0.002, tik_lam = 1: the one default of the API and of ``sparsejax inpaint``, chosen by
    ``benchmarks/imaging_defaults.py`` (camera image, two 128 x 128 crops, G_8x8x32, 300 iterations, noise-free;
    lam 0.002, 0.005, 0.02). Mean PSNR in dB, normalised Gaussian interpolation at its best sigma / this default /
    lam 0.005 (the former CLI default) / lam 0.02, tik_lam 5 (the former API default):

        30% missing: 32.8 / 35.9 / 35.8 / 33.7
        60% missing: 28.5 / 30.3 / 30.3 / 26.9

    Args:
      img: grey image (H, W) in [0, 1] or [0, 255]; values at missing pixels are ignored (they must be finite).
      mask: (H, W), 1 = known pixel, 0 = missing (weights in [0, 1] allowed); bool accepted.
      filters, tik_lam, npad, max_iter, tol, rho, prox, data_range: as ``csc_denoise``.
      lam: l1 weight (>= 0) in units of a [0, 1] image; raise it for noisy images (as ``csc_denoise``).
      keep_known: copy the observed values back at known pixels (mask == 1) in the output.
      tik_iter: CG iterations of the masked Tikhonov step.

    Returns:
      (out (H, W), info) as ``csc_denoise``. With mask = 1 everywhere this is ``csc_denoise`` (same problem).

    Example: a third of the pixels of an image made of a few atoms are missing.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax import imaging
      >>> f = sj.normalize_filters(jax.random.normal(jax.random.PRNGKey(0), (4, 1, 5, 5)))
      >>> codes = jnp.zeros((4, 32, 32)).at[0, 8, 8].set(1.0).at[2, 20, 14].set(-1.0).at[3, 12, 24].set(1.0)
      >>> x = 0.5 + sj.conv_synthesis(f, codes)[0]
      >>> m = imaging.random_mask(jax.random.PRNGKey(1), x.shape, 0.3)
      >>> out, info = imaging.csc_inpaint(m * x, m, f, 0.01, tik_lam=1.0, npad=8, max_iter=100, keep_known=True)
      >>> bool(imaging.psnr(x, out) > imaging.psnr(x, m * x)), bool(jnp.all(jnp.where(m > 0, out == x, True)))
      (True, True)
    """
    img = _image("img", img)
    mask = _mask(mask, img)
    filters, lam, npad = _check_common(filters, lam, npad, max_iter, tol, prox)
    s, scale = _scaled(img, data_range)
    low = masked_tikhonov(s, mask, tik_lam, npad, max_iter=tik_iter)
    high = mask * (s - low)
    dx, sol = _csc_high(filters, high, lam, mask, npad, dict(max_iter=int(max_iter), tol=tol, rho=rho, prox=prox))
    out = scale * (low + dx)
    if keep_known:
        out = jnp.where(mask >= 1, img, out)
    return out, _info(low, high, dx, sol, lam, scale)
