"""Derivatives of the Lasso codes: finite differences in float64 for y, lam and D in each mode, the exact
support formula, unrolled == checkpointed, implicit == unrolled at convergence, a convolutional operator,
the generic fixed point, and an Optax sanity run."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparsejax.conv.operator import Conv
from sparsejax.dictionary import normalize_atoms
from sparsejax.differentiate import fixed_point_implicit, lasso_codes
from sparsejax.operators import Dense
from sparsejax.shrink import soft

MODES = ["scan", "checkpoint", "implicit"]
# tight convergence: the scan modes run past support identification into the linear regime
KW = {"scan": dict(max_iter=600), "checkpoint": dict(max_iter=600),
      "implicit": dict(tol=1e-14, max_iter=5000)}


def _problem(dtype=np.float64, n=16, m=24, seed=0):
    """3-sparse signal with a little noise; at lam = 0.1 the support {2, 7, 19} is stable
    (smallest |a_S| ~ 0.86, largest off-support |D^T r| ~ 0.07 < lam)."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    D = normalize_atoms(jax.random.normal(k1, (n, m), dtype))
    a0 = jnp.zeros(m, dtype).at[jnp.array([2, 7, 19])].set(jnp.array([1.5, -2.0, 1.0], dtype))
    y = D @ a0 + 0.02 * jax.random.normal(k2, (n,), dtype)
    return D, y, jnp.asarray(0.1, dtype)


def _weights(m, dtype):
    return jnp.cos(jnp.arange(m, dtype=dtype) * 0.7) + 0.5


def _fd(f, x, v, h=1e-6):
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


@pytest.mark.parametrize("mode", MODES)
def test_finite_differences(mode, x64):
    D, y, lam = _problem()
    c = _weights(D.shape[1], D.dtype)
    kw = KW[mode]

    def loss(D, y, lam):
        a = lasso_codes(D, y, lam, mode=mode, **kw)
        return jnp.sum(c * a) + 0.5 * jnp.sum(a * a)

    gD, gy, glam = jax.grad(loss, argnums=(0, 1, 2))(D, y, lam)
    kv = jax.random.split(jax.random.PRNGKey(3), 2)
    vD = jax.random.normal(kv[0], D.shape, D.dtype)
    vy = jax.random.normal(kv[1], y.shape, y.dtype)
    fd_D = _fd(lambda X: loss(X, y, lam), D, vD)
    fd_y = _fd(lambda X: loss(D, X, lam), y, vy)
    fd_lam = _fd(lambda X: loss(D, y, X), lam, 1.0)
    np.testing.assert_allclose(jnp.vdot(gD, vD), fd_D, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jnp.vdot(gy, vy), fd_y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(glam, fd_lam, rtol=1e-6, atol=1e-8)
    assert abs(float(glam)) > 1e-2  # a non-trivial derivative was checked


def test_implicit_equals_support_formula(x64):
    """da/dy = D_S (D_S^T D_S)^{-1} on S and 0 off S; da_S/dlam = -(D_S^T D_S)^{-1} sign(a_S)."""
    D, y, lam = _problem()
    a = lasso_codes(D, y, lam, mode="implicit", **KW["implicit"])
    S = np.flatnonzero(np.asarray(a))
    assert list(S) == [2, 7, 19]
    Dn = np.asarray(D)
    G = Dn[:, S].T @ Dn[:, S]
    J = jax.jacrev(lambda y: lasso_codes(D, y, lam, mode="implicit", **KW["implicit"]))(y)
    want = np.zeros((D.shape[1], D.shape[0]))
    want[S] = np.linalg.solve(G, Dn[:, S].T)
    np.testing.assert_allclose(J, want, rtol=1e-10, atol=1e-12)
    dlam = jax.jacrev(lambda l: lasso_codes(D, y, l, mode="implicit", **KW["implicit"]))(lam)
    want = np.zeros(D.shape[1])
    want[S] = -np.linalg.solve(G, np.sign(np.asarray(a)[S]))
    np.testing.assert_allclose(dlam, want, rtol=1e-10, atol=1e-12)
    # per-atom weights: the derivative is per coordinate, -(G^{-1})_{:, j} sign(a_j) for j in S
    lam_vec = jnp.full(D.shape[1], lam)
    Jl = jax.jacrev(lambda l: lasso_codes(D, y, l, mode="implicit", **KW["implicit"]))(lam_vec)
    want = np.zeros((D.shape[1], D.shape[1]))
    want[np.ix_(S, S)] = -np.linalg.solve(G, np.diag(np.sign(np.asarray(a)[S])))
    np.testing.assert_allclose(Jl, want, rtol=1e-10, atol=1e-12)
    # envelope theorem on the objective: dF*/dlam = ||a*||_1
    sol_obj = jax.grad(lambda l: lasso_codes(D, y, l, mode="implicit", return_solution=True,
                                             **KW["implicit"]).objective)(lam)
    np.testing.assert_allclose(sol_obj, np.abs(np.asarray(a)).sum(), rtol=1e-10)


def test_unrolled_equals_checkpointed():
    dtype = np.float32
    D, y, lam = _problem(dtype)
    c = _weights(D.shape[1], D.dtype)

    def g(mode):
        return jax.grad(lambda D, y, lam: jnp.sum(c * lasso_codes(D, y, lam, mode=mode, max_iter=40, L=4.0)),
                        argnums=(0, 1, 2))(D, y, lam)

    # the same arithmetic, recomputed: equal up to the rounding of XLA's (re)fused mat-vecs in the backward pass
    # (y and lam gradients come out bit-identical on CPU; the D gradient's outer-product sums may be reordered)
    eps = np.finfo(dtype).eps
    for a, b in zip(g("scan"), g("checkpoint")):
        np.testing.assert_allclose(a, b, rtol=0, atol=200 * eps * float(jnp.abs(a).max()))
    # and the forward values are the 40-step FISTA iterate of the pursuit module
    from sparsejax.pursuit.ista import fista

    np.testing.assert_array_equal(lasso_codes(D, y, lam, max_iter=40, L=4.0),
                                  fista(D, y, lam, L=4.0, max_iter=40, tol=0.0, mode="scan").codes)


def test_implicit_matches_unrolled_at_convergence(dtype):
    D, y, lam = _problem(dtype)
    c = _weights(D.shape[1], D.dtype)
    kw = {"scan": dict(max_iter=600), "implicit": dict(tol=1e-7 if dtype == np.float32 else 1e-14,
                                                           max_iter=5000)}
    gu, gi = [jax.grad(lambda D, y: jnp.sum(c * lasso_codes(D, y, lam, mode=m, **kw[m])), argnums=(0, 1))(D, y)
              for m in ("scan", "implicit")]
    tol = 2e-3 if dtype == np.float32 else 1e-9
    for a, b in zip(gu, gi):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_convolutional_operator_and_cg(x64):
    """A 1-D convolutional dictionary: implicit (matrix-free CG) == implicit (dense Gram) == FD in the filters."""
    key = jax.random.PRNGKey(7)
    k1, k2, k3 = jax.random.split(key, 3)
    filters = jax.random.normal(k1, (2, 1, 5))
    filters = filters / jnp.linalg.norm(filters, axis=-1, keepdims=True)
    op = Conv(filters, (1, 24))
    codes = jnp.zeros(op.code_shape).at[0, 3].set(1.2).at[1, 14].set(-1.0).at[0, 19].set(0.8)
    y = op.apply(codes) + 0.01 * jax.random.normal(k2, op.signal_shape)
    lam = 0.05
    w = jax.random.normal(k3, op.code_shape)

    def loss(f, mode, **kw):
        return jnp.sum(w * lasso_codes(Conv(f, (1, 24)), y, lam, mode=mode, **kw))

    g_cg = jax.grad(loss)(filters, "implicit", tol=1e-14, max_iter=20000, linear_solver="cg")
    g_dense = jax.grad(loss)(filters, "implicit", tol=1e-14, max_iter=20000, linear_solver="dense")
    np.testing.assert_allclose(g_cg, g_dense, rtol=1e-8, atol=1e-10)
    v = jax.random.normal(jax.random.PRNGKey(9), filters.shape)
    fd = _fd(lambda f: loss(f, "implicit", tol=1e-14, max_iter=20000), filters, v)
    np.testing.assert_allclose(jnp.vdot(g_cg, v), fd, rtol=1e-6, atol=1e-8)
    assert float(jnp.abs(g_cg).max()) > 1e-3


def test_nonneg_and_vmap(x64):
    """Non-negative Lasso: implicit derivative == FD; vmapped over signals the D-gradient is the sum."""
    D, y, lam = _problem()
    y = jnp.abs(D) @ jnp.zeros(D.shape[1]).at[jnp.array([1, 5])].set(jnp.array([1.0, 2.0])) + 0.0 * y
    Dp = Dense(jnp.abs(D))
    c = _weights(D.shape[1], D.dtype)
    kw = dict(mode="implicit", tol=1e-14, max_iter=20000, prox="nonneg_soft")

    def loss(y):
        return jnp.sum(c * lasso_codes(Dp, y, lam, **kw))

    a = lasso_codes(Dp, y, lam, **kw)
    assert float(a.min()) >= 0 and int((a > 0).sum()) >= 1
    v = jax.random.normal(jax.random.PRNGKey(4), y.shape)
    np.testing.assert_allclose(jnp.vdot(jax.grad(loss)(y), v), _fd(loss, y, v), rtol=1e-6, atol=1e-8)

    Y = jnp.stack([y, 0.8 * y])

    def batch_loss(atoms):
        A = jax.vmap(lambda s: lasso_codes(atoms, s, lam, mode="implicit", tol=1e-14, max_iter=5000))(Y)
        return jnp.sum(A @ c)

    single = sum(jax.grad(lambda at: jnp.sum(c * lasso_codes(at, s, lam, mode="implicit", tol=1e-14,
                                                            max_iter=5000)))(D) for s in Y)
    np.testing.assert_allclose(jax.grad(batch_loss)(D), single, rtol=1e-9, atol=1e-11)


def test_fixed_point_implicit_is_the_lasso_derivative(x64):
    D, y, lam = _problem()
    L = float(jnp.linalg.eigvalsh(D.T @ D)[-1])
    c = _weights(D.shape[1], D.dtype)

    def ista_map(x, p):
        D, y, lam = p
        return soft(x - D.T @ (D @ x - y) / L, lam / L)

    def loss_fp(p):
        return jnp.sum(c * fixed_point_implicit(ista_map, jnp.zeros(D.shape[1]), p, tol=1e-14, max_iter=50000))

    def loss_lasso(p):
        return jnp.sum(c * lasso_codes(*p, mode="implicit", **KW["implicit"]))

    g1, g2 = jax.grad(loss_fp)((D, y, lam)), jax.grad(loss_lasso)((D, y, lam))
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mode", [pytest.param("scan", marks=pytest.mark.slow), "implicit"])
def test_optax_learns_dictionary(mode):
    """Gradient steps through the pursuit move a perturbed dictionary towards codes of the true one."""
    D, _, lam = _problem(np.float32)
    k1, k2 = jax.random.split(jax.random.PRNGKey(11))
    A = jnp.zeros((8, D.shape[1])).at[jnp.arange(8)[:, None], jax.random.randint(k1, (8, 2), 0, 24)].set(1.5)
    Y = A @ D.T
    target = jax.vmap(lambda y: lasso_codes(D, y, lam, max_iter=300))(Y)
    D0 = normalize_atoms(D + 0.15 * jax.random.normal(k2, D.shape))
    kw = dict(max_iter=300) if mode == "scan" else dict(tol=1e-6, max_iter=2000)

    def loss(Dc):
        codes = jax.vmap(lambda y: lasso_codes(Dc, y, lam, mode=mode, **kw))(Y)
        return 0.5 * jnp.mean(jnp.sum((codes - target) ** 2, axis=1))

    opt = optax.adam(0.01)
    st = opt.init(D0)
    vg = jax.jit(jax.value_and_grad(loss))
    Dc, losses = D0, []
    for _ in range(8):
        v, g = vg(Dc)
        losses.append(float(v))
        upd, st = opt.update(g, st, Dc)
        Dc = optax.apply_updates(Dc, upd)
    losses.append(float(loss(Dc)))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_bad_arguments():
    D, y, lam = _problem(np.float32)
    with pytest.raises(ValueError, match="grad"):
        lasso_codes(D, y, lam, grad="backprop")
    with pytest.raises(ValueError, match="mode"):
        lasso_codes(D, y, lam, mode="backprop")
    with pytest.raises(ValueError, match="not both"):
        lasso_codes(D, y, lam, mode="scan", grad="unrolled")
    with pytest.raises(ValueError, match="prox must be one of \\('soft', 'nonneg_soft'\\)"):
        lasso_codes(D, y, lam, prox="hard")
    with pytest.raises(ValueError, match="max_iter"):
        lasso_codes(D, y, lam, max_iter=0)
    with pytest.raises(ValueError, match="linear_solver"):
        lasso_codes(D, y, lam, mode="implicit", linear_solver="qr")
    with pytest.raises(ValueError, match="lam"):
        lasso_codes(D, y, -1.0)
    with pytest.raises(ValueError, match="y must have"):
        lasso_codes(D, y[:-1], lam)
    with pytest.raises(ValueError, match="L must"):
        lasso_codes(D, y, lam, L=0.0)
    with pytest.raises(TypeError, match="step_fn"):
        fixed_point_implicit(None, y, (D,))


@pytest.mark.parametrize("grad, mode", [("unrolled", "scan"), ("checkpointed", "checkpoint"), ("implicit", "implicit")])
def test_grad_is_a_deprecated_alias_of_mode(grad, mode):
    D, y, lam = _problem(np.float32)
    c = _weights(D.shape[1], D.dtype)
    with pytest.warns(DeprecationWarning, match=f"mode='{mode}'"):
        old = jax.grad(lambda y: jnp.sum(c * lasso_codes(D, y, lam, grad=grad, max_iter=50)))(y)
    new = jax.grad(lambda y: jnp.sum(c * lasso_codes(D, y, lam, mode=mode, max_iter=50)))(y)
    np.testing.assert_array_equal(old, new)


def test_while_mode_runs_to_convergence_and_is_forward_differentiable(x64):
    """mode="while": the implicit mode's forward values; a jvp in y equals the implicit mode's derivative."""
    D, y, lam = _problem()
    kw = dict(tol=1e-14, max_iter=5000)
    sol = lasso_codes(D, y, lam, mode="while", return_solution=True, **kw)
    assert bool(sol.converged) and int(sol.num_steps) < 5000 and int(sol.status) == 0
    np.testing.assert_array_equal(sol.codes, lasso_codes(D, y, lam, mode="implicit", **kw))
    v = jax.random.normal(jax.random.PRNGKey(5), y.shape)
    _, tangent = jax.jvp(lambda y: lasso_codes(D, y, lam, mode="while", **kw), (y,), (v,))
    J = jax.jacrev(lambda y: lasso_codes(D, y, lam, mode="implicit", **kw))(y)
    np.testing.assert_allclose(tangent, J @ v, rtol=1e-9, atol=1e-11)
