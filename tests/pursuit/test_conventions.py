"""The conventions of the dense pursuits: ``prox=`` (names, rejected values), ``Solution.status`` (converged, max
steps, non-finite input under jit), the deprecated aliases, and the batch helpers (chunks, refill)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax.pursuit as P
from sparsejax.operators import Dense
from sparsejax.pursuit import _chunks, admm, problem
from sparsejax.solve import Status

D = np.linalg.qr(np.random.default_rng(0).standard_normal((8, 8)))[0][:, :6].astype(np.float32)   # orthonormal atoms
Y = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)


def _one_signal_pursuits(prox):
    """Every single-signal pursuit of the package with the given prox (name -> codes-returning call)."""
    return {
        "thresholding": lambda y: P.thresholding(D, y, lam=0.1, prox=prox),
        "omp": lambda y: P.omp(D, y, k=3, prox=prox),
        "ista": lambda y: P.ista(D, y, 0.1, prox=prox),
        "fista": lambda y: P.fista(D, y, 0.1, prox=prox),
        "bpdn_admm": lambda y: P.bpdn_admm(D, y, 0.1, prox=prox),
        "bpdn_constrained_admm": lambda y: P.bpdn_constrained_admm(D, y, 1.0, prox=prox),
    }


def _batch_pursuits(prox):
    return {
        "omp_batch": lambda Y: P.omp_batch(D, Y, k=3, prox=prox),
        "lasso_batch": lambda Y: P.lasso_batch(D, Y, 0.1, prox=prox),
        "encode": lambda Y: P.encode(D, Y, method="omp", k=3, prox=prox),
    }


@pytest.mark.parametrize("name", list(_one_signal_pursuits("soft")) + list(_batch_pursuits("soft")))
def test_prox_nonneg_soft_gives_nonnegative_codes(name):
    calls = {**_one_signal_pursuits("nonneg_soft"), **_batch_pursuits("nonneg_soft")}
    signed = {**_one_signal_pursuits("soft"), **_batch_pursuits("soft")}
    x = Y if name in _batch_pursuits("soft") else Y[0]
    codes = np.asarray(calls[name](x).codes)
    assert codes.min() >= 0
    assert np.asarray(signed[name](x).codes).min() < 0        # the signed pursuit does use negative codes here


def test_rejected_prox_names_the_argument():
    y = Y[0]
    for name, call in {**_one_signal_pursuits("nope"), **_batch_pursuits("nope")}.items():
        with pytest.raises(ValueError, match="prox"):
            call(Y if name in _batch_pursuits("nope") else y)
    # the algorithms written for the l1 norm take only signed or non-negative codes
    for call in (lambda: P.omp(D, y, k=2, prox="hard"), lambda: P.lasso_batch(D, Y, 0.1, prox="hard"),
                 lambda: P.bpdn_admm(D, y, 0.1, prox=P.ista), lambda: P.duality_gap(D, y, jnp.zeros(6), 0.1, "hard")):
        with pytest.raises(ValueError, match=r"prox must be one of \('soft', 'nonneg_soft'\)"):
            call()
    # the old boolean gets a hint, also in the solver factories
    with pytest.raises(ValueError, match="nonneg=True is now prox='nonneg_soft'"):
        P.fista(D, y, 0.1, prox=True)
    with pytest.raises(ValueError, match="prox"):
        P.fista_solver(Dense(jnp.asarray(D)), jnp.asarray(y), 0.1, 1.0, jnp.zeros(6), False)


def test_prox_callable_and_hard_in_proximal_gradient():
    y = jnp.asarray(Y[0])
    a = P.ista(D, y, 0.1, prox=lambda z, b: jnp.maximum(z - b, 0.0)).codes
    b = P.ista(D, y, 0.1, prox="nonneg_soft").codes
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    # orthonormal atoms: iterative hard thresholding with step 1 is hard thresholding of D^T y at lam
    h = P.ista(D, y, 0.3, step=1.0, prox="hard").codes
    np.testing.assert_allclose(np.asarray(h), np.asarray(P.thresholding(D, y, lam=0.3).codes), atol=1e-5)


def test_status_converged_and_max_steps():
    y = jnp.asarray(Y[0])
    assert int(P.fista(D, y, 0.1).status) == Status.CONVERGED
    sol = P.fista(D, y, 0.1, max_iter=2, tol=0.0)
    assert int(sol.status) == Status.MAX_STEPS and not bool(sol.converged)
    assert int(P.bpdn_admm(D, y, 0.1, max_iter=2).status) == Status.MAX_STEPS
    assert int(P.omp(D, y, k=3).status) == Status.CONVERGED                  # k atoms: OMP's target
    assert int(P.omp(D, y, k=3, tol=1e-3).status) == Status.MAX_STEPS        # 3 atoms of 6 cannot fit y to 1e-3
    assert P.omp_batch(D, Y, k=3, tol=1e-3).status.tolist() == [Status.MAX_STEPS] * 3
    assert P.omp_batch(D, Y, k=3).status.tolist() == [Status.CONVERGED] * 3
    sol = P.lasso_batch(D, Y, 0.1)
    assert sol.status.tolist() == [Status.CONVERGED] * 3
    # no homotopy step and one FISTA step on a coherent dictionary: not solved, not diverged
    rng = np.random.default_rng(3)
    D2 = rng.standard_normal((8, 16)).astype(np.float32)
    sol = P.lasso_batch(D2 / np.linalg.norm(D2, axis=0), Y, 0.1, max_iter=0, fallback_iter=1, max_active=1)
    assert sol.status.tolist() == [Status.MAX_STEPS] * 3


def test_omp_stall_is_max_steps():
    # y orthogonal to every atom: no atom can join; the target (k atoms or an exact fit) is not met
    atoms = np.eye(4, dtype=np.float32)[:, :2]
    y = jnp.asarray([0.0, 0.0, 1.0, 0.0], jnp.float32)
    sol = P.omp(atoms, y, k=2)
    assert int(sol.num_steps) == 0 and not bool(sol.converged) and int(sol.status) == Status.MAX_STEPS
    # the zero signal is an exact fit with no atom
    sol = P.omp(atoms, jnp.zeros(4, jnp.float32), k=2)
    assert int(sol.num_steps) == 0 and int(sol.status) == Status.CONVERGED


@pytest.mark.parametrize("name", list(_one_signal_pursuits("soft")))
def test_nonfinite_signal_under_jit_is_never_converged(name):
    call = _one_signal_pursuits("soft")[name]
    sol = jax.jit(call)(jnp.asarray(Y[0]).at[2].set(jnp.nan))
    assert int(sol.status) in (Status.NONFINITE_INPUT, Status.DIVERGED) and not bool(sol.converged)


@pytest.mark.parametrize("name", list(_batch_pursuits("soft")))
def test_nonfinite_signal_in_a_batch_under_jit(name):
    call = _batch_pursuits("soft")[name]
    sol = jax.jit(call)(jnp.asarray(Y).at[1, 2].set(jnp.inf))
    status = sol.status.tolist()
    assert status[1] in (Status.NONFINITE_INPUT, Status.DIVERGED) and not bool(sol.converged[1])
    assert status[0] == status[2] == Status.CONVERGED


def test_deprecated_aliases_are_the_same_functions():
    pairs = {"admm_bpdn": "bpdn_admm", "admm_constrained": "bpdn_constrained_admm",
             "admm_bpdn_solver": "bpdn_admm_solver", "admm_constrained_solver": "bpdn_constrained_admm_solver"}
    for old, new in pairs.items():
        assert getattr(P, old) is getattr(P, new) is getattr(admm, new) is getattr(admm, old)
        assert old in P.__all__ and new in P.__all__ and old in admm.__all__
    # the objective keeps its old argument order under the old name
    op = Dense(jnp.asarray(D))
    y, a = jnp.asarray(Y[0]), jnp.linspace(-1.0, 1.0, 6)
    assert float(problem.objective_l1(op, y, 0.3, a)) == float(problem.l1_objective(op, y, a, 0.3))
    assert float(problem.l1_objective(op, y, a, 0.3)) == float(P.lasso_objective(D, y, a, 0.3))


def test_map_chunks_on_a_batch_not_divisible_by_the_chunk():
    X = jnp.arange(7 * 3, dtype=jnp.float32).reshape(7, 3)

    def fn(block):
        return {"sum": jnp.sum(block, axis=1), "twice": 2 * block}

    whole = fn(X)
    for chunk in (1, 2, 3, 4, 6, 7, 100, None):
        out = _chunks.map_chunks(fn, X, chunk)
        assert out["sum"].shape == (7,) and out["twice"].shape == (7, 3)
        np.testing.assert_array_equal(np.asarray(out["sum"]), np.asarray(whole["sum"]))
        np.testing.assert_array_equal(np.asarray(out["twice"]), np.asarray(whole["twice"]))
    # a batched pursuit gives the same codes for every chunk (37 = 4 * 8 + 5: padded last chunk)
    rng = np.random.default_rng(2)
    Yb = rng.standard_normal((37, 8)).astype(np.float32)
    ref = P.omp_batch(D, Yb, k=3)
    for chunk in (8, 36):
        sol = P.omp_batch(D, Yb, k=3, chunk=chunk)
        np.testing.assert_allclose(np.asarray(sol.codes), np.asarray(ref.codes), atol=1e-6)
        np.testing.assert_array_equal(np.asarray(sol.status), np.asarray(ref.status))


def test_refill_solves_every_pending_entry():
    todo = jnp.array([True, False, True, True, False, True, True])
    values = jnp.arange(7.0)

    def solve(carry, sel, valid):
        todo, v = carry
        return _chunks.scatter(todo, sel, jnp.zeros_like(valid)), _chunks.scatter(v, sel, -_chunks.gather(v, sel))

    left, out = _chunks.refill(lambda c: c[0], solve, (todo, values), 2, 10)
    assert not bool(jnp.any(left))
    np.testing.assert_array_equal(np.asarray(out), np.where(np.asarray(todo), -np.arange(7.0), np.arange(7.0)))
    # max_rounds bounds the work: one round of 2 leaves the others pending
    left, _ = _chunks.refill(lambda c: c[0], solve, (todo, values), 2, 1)
    assert int(jnp.sum(left)) == 3
