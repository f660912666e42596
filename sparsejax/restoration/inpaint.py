"""Patch-based inpainting: sparse-code each patch on its known pixels only, then average the patches.

For a patch y_i with known-pixel mask m_i (1 known, 0 missing) and a patch dictionary D (n x m), the codes are found
by OMP on the rows of D that are known, each atom renormalised there:

    d_j^(i) = (m_i * d_j) / ||m_i * d_j||,   b_i = OMP(D^(i), m_i * y_i),   a_i[j] = b_i[j] / ||m_i * d_j||,

(stop at k atoms or when the residual on the known pixels has RMS <= ``tol``); the whole patch is then D a_i, and
the image is the average of the overlapping patch estimates (``sparsejax.patches.average_patches``), with the known
pixels kept by default. This is the masked-OMP inpainting of Elad, Starck, Querre & Donoho ("Simultaneous cartoon
and texture image inpainting using morphological component analysis (MCA)", ACHA 19, 2005, the local sparse-coding
form) and of Mairal, Elad & Sapiro ("Sparse representation for color image restoration", IEEE TIP 17(1), 2008,
section V, with a fixed dictionary).
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax.patches import average_patches, extract_patches, patch_count
from sparsejax.pursuit import omp_solver
from sparsejax.restoration.dct import overcomplete_dct
from sparsejax.solve import iterate

__all__ = ["InpaintResult", "MaskedCodes", "inpaint_patches", "masked_omp"]

_BLOCK = 256        # patches per lax.map block: (block, n, m) masked dictionaries stay ~16 MB for 64 x 256


class MaskedCodes(NamedTuple):
    """Per-patch output of ``masked_omp``.

    Attributes:
      codes: (P, m), in the scale of the original atoms (the patch estimate is ``codes @ D.T``).
      num_atoms: (P,) atoms chosen.
      residual_rms: (P,) RMS of the residual on the known pixels (0 for a patch without known pixels).
      converged: (P,) OMP met its target (``tol``, else k atoms or an exact fit).
    """

    codes: jax.Array
    num_atoms: jax.Array
    residual_rms: jax.Array
    converged: jax.Array


def _masked_one(atoms, y, m, tol_rms, k, use_tol):
    n_known = jnp.sum(m)
    A = atoms * m[:, None]
    norms = jnp.sqrt(jnp.sum(A * A, axis=0))
    tiny = jnp.finfo(atoms.dtype).tiny ** 0.5
    ok = norms > tiny * 1e3
    An = jnp.where(ok[None, :], A / jnp.where(ok, norms, 1.0)[None, :], 0.0)
    tol = tol_rms * jnp.sqrt(n_known) if use_tol else None       # None: k atoms or an exact fit is the target
    sol = iterate(omp_solver(An, y * m, k, tol), max_iter=k, tol=0.0, mode="while")
    codes = jnp.where(ok, sol.codes / jnp.where(ok, norms, 1.0), 0.0)
    r = (y - atoms @ codes) * m
    rms = jnp.sqrt(jnp.sum(r * r) / jnp.maximum(n_known, 1.0))
    return codes, sol.state.j, rms, sol.converged


@partial(jax.jit, static_argnames=("k", "block", "use_tol"))
def _masked_omp(atoms, Y, M, tol_rms, *, k, block, use_tol):
    return lax.map(lambda ym: _masked_one(atoms, ym[0], ym[1], tol_rms, k, use_tol), (Y, M), batch_size=block)


def masked_omp(D, patches, masks, *, k: int, tol=0.0) -> MaskedCodes:
    """OMP of every patch on its known pixels, with the atoms restricted to those pixels and renormalised there
    (module docstring); codes returned in the scale of the original atoms.

    Args:
      D: (n, m) patch dictionary.
      patches: (P, n) patches (values at missing pixels are ignored).
      masks: (P, n) known-pixel masks, 1 known / 0 missing.
      k: maximum atoms per patch (static, <= min(n, m)); a patch never takes more atoms than it has known pixels.
      tol: stop once the RMS residual on the known pixels is <= tol (>= 0; 0: k atoms or an exact fit).

    Returns:
      ``MaskedCodes`` (codes, num_atoms, residual_rms, converged).

    ``tests/restoration/test_inpaint_patches.py`` checks it against scikit-learn's OMP on the renormalised rows.
    """
    D = V.check_dictionary("D", D, "a patch dictionary, n pixels x m atoms")
    n, m = D.shape
    patches = V.as_float_array("patches", patches)
    V.check_shape("patches", patches, (None, n), f"P patches of n = {n} pixels (the rows of D)")
    V.check_finite("patches", patches)
    masks = V.as_float_array("masks", masks)
    V.check_shape("masks", masks, tuple(patches.shape), "one 0/1 known-pixel mask per patch")
    k = V.check_positive_int("k", k, min(n, m), "min(n, m) of D")
    tol = V.check_nonnegative_scalar("tol", tol)
    dtype = jnp.result_type(D.dtype, patches.dtype)
    P = patches.shape[0]
    if P == 0:
        raise ValueError("patches must hold at least one patch")
    block = min(_BLOCK, P)
    codes, nat, rms, conv = _masked_omp(D.astype(dtype), patches.astype(dtype), (masks > 0).astype(dtype),
                                        jnp.asarray(tol, dtype), k=k, block=block,
                                        use_tol=not (V.is_concrete(tol) and float(tol) == 0.0))
    return MaskedCodes(codes=codes, num_atoms=nat, residual_rms=rms, converged=conv)


class InpaintResult(NamedTuple):
    """The output of ``inpaint_patches``.

    Attributes:
      image: the inpainted image (H, W).
      codes: ``MaskedCodes`` of every patch (in the order of ``sparsejax.patches.extract_patches``).
      params: the settings used (patch_size, stride, k, tol, dictionary, keep_known, known fraction, patches).
      finite: True when the image is finite (False reports a numerical failure instead of returning NaN silently).
    """

    image: jax.Array
    codes: MaskedCodes
    params: dict
    finite: jax.Array


def inpaint_patches(image, mask, *, patch_size: int = 8, dictionary=None, stride: int = 1, k: int | None = None,
                    tol=0.0, keep_known: bool = True) -> InpaintResult:
    """Fill the missing pixels of a grey image from the sparse codes of its patches on their known pixels
    (masked OMP, then averaging of the overlapping patches; module docstring).

    Args:
      image: (H, W) image (values at missing pixels are ignored).
      mask: (H, W) known-pixel mask, 1 (or True) known, 0 missing.
      patch_size: p (square patches).
      dictionary: (p*p, m) patch dictionary; default the overcomplete DCT (``sparsejax.restoration.overcomplete_dct``,
        m = 4 p^2 rounded to a square: 256 atoms for 8 x 8).
      stride: the patch grid step (1: every patch; the last row/column of patches snapped to the border).
      k: most atoms per patch (default p*p // 8: 8 atoms for 8 x 8 patches).
      tol: OMP stops once the residual RMS on a patch's known pixels is <= tol (0: k atoms or an exact fit; for a
        noisy image use about the noise level).
      keep_known: return the known pixels unchanged (else every pixel is the patch average).

    Returns:
      ``InpaintResult`` (image, per-patch codes, params, finite). Pixels covered only by patches without a known pixel are
      filled with the mean of the known pixels.

    Example: a blocky image, each 4 x 4 patch one (DC) atom, comes back from half of its pixels.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.restoration.inpaint import inpaint_patches
      >>> x = jnp.kron(jnp.array([[0.2, 0.8], [0.6, 0.4]]), jnp.ones((4, 4)))
      >>> mask = jax.random.bernoulli(jax.random.PRNGKey(0), 0.5, x.shape)
      >>> res = inpaint_patches(x * mask, mask, patch_size=4, stride=4, k=2)
      >>> bool(jnp.abs(res.image - x).max() < 1e-5), res.params["patches"]
      (True, 4)
    """
    y = V.as_float_array("image", image)
    V.check_ndim("image", y, (2,), "a grey image (H, W)")
    mask = jnp.asarray(mask)
    if tuple(mask.shape) != tuple(y.shape):
        raise ValueError(f"mask must have the image's shape {tuple(y.shape)}, got {tuple(mask.shape)}")
    mask = (V.as_float_array("mask", mask.astype(y.dtype)) > 0).astype(y.dtype)
    p = V.check_positive_int("patch_size", patch_size)
    s = V.check_positive_int("stride", stride)
    if min(y.shape) < p:
        raise ValueError(f"patch_size must be <= the image's sides {tuple(y.shape)}, got {p}")
    if dictionary is None:
        L = math.ceil(math.sqrt(4 * p * p))
        D = overcomplete_dct(p, L * L, dtype=y.dtype)
        desc = f"overcomplete DCT {p * p}x{L * L}"
    else:
        D = V.check_dictionary("dictionary", dictionary, "a patch dictionary, p*p rows x m atoms")
        if D.shape[0] != p * p:
            raise ValueError(f"dictionary must have patch_size^2 = {p * p} rows, got shape {tuple(D.shape)}")
        desc = f"given {D.shape[0]}x{D.shape[1]}"
    n, m = D.shape
    if k is None:
        k = max(1, min(n // 8, m))
    k = V.check_positive_int("k", k, min(n, m), "min(p*p, atoms)")
    known = jnp.sum(mask)
    if V.is_concrete(known) and float(known) == 0:
        raise ValueError("mask must mark at least one known pixel (1 = known, 0 = missing)")
    y0 = jnp.where(mask > 0, y, 0.0)
    V.check_finite("image (known pixels)", y0)
    Y = extract_patches(y0, p, s)
    M = extract_patches(mask, p, s)
    mc = masked_omp(D, Y, M, k=k, tol=tol)
    est = mc.codes @ D.T.astype(mc.codes.dtype)
    has_known = (jnp.sum(M, axis=1) > 0).astype(est.dtype)
    num = average_patches(est * has_known[:, None], y.shape, p, s, weights=jnp.maximum(has_known, 1e-12))
    fill = jnp.sum(y0) / known
    cover = average_patches(jnp.broadcast_to(has_known[:, None], est.shape), y.shape, p, s)
    out = jnp.where(cover > 0, num, fill)
    if keep_known:
        out = jnp.where(mask > 0, y, out)
    params = {"patch_size": p, "stride": s, "k": k, "tol": float(tol), "dictionary": desc,
              "keep_known": bool(keep_known), "known_fraction": float(known / y.size),
              "patches": patch_count(y.shape, p, s)}
    return InpaintResult(image=out, codes=mc, params=params, finite=jnp.all(jnp.isfinite(out)))
