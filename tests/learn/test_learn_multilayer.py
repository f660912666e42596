"""ML-CSC dictionary learning (sparsejax.learn.multilayer; Sulam, Papyan, Romano, Elad, "Multilayer convolutional
sparse modeling: pursuit and dictionary learning", IEEE TSP 2018)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tol_for
from sparsejax.learn import multilayer as LM
from sparsejax import shrink
from sparsejax.conv.operator import normalize_filters
from sparsejax.multilayer.model import molecules

# tiny 2-D model: 9x9 images -> G_1 (4, 4, 4) -> G_2 (6, 3, 3)
ARCH2D = ((4, 3, 2), (6, 2, 1))
SHAPE2D = (1, 9, 9)
STRIDES2D = (2, 1)
codes = jax.jit(LM.ml_codes, static_argnames=("n_iter", "pursuit"))
loss_grad = jax.jit(jax.grad(LM.reconstruction_loss), static_argnums=(3, 4))


def _images(key, n, shape=SHAPE2D, dtype=np.float32):
    return jax.random.normal(key, (n,) + shape, dtype)


def test_molecule_sizes_and_coverage():
    """The MNIST strides give molecules 7, 21, 28 (equal to sparsejax.multilayer.model.molecules), codes that fit
    28x28 exactly and deepest molecules that reach every pixel; strides 3, 5 would leave pixel rows 13, 14
    uncovered."""
    assert LM.molecule_sizes(LM.MNIST_ARCHITECTURE) == ((7, 7), (21, 21), (28, 28))
    shapes = LM.layer_shapes(LM.MNIST_ARCHITECTURE, (1, 28, 28))
    assert [c for _, _, c in shapes] == [(32, 4, 4), (128, 2, 2), (1024, 1, 1)]
    for strides, covered in (((7, 1, 1), True), ((3, 5, 1), False)):
        arch = tuple((m, k, s) for (m, k, _), s in zip(((4, 7, 0), (5, 3, 0), (6, 2, 0)), strides))
        f = LM.init_filters(jax.random.PRNGKey(1), arch, (1, 28, 28))
        layers = LM.build_layers(f, (1, 28, 28), strides)
        sizes = LM.molecule_sizes(arch)
        for j in ((1, 2, 3) if covered else (3,)):
            assert molecules(layers, j).shape[2:] == sizes[j - 1]
        reach = np.asarray(jnp.sum(jnp.abs(molecules(layers, 3)), axis=(0, 1))) > 0
        assert reach.shape == (28, 28)
        if covered:
            assert reach.all()
        else:
            assert not reach[13].any() and not reach[:, 14].any() and reach[12].any()


def test_dense_and_chain_pursuits_agree(x64):
    Y = _images(jax.random.PRNGKey(0), 5, dtype=np.float64)
    f = LM.init_filters(jax.random.PRNGKey(1), ARCH2D, SHAPE2D, jnp.float64)
    layers = LM.build_layers(f, SHAPE2D, STRIDES2D)
    Gd, Ld = codes(layers, Y, 0.1, n_iter=40, pursuit="dense")
    Gc, Lc = codes(layers, Y, 0.1, n_iter=40, pursuit="chain")
    np.testing.assert_allclose(Ld, Lc, rtol=1e-10)
    np.testing.assert_allclose(Gd, Gc, atol=1e-9)
    assert np.mean(np.asarray(Gd) == 0) > 0.2         # the l1 pursuit gives exact zeros


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_step_equals_prox_gradient_and_decreases(dtype):
    """With SGD, one step is F_i <- normalise(S_t(F_i - eta grad_i f)) at the codes of the batch, and for a
    small step (t = 0) it lowers f at fixed codes."""
    N = 8
    Y = _images(jax.random.PRNGKey(0), N, dtype=dtype)
    f0 = LM.init_filters(jax.random.PRNGKey(1), ARCH2D, SHAPE2D, dtype)
    lam, eta, n_iter = jnp.asarray(0.1, dtype), 0.05, 40
    kw = dict(signal_shape=SHAPE2D, strides=STRIDES2D, batch_size=N, n_iter=n_iter)
    tol = tol_for(dtype, 2e-4, 1e-9)
    opt = optax.sgd(eta)
    for t in (0.0, 0.02):
        thr = (jnp.asarray(t, dtype),) * 2
        st1, m = LM.ml_dl_step(LM.ml_dl_init(f0, opt, jax.random.PRNGKey(2)), Y, lam, thr, optimizer=opt, **kw)
        # the batch is a permutation of all images: codes per image, f a sum -> order does not matter
        GK, _ = codes(LM.build_layers(f0, SHAPE2D, STRIDES2D), Y, lam, n_iter=n_iter)
        g = loss_grad(f0, GK, Y, SHAPE2D, STRIDES2D)
        expect = tuple(normalize_filters(shrink.soft(F - eta * gi, t)) for F, gi in zip(f0, g))
        for a, b in zip(st1.filters, expect):
            np.testing.assert_allclose(a, b, atol=tol, rtol=tol)
        assert int(st1.step) == 1
        if t == 0.0:
            before = LM.reconstruction_loss(f0, GK, Y, SHAPE2D, STRIDES2D)
            after = LM.reconstruction_loss(st1.filters, GK, Y, SHAPE2D, STRIDES2D)
            assert float(after) < float(before) * (1 - 1e-3)
            # metric loss = the Lasso objective of the batch at the old filters
            obj = before + lam * jnp.sum(jnp.abs(GK)) / N
            np.testing.assert_allclose(m["loss"], obj, rtol=tol_for(dtype, 1e-4, 1e-9))


@pytest.mark.parametrize("normalize", ["layers", "effective"])
def test_unit_norm_and_exact_zeros(normalize):
    Y = _images(jax.random.PRNGKey(3), 16)
    res = LM.learn_ml_dictionaries(Y, ARCH2D, lam=0.1, filter_l1=(0.05, 0.02), n_steps=3, batch_size=8,
                                   n_iter=20, normalize=normalize, optimizer=optax.adam(1e-2), progress=False)
    assert res.loop.status == "completed"
    F1, F2 = res.filters
    n1 = np.sqrt(np.sum(np.asarray(F1) ** 2, axis=(1, 2, 3)))
    np.testing.assert_allclose(n1, 1.0, rtol=1e-5)
    assert np.mean(np.asarray(F1) == 0) > 0.05 and np.mean(np.asarray(F2) == 0) > 0.0
    np.testing.assert_allclose(res.loop.history["filter_sparsity_1"][-1], np.mean(np.asarray(F1) == 0))
    mol = np.asarray(molecules(res.layers, 2)).reshape(6, -1)
    if normalize == "layers":
        np.testing.assert_allclose(np.sqrt(np.sum(np.asarray(F2) ** 2, axis=(1, 2, 3))), 1.0, rtol=1e-5)
    else:   # the atoms of the effective dictionary D_1 D_2 have unit norm
        np.testing.assert_allclose(np.linalg.norm(mol, axis=1), 1.0, rtol=1e-4)


def _planted(key, n, M1=6, M2=10, P2=4, k=2):
    """1-D planted model: signals of length 17 = D_1 D_2 G_2, D_1 6 filters 5 taps stride 2, D_2 10 filters
    4 taps, G_2 (10, 4) with k nonzeros of magnitude in [1, 2]."""
    arch = ((M1, 5, 2), (M2, 4, 1))
    shape = (1, 2 * (P2 + 3 - 1) + 5)
    kf, kg, ks, kv = jax.random.split(key, 4)
    filters = LM.init_filters(kf, arch, shape)
    layers = LM.build_layers(filters, shape, (2, 1))

    def code(kk):
        a, b, c = jax.random.split(kk, 3)
        idx = jax.random.choice(a, M2 * P2, (k,), replace=False)
        val = jax.random.uniform(b, (k,), minval=1.0, maxval=2.0) * jnp.sign(jax.random.normal(c, (k,)))
        return jnp.zeros(M2 * P2).at[idx].set(val).reshape(M2, P2)

    G = jax.vmap(code)(jax.random.split(kg, n))
    from sparsejax.multilayer.model import Chain
    X = jax.vmap(Chain(layers).apply)(G)
    return arch, X, filters


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_planted_model_learned_explains_held_out_data():
    arch, X, _ = _planted(jax.random.PRNGKey(7), 500)
    train, test = X[:400], X[400:]
    lam = 0.02
    res = LM.learn_ml_dictionaries(train, arch, lam=lam, n_steps=80, batch_size=64, n_iter=40,
                                   optimizer=optax.adam(2e-2), key=jax.random.PRNGKey(11), progress=False)
    f0 = LM.init_filters(jax.random.split(jax.random.PRNGKey(11))[1], arch, X.shape[1:])
    before = LM.evaluate_ml(f0, test, lam, (2, 1), n_iter=100)
    after = LM.evaluate_ml(res.filters, test, lam, (2, 1), n_iter=100)
    assert after["objective"] < 0.5 * before["objective"], (before, after)
    assert after["rel_error"] < 0.6 * before["rel_error"], (before, after)
    h = res.loop.history["loss"]
    assert np.mean(h[-10:]) < 0.6 * np.mean(h[:10])


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    Y = _images(jax.random.PRNGKey(4), 20)
    kw = dict(lam=0.1, filter_l1=0.01, n_steps=6, batch_size=5, n_iter=10, key=jax.random.PRNGKey(5),
              optimizer=optax.adam(1e-2), progress=False)
    full = LM.learn_ml_dictionaries(Y, ARCH2D, **kw)
    part = LM.learn_ml_dictionaries(Y, ARCH2D, checkpoint_dir=tmp_path, checkpoint_every=2, stop_after=4, **kw)
    assert part.loop.status == "stopped" and part.loop.steps == 4
    rest = LM.learn_ml_dictionaries(Y, ARCH2D, checkpoint_dir=tmp_path, checkpoint_every=2, **kw)
    assert rest.loop.resumed_from == 4 and rest.loop.steps == 6
    for a, b in zip(full.filters, rest.filters):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.loop.history["loss"], rest.loop.history["loss"])


def test_bad_inputs():
    Y = np.asarray(_images(jax.random.PRNGKey(0), 6))
    good = dict(lam=0.1, n_steps=1, batch_size=2, progress=False)
    bad = Y.copy()
    bad[2, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="images"):
        LM.learn_ml_dictionaries(bad, ARCH2D, **good)
    with pytest.raises(ValueError, match="channel axis"):
        LM.learn_ml_dictionaries(Y[:, 0, 0], ARCH2D, **good)
    with pytest.raises(TypeError, match="images"):
        LM.learn_ml_dictionaries(Y.astype(np.int32), ARCH2D, **good)
    with pytest.raises(ValueError, match="batch_size"):
        LM.learn_ml_dictionaries(Y, ARCH2D, **{**good, "batch_size": 7})
    with pytest.raises(ValueError, match="does not fit"):
        LM.learn_ml_dictionaries(Y[:, :, :4, :4], ((4, 5, 1),), **good)
    with pytest.raises(ValueError, match="lam"):
        LM.learn_ml_dictionaries(Y, ARCH2D, **{**good, "lam": -1.0})
    with pytest.raises(ValueError, match="filter_l1"):
        LM.learn_ml_dictionaries(Y, ARCH2D, filter_l1=(0.1,), **good)
    with pytest.raises(ValueError, match="filter_l1"):
        LM.learn_ml_dictionaries(Y, ARCH2D, filter_l1=-0.1, **good)
    with pytest.raises(ValueError, match="normalize"):
        LM.learn_ml_dictionaries(Y, ARCH2D, normalize="atoms", **good)
    with pytest.raises(ValueError, match="kernel"):
        LM.learn_ml_dictionaries(Y, ((4, (3, 3, 3), 1),), **good)
    with pytest.raises(TypeError, match="architecture"):
        LM.learn_ml_dictionaries(Y, (4, 3, 1), **good)
    with pytest.raises(ValueError, match="init"):
        LM.learn_ml_dictionaries(Y, ARCH2D, init=(np.zeros((4, 1, 3, 3), np.float32),), **good)


def test_pursuit_prox_and_flags():
    """prox= sets the pursuit's shrinkage ("nonneg_soft": non-negative codes); the pursuit runs through
    solve.iterate, whose divergence flag reaches the step metrics and evaluate_ml; a bad prox is refused."""
    Y = _images(jax.random.PRNGKey(0), 6)
    f = LM.init_filters(jax.random.PRNGKey(1), ARCH2D, SHAPE2D)
    layers = LM.build_layers(f, SHAPE2D, STRIDES2D)
    G, _ = codes(layers, Y, 0.05, n_iter=30)
    Gp, _ = jax.jit(LM.ml_codes, static_argnames=("n_iter", "prox"))(layers, Y, 0.05, n_iter=30, prox="nonneg_soft")
    assert float(jnp.min(G)) < 0 and float(jnp.min(Gp)) >= 0 and float(jnp.max(Gp)) > 0
    sol, _ = jax.jit(LM.ml_codes, static_argnames=("n_iter", "return_solution"))(layers, Y, 0.05, n_iter=30,
                                                                                  return_solution=True)
    np.testing.assert_array_equal(sol.codes, G)
    assert sol.diverged.shape == (6,) and not bool(jnp.any(sol.diverged))
    assert np.all(np.asarray(sol.num_steps) == 30)
    res = LM.learn_ml_dictionaries(Y, ARCH2D, lam=0.1, n_steps=2, batch_size=3, n_iter=10, prox="nonneg_soft",
                                   progress=False)
    assert list(res.loop.history["pursuit_diverged"]) == [0.0, 0.0]
    assert LM.evaluate_ml(res.filters, Y, 0.1, STRIDES2D, n_iter=10, chunk=3)["pursuit_diverged"] == 0
    with pytest.raises(ValueError, match="prox"):
        LM.learn_ml_dictionaries(Y, ARCH2D, lam=0.1, n_steps=1, batch_size=2, prox="relu", progress=False)
