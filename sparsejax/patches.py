"""Overlapping image patches: extraction E, its adjoint E^T (put back by summing) and the weighted average.

For an image x of shape (H, W) (or (C, H, W)), ``extract_patches`` returns E x, the matrix whose rows are the
ph x pw patches (each flattened, all channels together: C*ph*pw entries) at the top-left corners

    r in {0, s, 2s, ...} u {H - ph},   c in {0, s, 2s, ...} u {W - pw}

in row-major order of the corners (rows of corners first). The last row and column of corners are snapped to the
border so that every pixel lies in some patch even when (H - ph) is not a multiple of the stride s.

``put_patches`` is the exact adjoint E^T (each patch added back into place, overlaps summed), and
``average_patches`` the weighted overlap-add

    x = (sum_j w_j R_j^T p_j) / (sum_j w_j R_j^T 1),

which returns x when p = E x (every pixel is covered, so the denominator is positive). It is the image update of
patch-based restoration (Elad & Aharon, "Image denoising via sparse and redundant representations over learned
dictionaries", IEEE TIP 2006, eq. (10)) without the noisy-image term.

Geometry (corners, counts) is static: it comes from the shapes, so every function is jittable with
``image_shape``, ``patch_size`` and ``stride`` static.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax._validate import as_float_array, check_positive_int

__all__ = ["average_patches", "extract_patches", "patch_corners", "patch_count", "put_patches"]

Size = int | Sequence[int]


def _pair(name: str, v: Size) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v, v)
    try:
        a, b = v
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or a pair of ints (rows, columns), got {v!r}") from None
    return check_positive_int(f"{name}[0]", a), check_positive_int(f"{name}[1]", b)


def _axis_corners(n: int, p: int, s: int) -> np.ndarray:
    c = np.arange(0, n - p + 1, s)
    if c[-1] != n - p:                       # snap a last corner to the border: every pixel covered
        c = np.append(c, n - p)
    return c


def _geometry(image_shape, patch_size, stride):
    """(C or None, H, W, ph, pw, row corners, column corners), all static, with the checks."""
    shape = tuple(int(d) for d in image_shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"image_shape must be (H, W) or (C, H, W), got {shape}")
    ph, pw = _pair("patch_size", patch_size)
    sh, sw = _pair("stride", stride)
    H, W = shape[-2:]
    if ph > H or pw > W:
        raise ValueError(f"patch_size ({ph}, {pw}) must fit in the image (H, W) = ({H}, {W})")
    C = shape[0] if len(shape) == 3 else None
    return C, H, W, ph, pw, _axis_corners(H, ph, sh), _axis_corners(W, pw, sw)


def patch_corners(image_shape, patch_size: Size, stride: Size = 1) -> tuple[np.ndarray, np.ndarray]:
    """The top-left corners (rows, columns) of the patches, as two int arrays of length P (row-major order).

    Example:
      >>> from sparsejax.patches import patch_corners
      >>> r, c = patch_corners((5, 5), 3, stride=2)
      >>> list(zip(r.tolist(), c.tolist()))
      [(0, 0), (0, 2), (2, 0), (2, 2)]
    """
    _, _, _, _, _, rc, cc = _geometry(image_shape, patch_size, stride)
    r, c = np.meshgrid(rc, cc, indexing="ij")
    return r.ravel(), c.ravel()


def patch_count(image_shape, patch_size: Size, stride: Size = 1) -> int:
    """The number P of patches ``extract_patches`` returns (a Python int).

    P = n_r * n_c with n_r = ceil((H - ph) / s) + 1 (and likewise for columns).

    Example:
      >>> from sparsejax.patches import patch_count
      >>> patch_count((512, 512), 8), patch_count((10, 10), 4, stride=3)
      (255025, 9)
    """
    _, _, _, _, _, rc, cc = _geometry(image_shape, patch_size, stride)
    return int(rc.size * cc.size)


def _index(image_shape, patch_size, stride):
    C, _, _, ph, pw, rc, cc = _geometry(image_shape, patch_size, stride)
    rows = (rc[:, None] + np.arange(ph)[None, :])          # (nr, ph)
    cols = (cc[:, None] + np.arange(pw)[None, :])          # (nc, pw)
    return C, rows, cols


def extract_patches(image: jax.Array, patch_size: Size, stride: Size = 1) -> jax.Array:
    """E x: the overlapping patches of ``image`` as rows, shape (P, ph*pw) (or (P, C*ph*pw) for (C, H, W) input).

    A gather with static indices: jittable, differentiable, its transpose is ``put_patches``.

    Args:
      image: (H, W) or (C, H, W) floating array.
      patch_size: ph (square) or (ph, pw).
      stride: s or (s_r, s_c); the last corner of each axis is snapped to the border.

    Returns:
      (P, ph*pw) (or (P, C*ph*pw), channel-major within a patch) with P = ``patch_count``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.patches import extract_patches
      >>> x = jnp.arange(16.0).reshape(4, 4)
      >>> extract_patches(x, 2, stride=2)[1].tolist()
      [2.0, 3.0, 6.0, 7.0]
    """
    image = as_float_array("image", image)
    C, rows, cols = _index(image.shape, patch_size, stride)
    nr, ph = rows.shape
    nc, pw = cols.shape
    r = jnp.asarray(rows[:, None, :, None])
    c = jnp.asarray(cols[None, :, None, :])
    if C is None:
        return image[r, c].reshape(nr * nc, ph * pw)                          # (nr, nc, ph, pw)
    p = image[:, r, c]                                                        # (C, nr, nc, ph, pw)
    return jnp.moveaxis(p, 0, 2).reshape(nr * nc, C * ph * pw)


def put_patches(patches: jax.Array, image_shape, patch_size: Size, stride: Size = 1) -> jax.Array:
    """E^T p: every patch added back at its place, overlaps summed (the exact adjoint of ``extract_patches``).

    Args:
      patches: (P, ph*pw) or (P, C*ph*pw), rows in the order of ``extract_patches``.
      image_shape: (H, W) or (C, H, W).
      patch_size, stride: as for ``extract_patches``.

    Returns:
      An array of ``image_shape``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.patches import put_patches, patch_count
      >>> put_patches(jnp.ones((patch_count((3, 3), 2), 4)), (3, 3), 2).tolist()
      [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    patches = as_float_array("patches", patches)
    image_shape = tuple(int(d) for d in image_shape)
    C, rows, cols = _index(image_shape, patch_size, stride)
    nr, ph = rows.shape
    nc, pw = cols.shape
    d = (C or 1) * ph * pw
    if patches.shape != (nr * nc, d):
        raise ValueError(f"patches must have shape ({nr * nc}, {d}) (P patches of {d} entries for image_shape "
                         f"{image_shape}, patch_size ({ph}, {pw})), got {tuple(patches.shape)}")
    r = jnp.asarray(rows[:, None, :, None])
    c = jnp.asarray(cols[None, :, None, :])
    out = jnp.zeros(image_shape, patches.dtype)
    if C is None:
        return out.at[r, c].add(patches.reshape(nr, nc, ph, pw))
    p = jnp.moveaxis(patches.reshape(nr, nc, C, ph, pw), 2, 0)
    return out.at[:, r, c].add(p)


def average_patches(patches: jax.Array, image_shape, patch_size: Size, stride: Size = 1,
                    weights: jax.Array | None = None) -> jax.Array:
    """Weighted overlap-add: (E^T (w * p)) / (E^T (w * 1)), each pixel the weighted mean of the patches covering it.

    Args:
      patches: (P, d) as for ``put_patches``.
      image_shape, patch_size, stride: the geometry.
      weights: None (plain average), (P,) one weight per patch, or (P, d) one per patch entry; >= 0, and every
        pixel must receive a positive total weight (a pixel with zero total weight comes out NaN).

    Returns:
      An array of ``image_shape``; ``average_patches(extract_patches(x, ...), x.shape, ...) == x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.patches import extract_patches, average_patches
      >>> x = jnp.arange(20.0).reshape(4, 5)
      >>> bool(jnp.allclose(average_patches(extract_patches(x, 3, 2), x.shape, 3, 2), x))
      True
    """
    patches = as_float_array("patches", patches)
    if weights is None:
        w = jnp.ones_like(patches)
    else:
        weights = as_float_array("weights", weights)
        if weights.shape == patches.shape[:1]:
            weights = weights[:, None]
        elif weights.shape != patches.shape:
            raise ValueError(f"weights must have shape ({patches.shape[0]},) or {tuple(patches.shape)} (one weight "
                             f"per patch or per patch entry), got {tuple(weights.shape)}")
        w = jnp.broadcast_to(weights, patches.shape).astype(patches.dtype)
    num = put_patches(w * patches, image_shape, patch_size, stride)
    den = put_patches(w, image_shape, patch_size, stride)
    return num / den
