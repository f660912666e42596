"""FGSM and PGD (``sparsejax.nn.attacks``) against closed forms, and the Wilson interval.

* FGSM on a linear model is the exact worst case of the l_inf ball: its perturbation has l_inf norm eps and
  raises the loss -y w^T x by exactly eps ||w||_1 (no perturbation of the ball raises it more); binary logistic:
  x' = x - eps y sign(w); multi-class: the sign of W^T (softmax - e_y).
* PGD: with steps = 1, alpha = eps it is FGSM; on a linear model it reaches the same vertex; on a tiny trained
  MLP it stays in the eps ball and the box and lowers the accuracy at least as much as FGSM.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import tol_for
from sparsejax.nn import attacks
from sparsejax.nn.attacks import fgsm, pgd, wilson_interval


def _logistic(w, b):
    """Binary logistic loss log(1 + exp(-y (w^T x + b))), labels y in {-1, +1}; per example."""
    return lambda x, y: jax.nn.softplus(-y * (x @ w + b))


def test_fgsm_is_the_worst_case_of_the_ball_for_a_linear_loss(dtype):
    rng = np.random.default_rng(5)
    d, B, eps = 20, 7, 0.15
    w = jnp.asarray(rng.standard_normal(d), dtype)
    x = jnp.asarray(rng.standard_normal((B, d)), dtype)
    y = jnp.asarray(rng.choice([-1.0, 1.0], B), dtype)
    loss = lambda v, t: -t * (v @ w)  # noqa: E731
    xa = fgsm(loss, x, y, eps, lo=-jnp.inf, hi=jnp.inf)
    tol = tol_for(dtype, 1e-5, 1e-12)
    np.testing.assert_allclose(jnp.max(jnp.abs(xa - x), axis=1), eps, rtol=tol)
    gain = loss(xa, y) - loss(x, y)
    np.testing.assert_allclose(gain, eps * jnp.sum(jnp.abs(w)) * jnp.ones(B), rtol=tol)
    # no other vertex of the ball does better (random vertices)
    signs = jnp.asarray(rng.choice([-1.0, 1.0], (64, B, d)), dtype)
    others = jax.vmap(lambda s: loss(x + eps * s, y) - loss(x, y))(signs)
    assert bool(jnp.all(others <= gain[None] + tol * jnp.sum(jnp.abs(w))))
    # PGD stays in the ball and does at least as well as FGSM (it reaches the same vertex)
    xp = pgd(loss, x, y, eps, 4, lo=-jnp.inf, hi=jnp.inf)
    assert float(jnp.max(jnp.abs(xp - x))) <= eps * (1 + tol)
    assert bool(jnp.all(loss(xp, y) >= loss(xa, y) - tol * jnp.sum(jnp.abs(w))))


def test_attacks_jit_with_traced_sizes():
    rng = np.random.default_rng(6)
    w = jnp.asarray(rng.standard_normal(5), jnp.float32)
    x = jnp.asarray(rng.uniform(0.3, 0.7, (3, 5)), jnp.float32)
    y = jnp.asarray([1.0, -1.0, 1.0], jnp.float32)
    loss = _logistic(w, 0.0)
    jf = jax.jit(lambda v, e: fgsm(loss, v, y, e))
    jp = jax.jit(lambda v, e, s: pgd(loss, v, y, e, s))
    np.testing.assert_allclose(jf(x, 0.1), fgsm(loss, x, y, 0.1), atol=1e-7)
    np.testing.assert_allclose(jp(x, 0.1, 3), pgd(loss, x, y, 0.1, 3), atol=1e-7)
    np.testing.assert_array_equal(jp(x, 0.1, 0), x)                       # steps traced, 0: the clean input


def test_fgsm_linear_binary_closed_form(dtype):
    rng = np.random.default_rng(0)
    d, B, eps = 12, 9, 0.3
    w = jnp.asarray(rng.standard_normal(d), dtype)
    x = jnp.asarray(rng.standard_normal((B, d)), dtype)
    y = jnp.asarray(rng.choice([-1.0, 1.0], B), dtype)
    loss = _logistic(w, 0.2)
    xa = fgsm(loss, x, y, eps, lo=-jnp.inf, hi=jnp.inf)
    # grad_x = -y sigma(-y s) w, so the step is -eps y sign(w): the maximiser of the loss over the l_inf ball
    np.testing.assert_allclose(xa - x, -eps * y[:, None] * jnp.sign(w)[None], rtol=0, atol=tol_for(dtype, 1e-6, 1e-14))
    s0, s1 = y * (x @ w + 0.2), y * (xa @ w + 0.2)
    np.testing.assert_allclose(s0 - s1, eps * jnp.sum(jnp.abs(w)) * jnp.ones(B), rtol=tol_for(dtype, 1e-5, 1e-12))
    # PGD reaches the same vertex (alpha = eps/2, 3 steps) and steps = 1, alpha = eps is FGSM itself
    np.testing.assert_allclose(pgd(loss, x, y, eps, 3, alpha=eps / 2, lo=-jnp.inf, hi=jnp.inf), xa,
                               atol=tol_for(dtype, 1e-6, 1e-14))
    np.testing.assert_allclose(pgd(loss, x, y, eps, 1, alpha=eps, lo=-jnp.inf, hi=jnp.inf), xa,
                               atol=tol_for(dtype, 1e-6, 1e-14))
    np.testing.assert_array_equal(pgd(loss, x, y, eps, 0), x)          # no step: the clean input


def test_fgsm_linear_multiclass_direction(dtype):
    rng = np.random.default_rng(1)
    d, C, B, eps = 10, 4, 6, 0.05
    W = jnp.asarray(rng.standard_normal((d, C)), dtype)
    x = jnp.asarray(rng.uniform(0.2, 0.8, (B, d)), dtype)
    y = jnp.asarray(rng.integers(0, C, B), jnp.int32)
    loss = lambda v, t: optax.softmax_cross_entropy_with_integer_labels(v @ W, t)  # noqa: E731
    xa = fgsm(loss, x, y, eps)                                     # inside [0, 1]: no clipping is active
    p = jax.nn.softmax(x @ W, axis=1)
    g = (p - jax.nn.one_hot(y, C, dtype=p.dtype)) @ W.T              # closed-form gradient of the CE
    np.testing.assert_allclose(xa, x + eps * jnp.sign(g), atol=tol_for(dtype, 1e-6, 1e-14))


def _tiny_trained_mlp():
    """A 2-layer MLP trained on two noisy Gaussian classes in [0, 1]^16 (seeded, full batch Adam)."""
    rng = np.random.default_rng(2)
    n, d = 400, 16
    mu = rng.uniform(0.3, 0.7, (2, d))
    y = rng.integers(0, 2, n)
    x = np.clip(mu[y] + 0.12 * rng.standard_normal((n, d)), 0, 1).astype(np.float32)
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    params = {"W1": 0.3 * jax.random.normal(k1, (d, 32)), "b1": jnp.zeros((1, 32)),
              "W2": 0.3 * jax.random.normal(k2, (32, 2)), "b2": jnp.zeros((1, 2))}

    def logits(p, v):
        return jnp.tanh(v @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def ce(p, v, t):
        return optax.softmax_cross_entropy_with_integer_labels(logits(p, v), t)

    tx = optax.adam(0.03)
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)

    @jax.jit
    def train(p):
        def step(c, _):
            p, s = c
            g = jax.grad(lambda q: ce(q, x, y).mean())(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(step, (p, tx.init(p)), None, length=200)[0][0]

    return train(params), logits, ce, x, y


def test_pgd_in_ball_and_not_weaker_than_fgsm():
    params, logits, ce, x, y = _tiny_trained_mlp()
    acc = lambda v: float(jnp.mean(jnp.argmax(logits(params, v), 1) == y))  # noqa: E731
    loss = lambda v, t: ce(params, v, t)  # noqa: E731
    assert acc(x) > 0.9
    for eps in (0.03, 0.06, 0.1):
        xf = fgsm(loss, x, y, eps)
        xp = pgd(loss, x, y, eps, 10)
        xr = pgd(loss, x, y, eps, 10, key=jax.random.PRNGKey(4))
        for xa in (xf, xp, xr):
            assert float(jnp.max(jnp.abs(xa - x))) <= eps * (1 + 1e-6)
            assert float(jnp.min(xa)) >= 0.0 and float(jnp.max(xa)) <= 1.0
        # PGD keeps per example the iterate of largest loss: its loss dominates every step's, and at this
        # model its accuracy is at most FGSM's
        assert acc(xp) <= acc(xf)
        assert acc(xf) < acc(x)
        assert bool(jnp.all(loss(xp, y) >= loss(x, y) - 1e-6))
    # FGSM = PGD with one full step on a nonlinear model too
    np.testing.assert_allclose(pgd(loss, x, y, 0.05, 1, alpha=0.05), fgsm(loss, x, y, 0.05), atol=1e-7)


def test_attack_input_validation():
    loss = _logistic(jnp.ones(3), 0.0)
    x, y = jnp.zeros((2, 3)), jnp.ones(2)
    with pytest.raises(ValueError, match="eps"):
        fgsm(loss, x, y, -0.1)
    with pytest.raises(ValueError, match="steps"):
        pgd(loss, x, y, 0.1, -1)
    with pytest.raises(ValueError, match="alpha"):
        pgd(loss, x, y, 0.1, 2, alpha=-0.1)
    with pytest.raises(TypeError, match="loss_fn"):
        pgd("not a function", x, y, 0.1, 2)
    with pytest.raises(TypeError, match="x"):
        fgsm(loss, jnp.zeros((2, 3), jnp.int32), y, 0.1)
    with pytest.raises(ValueError, match="batch"):
        fgsm(loss, jnp.zeros(()), y, 0.1)


def test_wilson_interval():
    lo, hi = wilson_interval(50, 100)
    np.testing.assert_allclose([lo, hi], [0.40383, 0.59617], atol=2e-5)
    # closed form at k = 0: [0, z^2 / (n + z^2)]; the interval always contains k / n
    z = 1.959964
    lo, hi = wilson_interval(0, 40)
    np.testing.assert_allclose([lo, hi], [0.0, z * z / (40 + z * z)], atol=1e-12)
    k = np.arange(0, 41)
    lo, hi = wilson_interval(k, 40)
    assert np.all((lo <= k / 40 + 1e-12) & (k / 40 <= hi + 1e-12))


def test_public_names():
    assert set(attacks.__all__) == {"fgsm", "pgd", "wilson_interval"}
