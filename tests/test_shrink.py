"""Shrinkage operators against brute-force minimisation of their prox objectives, under jit/vmap/grad."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from sparsejax import shrink

GRID = np.linspace(-6, 6, 240001)  # step 5e-5


def brute_prox(penalty, z):
    vals = 0.5 * (GRID - z) ** 2 + penalty(GRID)
    return GRID[np.argmin(vals)]


finite = st.floats(-5, 5, allow_nan=False)
thr = st.floats(0, 3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(z=finite, b=thr)
def test_soft_is_prox_of_l1(z, b):
    got = float(shrink.soft(jnp.float32(z), b))
    assert abs(got - brute_prox(lambda x: b * np.abs(x), z)) < 2e-4


@settings(max_examples=60, deadline=None)
@given(z=finite, b=thr)
def test_nonneg_soft_is_prox_of_l1_plus_positivity(z, b):
    got = float(shrink.nonneg_soft(jnp.float32(z), b))
    pen = lambda x: np.where(x >= 0, b * x, np.inf)
    assert abs(got - brute_prox(pen, z)) < 2e-4
    assert got == pytest.approx(max(z - b, 0.0), abs=1e-6)  # ReLU(z - b)


@settings(max_examples=60, deadline=None)
@given(z=finite, b=thr)
def test_hard_is_prox_of_scaled_l0(z, b):
    if abs(abs(z) - b) < 1e-3:  # the two minimisers tie at |z| = b
        return
    got = float(shrink.hard(jnp.float32(z), b))
    pen = lambda x: np.where(np.abs(x) > 0, 0.5 * b * b, 0.0)
    assert abs(got - brute_prox(pen, z)) < 2e-4


def test_top_k_is_l0_projection_by_enumeration():
    rng = np.random.default_rng(0)
    for _ in range(20):
        z = rng.normal(size=7).astype(np.float32)
        k = int(rng.integers(1, 7))
        best = min(
            (np.sum((z - np.where(np.isin(np.arange(7), S), z, 0)) ** 2), S)
            for S in itertools.combinations(range(7), k)
        )
        expect = np.where(np.isin(np.arange(7), best[1]), z, 0)
        np.testing.assert_allclose(np.asarray(shrink.top_k(jnp.asarray(z), k)), expect)


def test_top_k_keeps_exactly_k_with_ties():
    z = jnp.array([1.0, -1.0, 1.0, 0.5, 1.0])
    out = shrink.top_k(z, 2)
    assert int(jnp.sum(out != 0)) == 2
    with pytest.raises(ValueError, match="k"):
        shrink.top_k(z, 0)


def test_group_soft_is_prox_of_group_norm():
    rng = np.random.default_rng(1)
    for _ in range(10):
        z = rng.normal(size=(3, 4))
        b = rng.uniform(0.1, 2.5)
        obj = lambda x: 0.5 * np.sum((x.reshape(3, 4) - z) ** 2) + b * np.sum(np.linalg.norm(x.reshape(3, 4), axis=1))
        ref = minimize(obj, np.zeros(12) + 1e-3, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 200000}).x
        got = np.asarray(shrink.group_soft(jnp.asarray(z, jnp.float32), b, axis=1))
        assert obj(got.reshape(-1)) <= obj(ref) + 1e-5
    assert np.all(np.asarray(shrink.group_soft(jnp.zeros((2, 3)), 1.0)) == 0)


def test_firm_interpolates_hard_and_soft():
    z = jnp.linspace(-4, 4, 81)
    f = shrink.firm(z, 1.0, 2.0)
    np.testing.assert_allclose(f[jnp.abs(z) <= 1.0], 0)
    np.testing.assert_allclose(f[jnp.abs(z) > 2.0], z[jnp.abs(z) > 2.0])
    mid = (jnp.abs(z) > 1.0) & (jnp.abs(z) <= 2.0)
    np.testing.assert_allclose(f[mid], jnp.sign(z[mid]) * 2 * (jnp.abs(z[mid]) - 1), rtol=1e-6)


@pytest.mark.parametrize("name", ["soft", "hard", "nonneg_soft"])
def test_traced_thresholds_jit_vmap_and_per_atom(name, dtype):
    f = shrink.get(name)
    z = jnp.asarray(np.random.default_rng(2).normal(size=(5, 8)), dtype)
    b = jnp.linspace(0.0, 1.0, 8, dtype=dtype)  # one threshold per atom
    eager = f(z, b)
    jitted = jax.jit(f)(z, b)
    mapped = jax.vmap(f, in_axes=(0, None))(z, b)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager))
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(eager))
    assert eager.dtype == dtype

    count = 0

    def traced(z, b):
        nonlocal count
        count += 1
        return f(z, b)

    g = jax.jit(traced)
    g(z, b)
    g(z, b * 2)
    g(z + 1, jnp.asarray(0.3, dtype) * jnp.ones_like(b))
    assert count == 1


def test_gradients_defined_everywhere():
    z = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    gz = jax.grad(lambda z: jnp.sum(shrink.soft(z, 1.0)))(z)
    np.testing.assert_allclose(gz, [1, 0, 0, 0, 1])
    gb = jax.grad(lambda b: jnp.sum(shrink.soft(z, b)))(1.0)
    assert float(gb) == pytest.approx(-2.0 + 2.0)  # -sign(z) summed over |z| > b: (-(-1)) + (-(1))
    gb_relu = jax.grad(lambda b: jnp.sum(shrink.nonneg_soft(z, b)))(0.2)
    assert float(gb_relu) == pytest.approx(-2.0)  # two entries above 0.2
    for f in (shrink.hard, shrink.nonneg_soft):
        g = jax.grad(lambda z: jnp.sum(f(z, 1.0) ** 2))(z)
        assert np.all(np.isfinite(g))
    g = jax.grad(lambda z: jnp.sum(shrink.group_soft(z, 0.5)))(jnp.zeros(4))
    assert np.all(np.isfinite(g))


def test_get_rejects_unknown_names():
    with pytest.raises(ValueError, match="prox"):
        shrink.get("medium")


def test_get_error_names_prox_and_lists_the_allowed_names():
    with pytest.raises(ValueError, match=r"prox must be one of \('soft', 'hard', 'nonneg_soft'\) or a callable"):
        shrink.get("medium")
    with pytest.raises(ValueError, match="prox must be one of"):
        shrink.get(None)
    with pytest.raises(ValueError, match="prox must be one of"):
        shrink.get(["soft"])  # unhashable: still the prox error


def test_get_resolves_names_and_passes_callables():
    for name, f in (("soft", shrink.soft), ("hard", shrink.hard), ("nonneg_soft", shrink.nonneg_soft)):
        assert shrink.get(name) is f
    relu = lambda z, b: jax.nn.relu(z)  # noqa: E731
    assert shrink.get(relu) is relu


def test_get_with_allowed_names_refuses_the_others_and_callables():
    allowed = shrink.SIGN_PROXES
    assert allowed == ("soft", "nonneg_soft")
    assert shrink.get("nonneg_soft", allowed=allowed) is shrink.nonneg_soft
    with pytest.raises(ValueError, match=r"prox must be one of \('soft', 'nonneg_soft'\), got 'hard'"):
        shrink.get("hard", allowed=allowed)
    with pytest.raises(ValueError, match="prox must be one of"):
        shrink.get(shrink.soft, allowed=allowed)
