"""Numerical failure is reported, never returned as success (issue 13, section 2).

Three classes of problem:
* failure flags under ``jit``: where values cannot be checked before tracing, a non-finite or negative threshold,
  a non-finite signal or dictionary, or an overflow gives a ``Status`` code other than CONVERGED and
  ``converged`` False (thresholding, convolutional thresholding, layered thresholding, the iterative pursuits);
* theorem quantities: where T5 / T6 give no threshold / l1 weight, the bound says so (``has_threshold``,
  ``has_xi``) and no field is NaN;
* bad arguments: a named error before anything is compiled (empty dictionaries, float16, NaN atoms, repeated
  support indices, a string tol, the public helpers).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax import _validate as V
from sparsejax.solve import Status
from sparsejax.theory import multilayer as tm

KEY = jax.random.PRNGKey(0)
D = sj.random_gaussian(KEY, 8, 12)
Y = jax.random.normal(jax.random.PRNGKey(1), (8,))
FILTERS = sj.normalize_filters(jax.random.normal(KEY, (3, 1, 3)))
S = jax.random.normal(jax.random.PRNGKey(2), (1, 16))
NAN, BIG = float("nan"), 1e30
OK, BAD_INPUT, DIVERGED = Status.CONVERGED, Status.NONFINITE_INPUT, Status.DIVERGED


# --------------------------------------------------------------------------------------- failure flags under jit
_thr = jax.jit(lambda D, y, lam: sj.thresholding(D, y, lam=lam, prox="hard"))
_thr_soft = jax.jit(lambda D, y, lam: sj.thresholding(D, y, lam=lam, prox="soft"))
_cthr = jax.jit(lambda f, s, lam: sj.conv_thresholding(f, s, lam, prox="hard"))
_fista = jax.jit(lambda D, y, lam: sj.fista(D, y, lam, max_iter=50))
_cbpdn = jax.jit(lambda f, s, lam: sj.cbpdn_admm(f, s, lam, max_iter=20))

ONE_SHOT = [
    # name, pursuit, (dictionary, signal, lam), expected status
    ("clean", _thr, (D, Y, 0.1), OK),
    ("nan signal", _thr, (D, Y.at[0].set(NAN), 0.1), BAD_INPUT),
    ("nan lam", _thr, (D, Y, NAN), BAD_INPUT),
    ("negative lam", _thr_soft, (D, Y, -1.0), BAD_INPUT),
    ("nan atom", _thr, (D.at[:, 3].set(NAN), Y, 0.1), BAD_INPUT),
    ("overflow", _thr, (D, Y * BIG, 0.1), DIVERGED),
    ("conv clean", _cthr, (FILTERS, S, 0.1), OK),
    ("conv nan signal", _cthr, (FILTERS, S.at[0, 0].set(NAN), 0.1), BAD_INPUT),
    ("conv nan lam", _cthr, (FILTERS, S, NAN), BAD_INPUT),
    ("conv negative lam", _cthr, (FILTERS, S, -1.0), BAD_INPUT),
    ("conv overflow", _cthr, (FILTERS, S * BIG, 0.1), DIVERGED),
    ("fista negative lam", _fista, (D, Y, -1.0), BAD_INPUT),     # ran to objective -2e5, MAX_STEPS, before
    ("cbpdn negative lam", _cbpdn, (FILTERS, S, -1.0), BAD_INPUT),
]


@pytest.mark.parametrize("name, pursuit, args, status", ONE_SHOT, ids=[c[0] for c in ONE_SHOT])
def test_pursuit_flags_under_jit(name, pursuit, args, status):
    sol = pursuit(*args)
    assert int(sol.status) == status, (name, sj.solve.status_name(sol.status))
    assert bool(sol.converged) == (status == OK)
    if status == DIVERGED:
        assert bool(sol.diverged)


def test_one_shot_flags_float64(x64):
    D64, Y64 = D.astype(jnp.float64), Y.astype(jnp.float64)
    assert int(_thr(D64, Y64 * 1e200, 0.1).status) == DIVERGED      # overflows float64 too (r^2 ~ 1e400)
    assert int(_thr(D64, Y64, -0.5).status) == BAD_INPUT
    assert int(_thr(D64, Y64, 0.1).status) == OK


_layered = jax.jit(lambda layers, y, b: sj.layered_thresholding(layers, y, b, prox="hard"))
L1 = sj.Dense(sj.random_gaussian(KEY, 8, 6))
L2 = sj.Dense(sj.random_gaussian(jax.random.PRNGKey(3), 6, 4))
NAN_LAYER = sj.Dense(jnp.full((8, 6), NAN))

LAYERED = [
    # name, layers, y, thresholds, per-layer status, overall status
    ("clean", (L1, L2), Y, (0.1, 0.1), [OK, OK], OK),
    # layer 1 NaN: hard thresholding turns its NaN code into finite zeros in layer 2 (no flag before)
    ("nan first layer", (NAN_LAYER, L2), Y, (0.1, 0.1), [BAD_INPUT, DIVERGED], BAD_INPUT),
    ("nan threshold", (L1, L2), Y, (0.1, NAN), [OK, BAD_INPUT], BAD_INPUT),
    ("negative threshold", (L1, L2), Y, (-0.1, 0.1), [BAD_INPUT, DIVERGED], BAD_INPUT),
    ("nan signal", (L1, L2), Y.at[2].set(NAN), (0.1, 0.1), [BAD_INPUT, DIVERGED], BAD_INPUT),
    ("overflow", (sj.Dense(jnp.eye(8, 6)), sj.Dense(jnp.full((6, 4), 3e38))), jnp.ones(8), (0.5, 0.5),
     [OK, DIVERGED], DIVERGED),                                   # G_2 = 6 * 3e38 = inf in float32
]


@pytest.mark.parametrize("name, layers, y, b, layer_status, status", LAYERED, ids=[c[0] for c in LAYERED])
def test_layered_thresholding_flags_under_jit(name, layers, y, b, layer_status, status):
    sol = _layered(layers, y, b)
    assert sol.layer_status.tolist() == layer_status, name
    assert int(sol.status) == status
    assert bool(sol.converged) == (status == OK)


def test_multilayer_pursuits_flag_negative_weights_under_jit():
    lbp = jax.jit(lambda xi: sj.layered_bp((L1, L2), Y, (0.05, xi), max_iter=20))(-0.1)
    assert lbp.layer_status.tolist()[1] == BAD_INPUT and not bool(lbp.converged)
    ml = jax.jit(lambda lam: sj.ml_ista((L1, L2), Y, (0.0, lam), max_iter=20))(-0.1)
    assert int(ml.status) == BAD_INPUT and not bool(ml.converged)


# --------------------------------------------------------------------------------------- theorem quantities
def _stats(k, p, l0, gmin, gmax):
    return tm.ModelStats(*(jnp.asarray(v, jnp.float32) for v in (k, p, l0, gmin, gmax)))


def test_theorem_says_when_it_gives_no_threshold():
    mu = jnp.array([0.1, 0.1, 0.1])
    ok = _stats([2, 2, 2], [3, 3, 3], [5, 5, 5], [0.6, 2.0, 9.0], [1.0, 2.0, 9.0])
    lt = tm.lt_bound(mu, ok, 0.05)
    assert lt.has_threshold.tolist() == [True, True, True] and lt.guaranteed.tolist() == [True, True, True]
    # layer 1's window is empty (eps0 too large): the theorem gives no threshold for it nor for later layers;
    # before, layers 2 and 3 got threshold (inf - inf) / 2 = NaN
    lt = tm.lt_bound(mu, ok, 0.2)
    assert lt.has_threshold.tolist() == [False, False, False] and not bool(jnp.any(lt.guaranteed))
    # layer 2 fails with a zero patch count: 0 * inf was NaN in eps and l2
    zero_p = _stats([2, 2, 2], [3, 0, 3], [5, 0, 5], [0.6, 0.3, 9.0], [1.0, 2.0, 9.0])
    lt2 = tm.lt_bound(mu, zero_p, 0.05)
    assert lt2.has_threshold.tolist() == [True, False, False] and lt2.guaranteed.tolist() == [True, False, False]
    for bound in (lt, lt2):
        for field, v in bound._asdict().items():
            assert not bool(jnp.any(jnp.isnan(v))), field
        # the stand-in thresholds are finite and usable (nominal window midpoints)
        assert bool(jnp.all(jnp.isfinite(bound.threshold))) and bool(jnp.all(bound.threshold >= 0))
    # layered BP: xi prescribed only after guaranteed layers; never NaN / inf
    lb = tm.lbp_bound(jnp.array([0.1, 0.5, 0.1]), _stats([2, 2, 2], [3, 0, 3], [5, 0, 5], [1, 1, 1], [1, 1, 1]), 0.01)
    assert lb.condition.tolist() == [True, False, True]
    assert lb.has_xi.tolist() == [True, True, False] and lb.guaranteed.tolist() == [True, False, False]
    assert bool(jnp.all(jnp.isfinite(lb.xi)))
    for field, v in lb._asdict().items():
        assert not bool(jnp.any(jnp.isnan(v))), field
    np.testing.assert_allclose(lb.xi[:2], [0.04, 4 * 7.5 * np.sqrt(3) * 0.01], rtol=1e-6)
    # T9's radius with a zero slope (an all-zero layer): 0 / 0 was NaN
    zero = jnp.float32(0.0)
    assert [float(tm._radius_from_affine(zero, jnp.float32(c), jnp.float32(1.0))) for c in (1.0, 0.5)] == [0.0, np.inf]


# --------------------------------------------------------------------------------------- named errors before tracing
def _raises(fn, exc, *fragments):
    with pytest.raises(exc) as info:
        fn()
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))


E0, E1 = jnp.zeros((8, 0)), jnp.zeros((0, 4))
D16, Y16 = np.asarray(D, np.float16), np.asarray(Y, np.float16)
DNAN = D.at[2, 5].set(NAN)
LM = sj.learn.multilayer
F1 = LM.init_filters(KEY, [(4, 3, 2)], (1, 9, 9))
IMG = jax.random.normal(KEY, (4, 1, 9, 9))

NAMED_ERRORS = [
    # empty dictionaries (an IndexError from inside the solver before)
    ("fista, no atom", lambda: sj.fista(E0, Y, 0.1), ValueError, "at least one atom"),
    ("thresholding, no row", lambda: sj.thresholding(E1, jnp.zeros(0), lam=0.1), ValueError, "at least one"),
    ("coherence, no atom", lambda: sj.mutual_coherence(E0), ValueError, "D must have at least one row and one atom"),
    ("lasso_batch, no atom", lambda: sj.lasso_batch(E0, Y[None], 0.1), ValueError, "D must have at least one"),
    # float16 (an XLA / NumPy error from deep inside before)
    ("fista float16", lambda: sj.fista(D16, Y16, 0.1), TypeError, "float16", "float32 or float64"),
    ("coherence float16", lambda: sj.mutual_coherence(D16), TypeError, "D has dtype float16"),
    ("random dictionary float16", lambda: sj.random_gaussian(KEY, 4, 6, jnp.float16), TypeError, "dtype must be"),
    ("conv float16", lambda: sj.conv_thresholding(np.asarray(FILTERS, np.float16), S, 0.1), TypeError, "float16"),
    # NaN atoms (silently a zero atom before)
    ("coherence nan atom", lambda: sj.mutual_coherence(DNAN), ValueError, "D contains NaN", "[5]"),
    ("normalize nan atom", lambda: sj.normalize_atoms(DNAN), ValueError, "D contains NaN"),
    ("babel nan atom", lambda: sj.babel(DNAN, 2), ValueError, "D contains NaN"),
    ("layered nan layer", lambda: sj.layered_thresholding((L1, sj.Dense(jnp.full((6, 4), NAN))), Y, 0.1),
     ValueError, "layers[1]"),
    # repeated support indices (a NaN estimate before)
    ("oracle repeated index", lambda: sj.multilayer.projection_oracle(jnp.eye(3), jnp.eye(3), jnp.ones(3),
                                                                     jnp.array([0, 0])), ValueError, "support2", "[0]"),
    ("holistic mse repeated cosupport", lambda: sj.multilayer.holistic_oracle_mse(
        jnp.eye(4), jnp.eye(4), jnp.array([0, 1, 2]), jnp.array([1, 1]), 0.1), ValueError, "cosupport1"),
    ("oracle nan signal", lambda: sj.multilayer.projection_oracle(jnp.eye(3), jnp.eye(3), jnp.array([1.0, NAN, 0]),
                                                                 jnp.array([0, 1])), ValueError, "y contains NaN"),
    ("oracle mse negative sigma", lambda: sj.multilayer.projection_oracle_mse(jnp.eye(3), jnp.eye(3),
                                                                             jnp.array([0, 1]), -1.0),
     ValueError, "sigma must be >= 0"),
    # a string tol
    ("fista string tol", lambda: sj.fista(D, Y, 0.1, tol="1e-6"), TypeError, "tol", "string '1e-6'"),
    ("check_tol string", lambda: V.check_tol("1e-6"), TypeError, "tol", "string"),
    ("check_tol negative", lambda: V.check_tol(-1e-6), ValueError, "tol must be >= 0"),
    ("omp check string tol", lambda: sj.theory.dense.recover_omp(D, Y[None], 2, "1e-6"), TypeError, "tol"),
    # the public helpers
    ("duality_gap codes shape", lambda: sj.duality_gap(D, Y, jnp.zeros(11), 0.1), ValueError, "a must have shape"),
    ("duality_gap negative lam", lambda: sj.duality_gap(D, Y, jnp.zeros(12), -1.0), ValueError, "lam must be >= 0"),
    ("duality_gap nan signal", lambda: sj.duality_gap(D, Y.at[0].set(NAN), jnp.zeros(12), 0.1), ValueError, "y contains"),
    ("lasso_objective codes shape", lambda: sj.lasso_objective(D, Y, jnp.zeros(11), 0.1), ValueError, "a must have"),
    ("lasso_objective integer y", lambda: sj.lasso_objective(D, np.arange(8), jnp.zeros(12), 0.1), TypeError, "y must"),
    ("evaluate_ml strides", lambda: LM.evaluate_ml(F1, IMG, 0.1, (2, 1), n_iter=2, chunk=2), ValueError, "strides"),
    ("evaluate_ml float stride", lambda: LM.evaluate_ml(F1, IMG, 0.1, (1.5,), n_iter=2, chunk=2), TypeError,
     "strides[0]"),
    ("evaluate_ml nan filter", lambda: LM.evaluate_ml((F1[0].at[0, 0, 0, 0].set(NAN),), IMG, 0.1, (2,), n_iter=2,
                                                       chunk=2), ValueError, "filters[0] contains NaN"),
    ("lista_params negative lam", lambda: sj.nn.lista_params(D, -1.0), ValueError, "lam must be >= 0"),
    ("lista_params L = 0", lambda: sj.nn.lista_params(D, 0.1, L=0.0), ValueError, "L must be > 0"),
    ("lista_params lam shape", lambda: sj.nn.lista_params(D, jnp.ones(5)), ValueError, "lam must have shape"),
    ("lista_params empty", lambda: sj.nn.lista_params(E0, 0.1), ValueError, "D must have at least one"),
]


@pytest.mark.parametrize("name, fn, exc, fragments", [(c[0], c[1], c[2], c[3:]) for c in NAMED_ERRORS],
                         ids=[c[0] for c in NAMED_ERRORS])
def test_named_error_before_compilation(name, fn, exc, fragments):
    _raises(fn, exc, *fragments)


def test_nan_atoms_stay_visible_under_jit():
    """Traced, a NaN atom cannot raise: it must not become a zero atom (coherence 0.75 from the rest, before)."""
    assert bool(jnp.isnan(jax.jit(sj.mutual_coherence)(DNAN)))
    assert bool(jnp.isnan(jax.jit(lambda d: sj.babel(d, 2))(DNAN)))
    N = jax.jit(sj.normalize_atoms)(DNAN)
    assert bool(jnp.all(jnp.isnan(N[:, 5]))) and bool(jnp.all(jnp.isfinite(jnp.delete(N, 5, axis=1))))
    assert bool(jnp.all(jax.jit(sj.normalize_atoms)(D.at[:, 1].set(0.0))[:, 1] == 0))   # a zero atom stays zero
