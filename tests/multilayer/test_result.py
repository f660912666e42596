"""The one multi-layer result type (MLSolution): per-layer and overall flags, status codes, stages, the prox= names
of every multi-layer pursuit, the deprecated result aliases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax import shrink
from sparsejax.multilayer import holistic as H
from sparsejax.multilayer.layered import (
    layered_thresholding,
    layered_thresholding_codes,
    ml_bp_objective,
    ml_ista,
    objective_weights,
)
from sparsejax.multilayer.layered_bp import (
    LayeredSolution,
    ProjectionSolution,
    layered_bp,
    layered_bp_unfolded,
    projection_pursuit,
)
from sparsejax.multilayer.result import MLSolution
from sparsejax.operators import Dense
from sparsejax.solve import Status


def _layers(seed=0, sizes=(10, 16, 24)):
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        W = rng.standard_normal((a, b))
        layers.append(Dense(jnp.asarray(W / np.linalg.norm(W, axis=0), jnp.float32)))
    return tuple(layers), jnp.asarray(rng.standard_normal(sizes[0]), jnp.float32)


def _easy_then_hard():
    """Layer 1 is the identity (FISTA stops after two steps), layer 2 a random dictionary (hundreds of steps)."""
    (_, D2), _ = _layers(sizes=(10, 12, 24))
    y = jnp.asarray(np.random.default_rng(3).standard_normal(12), jnp.float32)
    return (Dense(jnp.eye(12, dtype=jnp.float32)), D2), y


def test_every_pursuit_returns_the_one_type():
    assert LayeredSolution is MLSolution and ProjectionSolution is MLSolution and H.HolisticResult is MLSolution
    layers, y = _layers()
    D1, D2 = (np.asarray(D.atoms) for D in layers)
    results = [layered_thresholding(layers, y, 0.1), ml_ista(layers, y, 0.05, max_iter=5),
               layered_bp(layers, y, 0.1, max_iter=5), layered_bp_unfolded(layers, y, 0.1, 2),
               projection_pursuit(layers, y, 0.1, max_iter=5), H.projection_pursuit_dense(D1, D2, y, 0.1, max_iter=5),
               H.holistic_pursuit(D1, D2, y, 0.1, 2, max_iter=5)]
    for sol in results:
        assert isinstance(sol, MLSolution)
        assert len(sol.codes) == 2 and sol.codes[0].shape == (16,) and sol.codes[1].shape == (24,)
        for name in ("layer_num_steps", "layer_converged", "layer_diverged", "layer_objective", "layer_error",
                     "layer_status"):
            assert getattr(sol, name).shape == (2,), name
        assert sol.status.dtype == jnp.int32 and sol.num_steps.dtype == jnp.int32
        assert len(sol.layers) == 2 and sol.layer(-1).codes is sol.codes[-1]


def test_layer_by_layer_flags_and_status():
    layers, y = _easy_then_hard()
    sol = layered_bp(layers, y, (0.1, 0.1), max_iter=50, tol=1e-7)
    assert sol.layer_converged.tolist() == [True, False]
    assert not bool(sol.converged) and not bool(sol.diverged)
    assert int(sol.layer_num_steps[1]) == 50 and int(sol.layer_num_steps[0]) < 50
    assert int(sol.num_steps) == int(jnp.sum(sol.layer_num_steps))
    assert sol.layer_status.tolist() == [Status.CONVERGED, Status.MAX_STEPS]
    assert int(sol.status) == Status.MAX_STEPS
    assert float(sol.error) == float(jnp.max(sol.layer_error)) and float(sol.error) > 1e-7
    np.testing.assert_allclose(float(sol.objective), float(jnp.sum(sol.layer_objective)), rtol=1e-6)
    first = sol.layer(0)
    assert bool(first.converged) and int(first.status) == Status.CONVERGED and first.state is sol.state[0]

    done = layered_bp(layers, y, (0.1, 0.1), max_iter=5000, tol=1e-5)
    assert bool(done.converged) and int(done.status) == Status.CONVERGED
    assert done.layer_converged.tolist() == [True, True]


def test_mode_reaches_the_driver_of_every_layer():
    layers, y = _layers()
    sol = layered_bp(layers, y, 0.1, max_iter=7, tol=0.0, mode="scan")
    assert sol.layer_num_steps.tolist() == [7, 7] and int(sol.status) == Status.MAX_STEPS
    proj = projection_pursuit(layers, y, 0.1, max_iter=7, tol=0.0, mode="checkpoint")
    assert int(proj.num_steps) == 7


def test_joint_solve_repeats_its_flags_per_layer():
    layers, y = _layers()
    sol = ml_ista(layers, y, 0.05, max_iter=3, tol=0.0, mode="scan")
    assert sol.layer_num_steps.tolist() == [3, 3] and sol.layer_status.tolist() == [Status.MAX_STEPS] * 2
    assert int(sol.status) == Status.MAX_STEPS and not bool(sol.converged)
    steps = tuple(float(1.0 / D.lipschitz()) for D in layers)
    conv = ml_ista(layers, y, 0.05, steps=steps, max_iter=20000, tol=1e-5, fista=True)
    assert bool(conv.converged) and int(conv.status) == Status.CONVERGED
    assert conv.layer_converged.tolist() == [True, True]
    weights = objective_weights((0.05, 0.05), steps)
    np.testing.assert_allclose(conv.objective, ml_bp_objective(layers, y, conv.codes[-1], weights), rtol=1e-5)


def test_layered_thresholding_result_and_codes_agree():
    layers, y = _layers()
    sol = layered_thresholding(layers, y, (0.1, 0.05), prox="soft")
    codes = layered_thresholding_codes(layers, y, (0.1, 0.05), prox="soft")
    for a, b in zip(sol.codes, codes):
        np.testing.assert_array_equal(a, b)
    assert sol.layer_num_steps.tolist() == [1, 1] and int(sol.num_steps) == 2
    assert int(sol.status) == Status.CONVERGED and bool(jnp.isnan(sol.objective))
    # a non-finite signal under jit (the value checks are skipped on tracers) is reported, not hidden
    bad = jax.jit(lambda v: layered_thresholding(layers, v, 0.1))(y.at[0].set(jnp.nan))
    assert bool(bad.diverged) and not bool(bad.converged) and int(bad.status) == Status.NONFINITE_INPUT
    assert bad.layer_status.tolist() == [Status.NONFINITE_INPUT, Status.DIVERGED]   # layer 2 inherits the failure


def test_per_layer_fields_under_vmap():
    layers, y = _layers()
    Y = jnp.stack([y, 2.0 * y, -y])
    sol = jax.vmap(lambda v: layered_bp(layers, v, 0.1, max_iter=500, tol=1e-6))(Y)
    assert sol.layer_converged.shape == (3, 2) and sol.status.shape == (3,)
    assert sol.layers[1].num_steps.shape == (3,)
    np.testing.assert_array_equal(sol.layer(1).num_steps, sol.layer_num_steps[:, 1])


def test_holistic_stages():
    layers, y = _layers()
    D1, D2 = (np.asarray(D.atoms) for D in layers)
    sol = H.holistic_pursuit(D1, D2, y, 0.1, 3, max_iter=3000, tol=1e-5)
    assert sol.stages.num_steps.shape == (4,) and sol.stages.codes.shape == (4, 24)
    assert int(sol.num_steps) == int(jnp.sum(sol.stages.num_steps))
    assert bool(sol.converged) == bool(jnp.all(sol.stages.converged)) and int(sol.status) == Status.CONVERGED
    np.testing.assert_array_equal(sol.stages.codes[-1], sol.codes[1])
    assert float(sol.objective) == float(sol.stages.objective[-1])
    assert sol.state.cosupport1.shape == (3,) and isinstance(sol.state.subspace, H.SubspaceState)
    short = H.holistic_pursuit(D1, D2, y, 0.1, 3, max_iter=2, tol=1e-12)
    assert not bool(short.converged) and int(short.status) == Status.MAX_STEPS
    assert short.stages.num_steps.tolist() == [2, 2, 2, 2] and int(short.num_steps) == 8


# ----------------------------------------------------------------------------------------------------
# prox= names
# ----------------------------------------------------------------------------------------------------
def test_prox_names_and_callables():
    layers, y = _layers()
    relu = lambda z, b: jax.nn.relu(z - b)  # noqa: E731
    a = ml_ista(layers, y, 0.05, max_iter=10, mode="scan", prox="nonneg_soft")
    b = ml_ista(layers, y, 0.05, max_iter=10, mode="scan", prox=relu)
    np.testing.assert_allclose(a.codes[-1], b.codes[-1], atol=1e-6)
    assert bool(jnp.all(a.codes[-1] >= 0))
    hard = ml_ista(layers, y, 0.05, max_iter=10, mode="scan", prox="hard")
    assert bool(jnp.all(jnp.isfinite(hard.codes[-1])))
    u = layered_bp_unfolded(layers, y, 0.1, 3, prox=relu)
    v = layered_bp_unfolded(layers, y, 0.1, 3, prox="nonneg_soft")
    np.testing.assert_allclose(u.codes[-1], v.codes[-1], atol=1e-6)
    g = layered_thresholding_codes(layers, y, 0.1, prox=shrink.hard)
    np.testing.assert_array_equal(g[-1], layered_thresholding(layers, y, 0.1, prox="hard").codes[-1])


def test_lasso_pursuits_name_the_allowed_prox():
    layers, y = _layers()
    D1, D2 = (np.asarray(D.atoms) for D in layers)
    for f in (lambda p: layered_bp(layers, y, 0.1, prox=p), lambda p: projection_pursuit(layers, y, 0.1, prox=p),
              lambda p: H.holistic_pursuit(D1, D2, y, 0.1, 1, prox=p),
              lambda p: H.projection_pursuit_dense(D1, D2, y, 0.1, prox=p),
              lambda p: H.subspace_bpdn(D1 @ D2, None, y, 0.1, prox=p)):
        for bad in ("hard", shrink.soft):
            with pytest.raises(ValueError, match=r"prox must be one of \('soft', 'nonneg_soft'\)"):
                f(bad)
    with pytest.raises(ValueError, match="prox must be one of"):
        ml_ista(layers, y, 0.1, prox="relu")
    for f in (lambda: ml_ista(layers, y, 0.1, nonneg=True), lambda: layered_bp(layers, y, 0.1, nonneg=True),
              lambda: H.holistic_pursuit(D1, D2, y, 0.1, 1, nonneg=True)):
        with pytest.raises(TypeError, match="nonneg"):
            f()


def test_nonneg_soft_gives_nonnegative_codes():
    layers, y = _layers()
    D1, D2 = (np.asarray(D.atoms) for D in layers)
    for sol in (layered_bp(layers, y, 0.1, prox="nonneg_soft"), projection_pursuit(layers, y, 0.1, prox="nonneg_soft"),
                H.holistic_pursuit(D1, D2, y, 0.1, 1, prox="nonneg_soft")):
        assert bool(jnp.all(sol.codes[-1] >= 0)) and bool(jnp.any(sol.codes[-1] > 0))


def test_objective_argument_order():
    layers, y = _layers()
    GK = jnp.ones(24, jnp.float32)
    with pytest.raises(TypeError, match=r"\(layers, y, GK, lams\)"):
        ml_bp_objective(layers, y, (0.1, 0.1), GK)
    assert np.isfinite(float(ml_bp_objective(layers, y, GK, (0.1, 0.1))))


def test_ml_ista_implicit_gradient_equals_unrolled(x64):
    """mode="implicit" reaches the driver: the gradient at the fixed point (ML-ISTA sweep on G_K, also for
    ML-FISTA) equals the unrolled one, for the deepest code and for the layers computed from it."""
    rng = np.random.default_rng(0)
    layers = tuple(Dense(jnp.asarray(W / np.linalg.norm(W, axis=0)))
                   for W in (rng.standard_normal((10, 16)), rng.standard_normal((16, 24))))
    y = jnp.asarray(rng.standard_normal(10))
    steps = tuple(float(1.0 / D.lipschitz()) for D in layers)

    def loss(v, mode, layer, fista=False):
        sol = ml_ista(layers, v, (0.05, 0.05), steps=steps, max_iter=2000, tol=1e-12, mode=mode, fista=fista)
        return jnp.sum(sol.codes[layer] ** 2)

    for layer in (0, 1):
        unrolled = jax.grad(loss)(y, "scan", layer)
        assert float(jnp.max(jnp.abs(unrolled))) > 0
        for fista in (False, True):
            implicit = jax.grad(loss)(y, "implicit", layer, fista)
            np.testing.assert_allclose(implicit, unrolled, rtol=1e-5, atol=1e-5)
