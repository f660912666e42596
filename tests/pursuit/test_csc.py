"""Convolutional sparse coding: Fourier-domain ADMM (cbpdn_admm), masked and non-negative (prox="nonneg_soft")
variants, conv thresholding.

The maths first: KKT conditions of the (masked) CBPDN objective in float64, agreement with FISTA on the same
``Conv`` operator and with SPORCO's ConvBPDN; then jit/vmap behaviour, tracing counts and input errors.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sparsejax as sj
from sparsejax.conv.operator import Conv, normalize_filters
from sparsejax.pursuit import csc
from sparsejax.pursuit.csc import cbpdn_admm, conv_thresholding


def _problem(M=4, C=1, h=5, N=16, Cs=None, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((M, C, h, h))
    f /= np.sqrt(np.sum(f ** 2, axis=(1, 2, 3), keepdims=True))
    s = rng.standard_normal((Cs or C, N, N))
    return jnp.asarray(f, dtype), jnp.asarray(s, dtype)


def _kkt(D, s, z, lam, W=None, nonneg=False):
    """(max |g| off support, max |g - lam sign z| on support), g = D^T W^2 (s - D z) (nonneg: g off support <= lam)."""
    r = s - D.apply(z)
    if W is not None:
        r = W * W * r
    g = D.adjoint(r)
    on = z != 0
    off = jnp.where(on, 0.0, g if nonneg else jnp.abs(g))
    return float(jnp.max(off)), float(jnp.max(jnp.where(on, jnp.abs(g - lam * jnp.sign(z)), 0.0)))


def _obj(D, s, z, lam, W=None):
    r = D.apply(z) - s
    if W is not None:
        r = W * r
    return float(0.5 * jnp.sum(r * r) + lam * jnp.sum(jnp.abs(z)))


# ----------------------------------------------------------------------------------------------------------
# maths
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("M,C", [(4, 1), (4, 3), (2, 3)])
def test_kkt_and_fista_agree(x64, M, C):
    f, s = _problem(M=M, C=C)
    D = Conv(f, s.shape, method="fft")
    lam = 0.3
    sol = cbpdn_admm(D, s, lam, max_iter=3000, tol=1e-10)
    assert bool(sol.converged) and not bool(sol.diverged)
    off, on = _kkt(D, s, sol.codes, lam)
    assert off <= lam * (1 + 1e-6)
    assert on <= 1e-6
    ref = sj.fista(D, s, lam, max_iter=20000, tol=1e-13)
    F = _obj(D, s, sol.codes, lam)
    assert abs(F - float(ref.objective)) <= 1e-8 * F
    assert abs(float(sol.objective) - F) <= 1e-10 * F
    # the state reports the residuals it stopped on
    assert float(sol.state.primal_res) <= 1e-10 and float(sol.state.dual_res) <= 1e-10


def test_single_channel_filters_multichannel_signal(x64):
    """Single-channel dictionary, 3-channel signal: each channel its own maps (codes (C, M, *N))."""
    f, s = _problem(C=1, Cs=3, seed=1)
    lam = 0.2
    sol = cbpdn_admm(f, s, lam, max_iter=3000, tol=1e-10)
    assert sol.codes.shape == (3, 4, 16, 16)
    D1 = Conv(f, (1, 16, 16))
    parts = [cbpdn_admm(D1, s[c:c + 1], lam, max_iter=3000, tol=1e-10) for c in range(3)]
    assert float(sol.objective) == pytest.approx(sum(float(p.objective) for p in parts), rel=1e-9)
    for c in range(3):
        off, on = _kkt(D1, s[c:c + 1], sol.codes[c], lam)
        assert off <= lam * (1 + 1e-6) and on <= 1e-6


def test_matches_sporco_convbpdn(x64):
    cbpdn = pytest.importorskip("sporco.admm.cbpdn")
    import sporco.fft

    sporco.fft.pyfftw_planner_effort = "FFTW_ESTIMATE"
    f, s = _problem(seed=2)
    lam = 0.25
    D = Conv(f, s.shape)
    # SPORCO layout: filters (h, w, M), image (H, W); its maps come back as (H, W, 1, 1, M)
    Ds = np.transpose(np.asarray(f[:, 0]), (1, 2, 0))
    to_ours = lambda X: jnp.asarray(np.transpose(np.asarray(X).reshape(16, 16, 4), (2, 0, 1)))

    # identical iterations: fixed rho, over-relaxation 1.8, 25 steps
    opt = cbpdn.ConvBPDN.Options({"Verbose": False, "MaxMainIter": 25, "RelStopTol": 0.0, "rho": 2.0,
                                  "RelaxParam": 1.8, "AutoRho": {"Enabled": False}})
    b = cbpdn.ConvBPDN(Ds, np.asarray(s[0]), lam, opt)
    Y = to_ours(b.solve())
    ours = cbpdn_admm(D, s, lam, rho=2.0, auto_rho=False, max_iter=25, mode="scan")
    np.testing.assert_allclose(np.asarray(ours.codes), np.asarray(Y), atol=1e-9)

    # the optimum: SPORCO's defaults (AutoRho on, relaxation 1.8) for 120 iterations
    opt = cbpdn.ConvBPDN.Options({"Verbose": False, "MaxMainIter": 120, "RelStopTol": 1e-7, "RelaxParam": 1.8})
    b = cbpdn.ConvBPDN(Ds, np.asarray(s[0]), lam, opt)
    F_sp = _obj(D, s, to_ours(b.solve()), lam)
    # same objective convention: SPORCO's ObjFun is F at its non-sparse iterate X (option fEvalX)
    assert _obj(D, s, to_ours(b.X), lam) == pytest.approx(float(b.getitstat().ObjFun[-1]), rel=1e-9)
    sol = cbpdn_admm(D, s, lam, max_iter=3000, tol=1e-10)
    assert float(sol.objective) == pytest.approx(F_sp, rel=1e-4)
    assert float(sol.objective) <= F_sp * (1 + 1e-12)


def test_float32(dtype):
    f, s = _problem(dtype=dtype)
    sol = cbpdn_admm(f, s, 0.3, max_iter=500, tol=1e-4)
    assert sol.codes.dtype == dtype and bool(sol.converged)
    with jax.enable_x64(True):
        f64, s64 = _problem()
        ref = cbpdn_admm(f64, s64, 0.3, max_iter=3000, tol=1e-10)
        F = float(ref.objective)
    assert abs(float(sol.objective) - F) <= 2e-3 * F


# ----------------------------------------------------------------------------------------------------------
# variants
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("C", [1, 3])
def test_mask_of_ones_equals_unmasked(x64, C):
    f, s = _problem(C=C, seed=3)
    a = cbpdn_admm(f, s, 0.3, max_iter=3000, tol=1e-11)
    b = cbpdn_admm(f, s, 0.3, max_iter=3000, tol=1e-11, mask=jnp.ones((1, 16, 16)))
    assert float(b.objective) == pytest.approx(float(a.objective), rel=1e-10)
    np.testing.assert_allclose(np.asarray(b.codes), np.asarray(a.codes), atol=1e-7)


@pytest.mark.parametrize("C", [1, 3])
def test_masked_kkt(x64, C):
    """Inpainting mask (30% missing): KKT of 1/2||W(Dx - s)||^2 + lam||x||_1."""
    f, s = _problem(C=C, seed=4)
    W = jnp.asarray((np.random.default_rng(5).random((1, 16, 16)) > 0.3).astype(np.float64))
    W = jnp.broadcast_to(W, s.shape)
    lam = 0.3
    sol = cbpdn_admm(f, s, lam, max_iter=5000, tol=1e-10, mask=W)
    assert bool(sol.converged)
    D = Conv(f, s.shape)
    off, on = _kkt(D, s, sol.codes, lam, W)
    assert off <= lam * (1 + 1e-6) and on <= 1e-6
    assert float(sol.objective) == pytest.approx(_obj(D, s, sol.codes, lam, W), rel=1e-10)


def test_zero_boundary_by_padding_and_mask(x64):
    """Non-periodic boundary: pad by h - 1, mask the padding; the padded circular synthesis restricted to the
    signal equals the 'valid'-boundary Conv (atoms may hang over the edges), so the KKT of that problem holds."""
    rng = np.random.default_rng(6)
    M, h, N = 4, 5, 16
    f = normalize_filters(jnp.asarray(rng.standard_normal((M, 1, h, h))))
    y = jnp.asarray(rng.standard_normal((1, N, N)))
    P = N + h - 1
    sp = jnp.zeros((1, P, P)).at[:, h - 1:, h - 1:].set(y)
    W = jnp.zeros((1, P, P)).at[:, h - 1:, h - 1:].set(1.0)
    lam = 0.2
    sol = cbpdn_admm(f, sp, lam, max_iter=5000, tol=1e-10, mask=W)
    Dv = Conv(f, (1, N, N), boundary="valid")
    assert Dv.code_shape == sol.codes.shape
    off, on = _kkt(Dv, y, sol.codes, lam)
    assert off <= lam * (1 + 1e-6) and on <= 1e-6


def test_nonneg(x64):
    f, s = _problem(C=3, seed=7)
    D = Conv(f, s.shape)
    lam = 0.3
    sol = cbpdn_admm(D, s, lam, max_iter=3000, tol=1e-10, prox="nonneg_soft")
    assert float(jnp.min(sol.codes)) >= 0.0
    off, on = _kkt(D, s, sol.codes, lam, nonneg=True)
    assert off <= lam * (1 + 1e-6) and on <= 1e-6
    ref = sj.fista(D, s, lam, max_iter=20000, tol=1e-13, prox="nonneg_soft")
    assert float(sol.objective) == pytest.approx(float(ref.objective), rel=1e-8)


def test_rho_balancing_rules():
    """SPORCO's two AutoRho rules as one RhoBalancing: the adaptive ConvBPDN rule and the doubling rule of dictionary
    learning (period, ratio, target), never at k = 0, nor from ``until`` on, nor on non-finite residuals."""
    one = jnp.asarray(1.0)
    f = lambda rule, r, s, k, xi=one, until=None: float(rule.factor(one, jnp.asarray(r), jnp.asarray(s), k, xi,  # noqa: E731
                                                                    until))
    adaptive = csc.RhoBalancing()
    assert f(adaptive, 4.0, 1.0, 3) == pytest.approx(2.0)              # sqrt(r / s)
    assert f(adaptive, 1.0, 9.0, 3) == pytest.approx(1.0 / 3.0)
    assert f(adaptive, 1e8, 1.0, 3) == pytest.approx(1000.0)           # capped at tau
    assert f(adaptive, 1.1, 1.0, 3) == 1.0                             # inside the ratio mu = 1.2
    assert f(adaptive, 4.0, 1.0, 0) == 1.0 and f(adaptive, 4.0, 1.0, 5, until=5) == 1.0
    assert f(adaptive, 4.0, 1.0, 3, xi=jnp.asarray(4.0)) == 1.0        # r / s on its target xi
    doubling = csc.RhoBalancing(period=10, ratio=10.0, scaling=2.0, auto_scaling=False, target=1.0)
    assert f(doubling, 50.0, 1.0, 9) == 2.0 and f(doubling, 1.0, 50.0, 19) == 0.5
    assert f(doubling, 50.0, 1.0, 8) == 1.0                            # not a multiple of the period
    assert f(doubling, 5.0, 1.0, 9) == 1.0                             # inside the ratio
    assert f(doubling, np.inf, 1.0, 9) == 1.0                          # a non-finite residual changes nothing


def test_rho_balancing_option_of_the_solver(x64):
    """Any balancing rule reaches the same optimum; with the doubling rule rho moves by powers of 2 only."""
    f, s = _problem(seed=12)
    lam = 0.3
    ref = cbpdn_admm(f, s, lam, max_iter=3000, tol=1e-10)
    rule = csc.RhoBalancing(period=1, ratio=10.0, scaling=2.0, auto_scaling=False, target=1.0)
    sol = cbpdn_admm(f, s, lam, rho=3.0, rho_balancing=rule, max_iter=3000, tol=1e-10)
    assert bool(sol.converged)
    assert float(sol.objective) == pytest.approx(float(ref.objective), rel=1e-9)
    e = np.log2(float(sol.state.rho) / 3.0)
    assert e == pytest.approx(round(e), abs=1e-9)
    frozen = cbpdn_admm(f, s, lam, rho=3.0, rho_balancing=rule, auto_rho_iter=0, max_iter=50, mode="scan")
    assert float(frozen.state.rho) == 3.0


def test_solver_factory_and_warm_state(x64):
    """cbpdn_admm_solver through iterate is cbpdn_admm; ``state=`` continues a run exactly (the learners' warm
    start); cbpdn_solver is its deprecated alias."""
    assert csc.cbpdn_solver is csc.cbpdn_admm_solver
    f, s = _problem(seed=13)
    lam = jnp.full((1, 1, 1, 1), 0.3)
    x0 = jnp.zeros((1, 4, 16, 16))
    make = lambda **kw: csc.cbpdn_admm_solver(f, s[None], lam, jnp.asarray(16.0), 1.8, x0, **kw)  # noqa: E731
    whole = sj.iterate(make(), max_iter=20, mode="scan")
    np.testing.assert_allclose(np.asarray(whole.codes[0]),
                               np.asarray(cbpdn_admm(f, s, 0.3, rho=16.0, max_iter=20, mode="scan").codes), rtol=0,
                               atol=1e-11)
    half = sj.iterate(make(), max_iter=10, mode="scan")
    rest = sj.iterate(make(state=half.state), max_iter=10, mode="scan")
    np.testing.assert_allclose(np.asarray(rest.codes), np.asarray(whole.codes), rtol=0, atol=1e-11)
    assert int(rest.state.k) == 20
    assert float(rest.state.rho) == pytest.approx(float(whole.state.rho), rel=1e-12)


def test_status_codes(x64):
    f, s = _problem(seed=14)
    ok = cbpdn_admm(f, s, 0.3, max_iter=3000, tol=1e-8)
    short = cbpdn_admm(f, s, 0.3, max_iter=3, tol=1e-8)
    thr = conv_thresholding(f, s, 0.3)
    assert [sj.solve.status_name(x.status) for x in (ok, short, thr)] == ["converged", "max_steps", "converged"]


def test_per_map_lam_and_warm_start(x64):
    f, s = _problem(seed=8)
    D = Conv(f, s.shape)
    lam = jnp.asarray([0.1, 0.2, 0.3, 0.4]).reshape(4, 1, 1)
    sol = cbpdn_admm(D, s, lam, max_iter=3000, tol=1e-10)
    ref = sj.fista(D, s, lam, max_iter=20000, tol=1e-13)
    assert float(sol.objective) == pytest.approx(float(ref.objective), rel=1e-8)
    warm = cbpdn_admm(D, s, lam, x0=sol.codes, max_iter=3000, tol=1e-8)
    assert int(warm.num_steps) < int(sol.num_steps)
    assert float(warm.objective) == pytest.approx(float(sol.objective), rel=1e-8)


def test_scan_history_and_grad(x64):
    f, s = _problem(seed=9)
    sol = cbpdn_admm(f, s, 0.3, max_iter=60, mode="scan", history=True)
    assert sol.history.shape == (60,) and int(sol.num_steps) == 60
    assert float(sol.history[-1]) == pytest.approx(float(sol.objective))
    g = jax.grad(lambda lam: cbpdn_admm(f, s, lam, max_iter=30, mode="scan").objective)(0.3)
    assert np.isfinite(float(g))


# ----------------------------------------------------------------------------------------------------------
# thresholding
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prox", ["soft", "hard", "nonneg_soft"])
def test_conv_thresholding(x64, prox):
    f, s = _problem(C=3, seed=10)
    D = Conv(f, s.shape, method="direct")
    out = conv_thresholding(D, s, 0.8, prox=prox)
    expect = sj.shrink.get(prox)(D.adjoint(s), 0.8)
    np.testing.assert_allclose(np.asarray(out.codes), np.asarray(expect), atol=1e-10)
    r = s - D.apply(out.codes)
    assert float(out.objective) == pytest.approx(0.5 * float(jnp.sum(r * r)))


# ----------------------------------------------------------------------------------------------------------
# jit / vmap / tracing / errors
# ----------------------------------------------------------------------------------------------------------
def test_vmap_batch_per_instance():
    f, _ = _problem(dtype=np.float32)
    rng = np.random.default_rng(11)
    S = jnp.asarray(rng.standard_normal((3, 1, 16, 16)).astype(np.float32))
    S = S * jnp.asarray([1.0, 0.01, 3.0], np.float32).reshape(3, 1, 1, 1)
    D = Conv(f, (1, 16, 16))
    run = jax.jit(jax.vmap(lambda y: cbpdn_admm(D, y, 0.1, max_iter=1000, tol=1e-4)))
    out = run(S)
    assert out.codes.shape == (3, 4, 16, 16)
    assert out.converged.shape == (3,) and out.num_steps.shape == (3,)
    for i in range(3):
        one = cbpdn_admm(D, S[i], 0.1, max_iter=1000, tol=1e-4)
        assert abs(int(out.num_steps[i]) - int(one.num_steps)) <= 2   # float32 round-off may shift a step
        assert bool(out.converged[i])
        scale = float(jnp.max(jnp.abs(one.codes)))
        np.testing.assert_allclose(np.asarray(out.codes[i]), np.asarray(one.codes), atol=1e-3 * scale)
    assert len(set(np.asarray(out.num_steps).tolist())) > 1   # each instance stopped on its own
    # a tiny max_iter: per-instance flags report non-convergence
    short = jax.vmap(lambda y: cbpdn_admm(D, y, 0.1, max_iter=2, tol=1e-8))(S)
    assert not bool(jnp.any(short.converged))


def test_no_retrace_when_values_change():
    f, s = _problem(dtype=np.float32)
    kw = dict(max_iter=20, tol=1e-3)
    cbpdn_admm(f, s, 0.1, **kw)
    n0 = csc._cbpdn._cache_size()
    cbpdn_admm(f * 0.5, s + 1.0, 0.2, **kw)
    cbpdn_admm(Conv(f[::-1], s.shape), -s, jnp.float32(0.05), rho=2.0, **kw)
    n1 = csc._cbpdn._cache_size()
    cbpdn_admm(f, s, 0.3, rho=1.5, **kw)
    assert csc._cbpdn._cache_size() - n0 <= 1  # one extra entry at most for the given-rho path
    assert csc._cbpdn._cache_size() == n1


@pytest.mark.parametrize("call,match", [
    (lambda f, s: cbpdn_admm(Conv(f, s.shape, boundary="same"), s, 0.1), "D must be a Conv with boundary"),
    (lambda f, s: cbpdn_admm(jnp.ones((3, 2, 5, 5)), jnp.zeros((3, 16, 16)), 0.1), "s has 3 channel"),
    (lambda f, s: cbpdn_admm(f, s[0], 0.1), "s must have shape"),
    (lambda f, s: cbpdn_admm(Conv(f, (1, 16, 16)), jnp.zeros((1, 12, 12)), 0.1), "spatial shape"),
    (lambda f, s: cbpdn_admm(f, s, -0.1), "lam must be >= 0"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, alpha=2.5), "alpha"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, rho=0.0), "rho must be > 0"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, mask=jnp.ones((3, 5))), "mask of shape"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, x0=jnp.zeros((4, 16, 16))), "x0 must have shape"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, max_iter=10.0), "max_iter"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, mode="fast"), "mode"),
    (lambda f, s: conv_thresholding(f, s, 0.1, prox="firm"), "prox"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, prox="hard"), "prox must be one of .'soft', 'nonneg_soft'."),
    (lambda f, s: cbpdn_admm(f, s, 0.1, rho_balancing=csc.RhoBalancing(period=0)), "period"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, rho_balancing=csc.RhoBalancing(ratio=-1.0)), "ratio"),
    (lambda f, s: cbpdn_admm(f, s, 0.1, chunk=2), "chunk"),
])
def test_bad_inputs_raise_before_tracing(call, match):
    f, s = _problem(M=3, N=16, dtype=np.float32)
    n0 = csc._cbpdn._cache_size()
    with pytest.raises(ValueError, match=match):
        call(f, s)
    assert csc._cbpdn._cache_size() == n0


def test_integer_signal_is_type_error():
    f, _ = _problem(M=3, N=16, dtype=np.float32)
    with pytest.raises(TypeError, match="s must be a real floating-point"):
        cbpdn_admm(f, jnp.zeros((1, 16, 16), jnp.int32), 0.1)
