"""Convolutional dictionary learning (sparsejax.learn.conv) and the `learn` subcommand (sparsejax.cli.learn)."""
import argparse
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax.learn.conv as LC
from sparsejax.conv.norms import conv_cross_correlation
from sparsejax.learn.conv import (cdl_objective, dict_update, filters_to_image, learn_conv_dictionary,
                                  project_filters)

from conftest import run_on_host_devices

# one planted 1-D problem shared by several tests (same shapes and options -> one compilation per dtype)
M_TRUE, K_LEN, N_LEN, N_SIG = 4, 8, 64, 8


def planted_1d(seed=0, dtype=np.float32):
    """Signals s_k = sum_m d_m * x_{k,m} (circular, no noise), 2 spikes of amplitude 1..2 per map."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(M_TRUE, 1, K_LEN))
    D /= np.linalg.norm(D.reshape(M_TRUE, -1), axis=1)[:, None, None]
    X = np.zeros((N_SIG, M_TRUE, N_LEN))
    for i in range(N_SIG):
        for m in range(M_TRUE):
            idx = rng.choice(N_LEN, 2, replace=False)
            X[i, m, idx] = rng.choice([-1.0, 1.0], 2) * rng.uniform(1.0, 2.0, 2)
    S = np.real(np.fft.ifft(np.sum(np.fft.fft(D[:, 0], n=N_LEN)[None] * np.fft.fft(X), axis=1)))
    return D.astype(dtype), S.astype(dtype)


def best_match(learned, true):
    """max over learned filters and shifts of |normalised cross-correlation|, for each true filter."""
    F = np.concatenate([np.asarray(learned, np.float64), np.asarray(true, np.float64)])
    m = learned.shape[0]
    R = np.abs(np.asarray(conv_cross_correlation(jnp.asarray(F))))
    return R[:m, m:].max(axis=(0, 2))


LEARN_KW = dict(n_steps=200, x_iter=5, d_iter=5, d_rho=1.0, progress=False)


# ----------------------------------------------------------------------------------------------------
# dictionary update
# ----------------------------------------------------------------------------------------------------
def test_dict_update_decreases_objective_and_is_stationary(dtype):
    rng = np.random.default_rng(1)
    K, M, k, N = 3, 3, 5, 32
    z = rng.normal(size=(K, M, N)) * (rng.random((K, M, N)) < 0.15)
    s = rng.normal(size=(K, N))
    f0 = rng.normal(size=(M, 1, k))
    z, s, f0 = (jnp.asarray(a, dtype) for a in (z, s, f0))
    st = dict_update(f0, z, s, rho=0.1, n_iter=1500)
    g = st.g
    assert g.dtype == dtype and g.shape == (M, 1, k)
    # feasible: unit norm; the full-size ADMM variable agrees with the window-supported g (primal residual)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(g).reshape(M, -1), axis=1), 1.0, rtol=1e-5)
    assert float(st.primal_res) < 1e-3
    f_init = float(cdl_objective(project_filters(f0), s, z, 0.0))
    f_end = float(cdl_objective(g, s, z, 0.0))
    assert f_end < 0.9 * f_init
    # first-order optimality on the sphere: the gradient of each filter is parallel to it
    G = np.asarray(jax.grad(lambda f: cdl_objective(f, s, z, 0.0))(g), np.float64).reshape(M, -1)
    gg = np.asarray(g, np.float64).reshape(M, -1)
    tang = G - np.sum(G * gg, axis=1, keepdims=True) * gg
    assert np.linalg.norm(tang) / np.linalg.norm(G) < (2e-3 if dtype == np.float32 else 1e-6)


@pytest.mark.parametrize("K, ldl_max", [(1, 16), (4, 16), (4, 0)])
def test_code_solve_equals_dense_normal_equations(K, ldl_max, monkeypatch, x64):
    """(Z_f^H Z_f + rho I) d_f = b_f at every frequency: unrolled LDL^H (K = 1: Sherman-Morrison) and the batched
    fallback (``_LDL_MAX_K`` = 0) against numpy's dense solve, for two values of rho."""
    monkeypatch.setattr(LC, "_LDL_MAX_K", ldl_max)
    rng = np.random.default_rng(7)
    M, N = 5, (6, 8)
    z = rng.normal(size=(K, M) + N) * (rng.random((K, M) + N) < 0.5)
    b = rng.normal(size=(M, 6, 5)) + 1j * rng.normal(size=(M, 6, 5))
    cf = LC._code_factors(jnp.asarray(z), N)
    Z = np.fft.rfftn(z, axes=(-2, -1))                               # (K, M, 6, 5)
    for rho in (0.3, 7.0):
        d = np.asarray(LC._code_solve(cf, jnp.asarray(b), rho))
        for i, j in np.ndindex(6, 5):
            Zij = Z[:, :, i, j]
            ref = np.linalg.solve(Zij.conj().T @ Zij + rho * np.eye(M), b[:, i, j])
            np.testing.assert_allclose(d[:, i, j], ref, rtol=1e-10, atol=1e-12)


def test_dict_update_zero_mean_projection():
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(size=(1, 2, 8, 8)) * (rng.random((1, 2, 8, 8)) < 0.2), jnp.float32)
    s = jnp.asarray(rng.normal(size=(1, 8, 8)), jnp.float32)
    st = dict_update(jnp.asarray(rng.normal(size=(2, 1, 3, 3)), jnp.float32), z, s, n_iter=50, zero_mean=True)
    g = np.asarray(st.g).reshape(2, -1)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------
# learners
# ----------------------------------------------------------------------------------------------------
def test_admm_learner_2d_objective_decreases():
    dtype = np.float32
    rng = np.random.default_rng(3)
    imgs = jnp.asarray(rng.normal(size=(2, 16, 16)), dtype)
    res = learn_conv_dictionary(imgs, 4, (4, 4), 0.3, n_steps=25, progress=False, key=jax.random.PRNGKey(1))
    h = res.loop.history
    assert res.loop.status == "completed" and res.filters.dtype == dtype and res.codes.shape == (2, 4, 16, 16)
    assert h["loss"][-1] < 0.8 * h["loss"][0]
    # the reported objective is F(filters, codes) of the returned pair
    np.testing.assert_allclose(h["loss"][-1], float(cdl_objective(res.filters, imgs, res.codes, 0.3)),
                               rtol=1e-4 if dtype == np.float32 else 1e-10)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(res.filters).reshape(4, -1), axis=1), 1.0, rtol=1e-5)
    for name in ("x_primal_res", "x_dual_res", "d_primal_res", "d_dual_res", "sparsity"):
        assert np.all(np.isfinite(h[name]))


def test_admm_learner_recovers_planted_1d_filters(dtype):
    D, S = planted_1d(dtype=dtype)
    res = learn_conv_dictionary(S, 6, K_LEN, 0.2, **LEARN_KW)
    assert res.filters.dtype == dtype and res.loop.status == "completed"
    match = best_match(res.filters, D)
    assert np.sum(match > 0.95) >= 3, match
    loss = res.loop.history["loss"]
    assert loss[-1] < 0.7 * loss[0]
    np.testing.assert_allclose(loss[-1], float(cdl_objective(res.filters, jnp.asarray(S), res.codes, 0.2)),
                               rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_coding_step_is_the_cbpdn_solver_with_the_dictionary_learning_balancing(x64):
    """The coefficient update of ``admm_step`` is ``cbpdn_admm_solver`` run by ``iterate`` from the persisted ADMM
    state, with SPORCO's dictionary-learning rule as its ``rho_balancing`` option (rho doubled / halved every 10
    iterations, for ever)."""
    from sparsejax.pursuit.csc import RhoBalancing, cbpdn_admm_solver
    from sparsejax.solve import iterate

    _, S = planted_1d(seed=6, dtype=np.float64)
    S = jnp.asarray(S[:3])
    state = LC.admm_init(jnp.asarray(np.random.default_rng(7).normal(size=(4, 1, K_LEN))), S, 0.2, x_rho=200.0)
    new, _ = LC.admm_step(state, S, 0.2, x_iter=25, d_iter=1)
    rule = RhoBalancing(period=10, ratio=10.0, scaling=2.0, auto_scaling=False, target=1.0)
    lam = jnp.full((1, 1, 1), 0.2)
    solver = cbpdn_admm_solver(state.d.g, S[:, None], lam, state.x.rho, 1.8, state.x.z, rho_balancing=rule,
                               auto_rho_iter=None, chunk=4, state=state.x)
    ref = iterate(solver, max_iter=25, tol=0.0, mode="scan").state
    np.testing.assert_allclose(np.asarray(new.x.z), np.asarray(ref.z), rtol=0, atol=1e-12)
    assert float(new.x.rho) == pytest.approx(float(ref.rho), rel=1e-12) and int(new.x.k) == 25
    e = np.log2(float(new.x.rho) / 200.0)
    assert e == pytest.approx(round(e), abs=1e-9) and round(e) != 0          # balanced, by powers of 2


def test_optax_learner_decreases_objective():
    import optax

    D, S = planted_1d(seed=4)
    res = learn_conv_dictionary(S, 6, K_LEN, 0.2, method="optax", n_steps=60, optimizer=optax.adam(3e-2),
                                progress=False)
    loss = res.loop.history["loss"]
    assert res.loop.status == "completed"
    assert np.mean(loss[-5:]) < 0.9 * np.mean(loss[:5])
    assert np.all(np.diff(loss[-20:]) <= 1e-4 * loss[0])      # settled: non-increasing at the end
    np.testing.assert_allclose(np.linalg.norm(np.asarray(res.filters).reshape(6, -1), axis=1), 1.0, rtol=1e-5)


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    _, S = planted_1d(seed=5)
    kw = dict(LEARN_KW, n_steps=20)
    full = learn_conv_dictionary(S, 6, K_LEN, 0.2, **kw)
    part = learn_conv_dictionary(S, 6, K_LEN, 0.2, checkpoint_dir=tmp_path, checkpoint_every=4, stop_after=10, **kw)
    assert part.loop.status == "stopped" and part.loop.steps == 10
    rest = learn_conv_dictionary(S, 6, K_LEN, 0.2, checkpoint_dir=tmp_path, checkpoint_every=4, **kw)
    assert rest.loop.resumed_from == 10 and rest.loop.steps == 20
    np.testing.assert_array_equal(np.asarray(rest.filters), np.asarray(full.filters))
    np.testing.assert_array_equal(np.asarray(rest.codes), np.asarray(full.codes))
    np.testing.assert_array_equal(rest.loop.history["loss"], full.loop.history["loss"])


MESH_SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    from sparsejax.distributed import batch_mesh
    from sparsejax.learn.conv import learn_conv_dictionary
    assert jax.device_count() == 2, jax.devices()
    rng = np.random.default_rng(0)
    S = rng.normal(size=(3, 16, 16))
    kw = dict(n_steps=12, progress=False, zero_mean=True, key=jax.random.PRNGKey(2))
    ref = learn_conv_dictionary(S, 4, (3, 3), 0.2, **kw)
    out = learn_conv_dictionary(S, 4, (3, 3), 0.2, mesh=batch_mesh(), **kw)
    np.testing.assert_allclose(np.asarray(out.filters), np.asarray(ref.filters), atol=1e-10)
    np.testing.assert_allclose(np.asarray(out.codes), np.asarray(ref.codes), atol=1e-10)
    for k in ("loss", "sparsity", "x_primal_res", "d_primal_res", "d_rho"):
        np.testing.assert_allclose(out.loop.history[k], ref.loop.history[k], rtol=1e-9)
    assert out.codes.addressable_shards[0].data.shape == (3, 2, 16, 16)   # each device holds half the maps
    try:
        learn_conv_dictionary(S, 3, (3, 3), 0.2, mesh=batch_mesh(), progress=False)
    except ValueError as e:
        assert "multiple of the 2 devices" in str(e)
    else:
        raise AssertionError("3 filters on 2 devices must be refused")
    print("OK")
    """
)


@pytest.mark.slow  # 12-30 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_admm_learner_filters_split_over_devices_equals_single_device():
    assert "OK" in run_on_host_devices(MESH_SCRIPT, 2)


@pytest.mark.parametrize("bad, match", [
    (dict(images=np.full((2, 16), np.nan, np.float32)), "NaN"),
    (dict(images=np.zeros((2, 2, 8, 8), np.float32)), "shape"),
    (dict(images=np.zeros(16, np.float32)), "shape"),
    (dict(filter_size=32), "larger than the images"),
    (dict(images=np.zeros((2, 8, 8), np.float32), filter_size=(4,)), "shape"),
    (dict(n_filters=0), "n_filters"),
    (dict(method="ksvd"), "method"),
    (dict(lam=-1.0), "lam"),
])
def test_bad_inputs(bad, match):
    kw = dict(images=np.zeros((2, 16), np.float32), n_filters=2, filter_size=4, lam=0.1)
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        learn_conv_dictionary(kw.pop("images"), kw.pop("n_filters"), kw.pop("filter_size"), kw.pop("lam"),
                              progress=False, n_steps=1, **kw)


def test_int_images_type_error():
    with pytest.raises(TypeError, match="images"):
        learn_conv_dictionary(np.zeros((2, 16), np.int32), 2, 4, 0.1, progress=False)


# ----------------------------------------------------------------------------------------------------
# pictures
# ----------------------------------------------------------------------------------------------------
def test_filters_to_image_places_scaled_tiles():
    f = np.arange(2 * 1 * 2 * 3, dtype=np.float64).reshape(2, 1, 2, 3) - 5.0
    img = filters_to_image(f, ncols=2, pad=1)
    assert img.shape == (1 + 2 + 1, 1 + 2 * (3 + 1))
    np.testing.assert_allclose(img[1:3, 1:4], 0.5 + 0.5 * f[0, 0] / 5.0)
    np.testing.assert_allclose(img[1:3, 5:8], 0.5 + 0.5 * f[1, 0] / 6.0)
    assert img[0].min() == 1.0 and img.min() >= 0.0 and img.max() <= 1.0
    one_d = filters_to_image(np.ones((3, 1, 4)))
    assert one_d.shape == (3 * 2 + 1, 4 + 2)


# ----------------------------------------------------------------------------------------------------
# the `learn` subcommand
# ----------------------------------------------------------------------------------------------------
def _ns(**kw):
    base = dict(images=None, kind="conv", atoms=4, size=4, lam=0.3, steps=3, checkpoint_dir=None,
                out=None, crop=16, max_images=2, seed=0, sparsity=None, method=None, quiet=True)
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_learn_conv_on_folder(tmp_path):
    from sparsejax.cli.learn import run_learn
    from sparsejax.datasets.images import save_image

    rng = np.random.default_rng(6)
    folder = tmp_path / "imgs"
    for i in range(2):
        save_image(folder / f"im{i}.png", rng.random((16, 20)))
    out = tmp_path / "dict.npz"
    assert run_learn(_ns(images=str(folder), out=str(out), crop=None)) == 0   # crop: the smallest side, 16
    with np.load(out) as z:
        filters = z["filters"]
        assert filters.shape == (4, 1, 4, 4)
        np.testing.assert_allclose(np.linalg.norm(filters.reshape(4, -1), axis=1), 1.0, rtol=1e-5)
        assert np.all(np.isfinite(z["loss"]))
    assert out.with_suffix(".png").is_file()


def test_cli_learn_dense_bundled(tmp_path):
    pytest.importorskip("sparsejax.learn.dense")
    from sparsejax.cli.learn import run_learn

    out = tmp_path / "dense.npz"
    assert run_learn(_ns(kind="dense", atoms=8, size=4, out=str(out), steps=2, sparsity=2)) == 0
    with np.load(out) as z:
        D = z["dictionary"]
        assert D.shape == (16, 8)
        np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0, rtol=1e-4)
    assert out.with_suffix(".png").is_file()


def test_cli_learn_bad_folder(tmp_path, capsys):
    from sparsejax.cli.learn import run_learn

    assert run_learn(_ns(images=str(tmp_path / "missing"), out=str(tmp_path / "d.npz"))) == 2
    assert "missing" in capsys.readouterr().err
