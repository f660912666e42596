"""sparsejax.patches: E (extract), E^T (put) by the dot-product test, overlap-add averaging, corner geometry."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.patches import (
    average_patches,
    extract_patches,
    patch_corners,
    patch_count,
    put_patches,
)

GEOMETRIES = [((9, 11), (3, 4), 1), ((9, 11), 3, 2), ((10, 7), (4, 2), (3, 2)), ((2, 9, 11), 4, 3)]


@pytest.mark.parametrize("shape,patch,stride", GEOMETRIES[1:])
def test_put_is_the_adjoint_of_extract(shape, patch, stride, dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), dtype)
    Ex = extract_patches(x, patch, stride)
    y = jnp.asarray(rng.standard_normal(Ex.shape), dtype)
    lhs = float(jnp.vdot(Ex, y))
    rhs = float(jnp.vdot(x, put_patches(y, shape, patch, stride)))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs))


def test_put_is_the_transpose_jax_derives():
    shape, patch, stride = (2, 9, 11), (3, 4), (2, 3)
    x = jnp.zeros(shape)
    y = jnp.asarray(np.random.default_rng(3).standard_normal((patch_count(shape, patch, stride), 24)), jnp.float32)
    (ET,) = jax.linear_transpose(lambda v: extract_patches(v, patch, stride), x)(y)
    np.testing.assert_allclose(ET, put_patches(y, shape, patch, stride), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape,patch,stride", GEOMETRIES)
def test_patches_are_the_image_blocks_and_averaging_returns_the_image(shape, patch, stride):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    P = extract_patches(x, patch, stride)
    assert P.shape[0] == patch_count(shape, patch, stride)
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    r, c = patch_corners(shape, patch, stride)
    H, W = shape[-2:]
    # every pixel covered, corners row-major, last ones on the border
    assert r.max() == H - ph and c.max() == W - pw
    assert np.all(np.diff(r * W + c) > 0)
    cover = np.zeros((H, W))
    for j in (0, len(r) // 2, len(r) - 1):        # a few patches against numpy slicing
        np.testing.assert_array_equal(P[j], x[..., r[j]:r[j] + ph, c[j]:c[j] + pw].reshape(-1))
    for rj, cj in zip(r, c):
        cover[rj:rj + ph, cj:cj + pw] += 1
    assert cover.min() >= 1
    np.testing.assert_allclose(put_patches(jnp.ones_like(P), shape, patch, stride),
                               np.broadcast_to(cover, shape), rtol=0)
    np.testing.assert_allclose(average_patches(P, shape, patch, stride), x, rtol=1e-6, atol=1e-6)
    w = rng.uniform(0.5, 2.0, P.shape[0])
    np.testing.assert_allclose(average_patches(P, shape, patch, stride, weights=w), x, rtol=1e-5, atol=1e-5)


def test_weighted_average_is_the_weighted_mean_per_pixel():
    shape, patch = (5, 6), 3
    rng = np.random.default_rng(2)
    P = rng.standard_normal((patch_count(shape, patch), 9))
    w = rng.uniform(0.1, 1.0, P.shape[0])
    r, c = patch_corners(shape, patch)
    num, den = np.zeros(shape), np.zeros(shape)
    for j, (rj, cj) in enumerate(zip(r, c)):
        num[rj:rj + 3, cj:cj + 3] += w[j] * P[j].reshape(3, 3)
        den[rj:rj + 3, cj:cj + 3] += w[j]
    np.testing.assert_allclose(average_patches(jnp.asarray(P, jnp.float32), shape, patch, weights=w),
                               num / den, rtol=1e-5, atol=1e-5)


def test_jit_with_static_geometry():
    f = jax.jit(extract_patches, static_argnums=(1, 2))
    x = jnp.arange(30.0).reshape(5, 6)
    np.testing.assert_array_equal(f(x, 2, 2), extract_patches(x, 2, 2))


def test_bad_input_names_the_argument():
    x = jnp.zeros((6, 6))
    with pytest.raises(ValueError, match="patch_size"):
        extract_patches(x, 7)
    with pytest.raises(ValueError, match="stride"):
        extract_patches(x, 3, 0)
    with pytest.raises(ValueError, match="image_shape"):
        extract_patches(jnp.zeros(6), 3)
    with pytest.raises(TypeError, match="image"):
        extract_patches(jnp.zeros((6, 6), jnp.int32), 3)
    with pytest.raises(ValueError, match="patches must have shape"):
        put_patches(jnp.zeros((3, 9)), (6, 6), 3)
    with pytest.raises(ValueError, match="weights"):
        average_patches(jnp.zeros((16, 9)), (6, 6), 3, weights=jnp.ones(3))
