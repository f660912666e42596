"""Adversarial attacks in the l_inf ball, and the binomial confidence interval of an accuracy under attack.

An attack perturbs an input x (a batch of B examples) within ||x' - x||_inf <= eps, and within the valid input
range [lo, hi], so as to increase a per-example loss l(x_b, y_b) (for a classifier: the cross-entropy, so that
the decision flips).

* FGSM, the fast gradient sign method (Goodfellow, Shlens & Szegedy, "Explaining and harnessing adversarial
  examples", ICLR 2015): one step to the vertex of the ball that maximises the first-order model of the loss,

      x' = clip(x + eps sign(grad_x l(x, y)), lo, hi),

  since max_{||d||_inf <= eps} g^T d = eps ||g||_1 is attained at d = eps sign(g). For a loss linear in x
  (l = -y w^T x + c) the model is exact: FGSM increases the loss by exactly eps ||w||_1, the most any
  perturbation of the ball can.
* PGD, projected gradient ascent (Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards deep learning models
  resistant to adversarial attacks", ICLR 2018): repeated sign steps, each projected back onto the ball and the
  box,

      x_{t+1} = clip(x + clip(x_t + alpha sign(grad_x l(x_t, y)) - x, -eps, eps), lo, hi),

  from x_0 = x (or a uniform random point of the ball); per example the iterate of largest loss is returned.
  With one step of size alpha = eps it is FGSM.

Both are pure functions of arrays: they run under ``jax.jit`` and ``jax.vmap`` (``pgd``'s number of steps may
be traced). The loss is any ``loss_fn(x, y) -> (B,)`` whose b-th entry depends on example b only (the gradient
of the sum is then the per-example gradient).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import _validate as V

__all__ = ["fgsm", "pgd", "wilson_interval"]


def _check_attack(loss_fn, x, eps):
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (x, y) -> per-example losses, got {type(loss_fn).__name__}")
    x = V.as_float_array("x", x)
    if x.ndim < 1:
        raise ValueError("x must be a batch (B, ...) of inputs, got a scalar")
    V.check_nonnegative("eps", eps)
    return x


def fgsm(loss_fn: Callable, x, y, eps, lo=0.0, hi=1.0) -> jax.Array:
    """Fast gradient sign method: x' = clip(x + eps sign(grad_x sum_b l(x_b, y_b)), lo, hi).

    The maximiser over ||x' - x||_inf <= eps of the loss's first-order model (Goodfellow, Shlens & Szegedy,
    "Explaining and harnessing adversarial examples", ICLR 2015, sec. 4); exact for a loss linear in x.

    Args:
      loss_fn: ``loss_fn(x, y) -> (B,)`` per-example losses (each depending on its own example only).
      x: (B, ...) floating inputs.
      y: labels (anything ``loss_fn`` accepts).
      eps: l_inf attack size >= 0 (traced allowed).
      lo, hi: the valid input range (``-jnp.inf, jnp.inf`` for none).

    Returns:
      The adversarial batch, same shape and dtype as x.

    Raises:
      TypeError for a non-callable ``loss_fn`` or non-floating ``x``; ValueError for a scalar ``x`` or a
      negative ``eps``.

    Example: on a linear classifier the loss grows by exactly eps ||w||_1 = 0.1 x 3.5.
      >>> import jax.numpy as jnp
      >>> from sparsejax.nn.attacks import fgsm
      >>> w = jnp.array([1.0, -2.0, 0.5])
      >>> loss = lambda x, y: -y * (x @ w)              # per-example losses, labels y in {-1, +1}
      >>> x, y = jnp.zeros((2, 3)), jnp.array([1.0, -1.0])
      >>> xa = fgsm(loss, x, y, 0.1, lo=-jnp.inf, hi=jnp.inf)
      >>> round(float(jnp.max(jnp.abs(xa - x))), 6), [round(float(v), 6) for v in loss(xa, y) - loss(x, y)]
      (0.1, [0.35, 0.35])
    """
    x = _check_attack(loss_fn, x, eps)
    g = jax.grad(lambda v: jnp.sum(loss_fn(v, y)))(x)
    return jnp.clip(x + eps * jnp.sign(g), lo, hi)


def pgd(loss_fn: Callable, x, y, eps, steps, alpha=None, lo=0.0, hi=1.0, key=None) -> jax.Array:
    """Projected gradient ascent on the loss in the l_inf ball, keeping per example the iterate of largest loss:
    x_{t+1} = clip(x + clip(x_t + alpha sign(g_t) - x, -eps, eps), lo, hi), g_t = grad_x l(x_t, y).

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards deep learning models resistant to adversarial attacks",
    ICLR 2018, sec. 2.1 (the start at x unless ``key`` is given; they start at a random point of the ball).

    Args:
      loss_fn: ``loss_fn(x, y) -> (B,)`` per-example losses.
      x: (B, ...) clean floating inputs.
      y: labels.
      eps: l_inf radius >= 0.
      steps: number of gradient steps >= 0 (an int, traced allowed: a ``lax.while_loop``); 0 returns x.
      alpha: step size >= 0 (default 2.5 eps / steps).
      lo, hi: valid input range.
      key: optional PRNG key for a uniform random start in the ball; None starts at x.

    Returns:
      The adversarial batch: within eps of x in l_inf and within [lo, hi]; per example the iterate
      x_1 ... x_steps of largest loss. With steps = 1, alpha = eps and no key it equals ``fgsm``.

    Raises:
      TypeError / ValueError as ``fgsm``; ValueError for negative ``steps`` or ``alpha``.

    Example: on a linear classifier three half steps reach FGSM's vertex, the worst case of the ball.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.nn.attacks import fgsm, pgd
      >>> w = jnp.array([1.0, -2.0, 0.5])
      >>> loss = lambda x, y: -y * (x @ w)
      >>> x, y = jnp.full((2, 3), 0.5), jnp.array([1.0, -1.0])
      >>> xp = jax.jit(lambda v: pgd(loss, v, y, 0.1, 3, alpha=0.05))(x)
      >>> bool(jnp.allclose(xp, fgsm(loss, x, y, 0.1))), bool(jnp.max(jnp.abs(xp - x)) <= 0.1 + 1e-7)
      (True, True)
    """
    x = _check_attack(loss_fn, x, eps)
    V.check_nonnegative("steps", steps)
    if alpha is not None:
        V.check_nonnegative("alpha", alpha)
    eps = jnp.asarray(eps, x.dtype)
    steps = jnp.asarray(steps, jnp.int32)
    alpha = 2.5 * eps / jnp.maximum(steps, 1).astype(x.dtype) if alpha is None else jnp.asarray(alpha, x.dtype)
    B = x.shape[0]
    start = x if key is None else jnp.clip(x + jax.random.uniform(key, x.shape, x.dtype, -1.0, 1.0) * eps, lo, hi)

    def f(v):
        return loss_fn(v, y)

    expand = (B,) + (1,) * (x.ndim - 1)

    def keep(t, xt, lt, best, best_loss):
        better = (lt > best_loss) & (t > 0)          # x_0 is the start, not an attack iterate
        return jnp.where(better.reshape(expand), xt, best), jnp.where(better, lt, best_loss)

    def body(carry):
        t, xt, best, best_loss = carry
        lt, pull = jax.vjp(f, xt)                    # per-example losses and the gradient of their sum
        g = pull(jnp.ones_like(lt))[0]
        best, best_loss = keep(t, xt, lt, best, best_loss)
        xn = jnp.clip(x + jnp.clip(xt + alpha * jnp.sign(g) - x, -eps, eps), lo, hi)
        return t + 1, xn, best, best_loss

    init = (jnp.zeros((), jnp.int32), start, x, jnp.full((B,), -jnp.inf, x.dtype))
    t, xt, best, best_loss = jax.lax.while_loop(lambda c: c[0] < steps, body, init)
    return keep(t, xt, f(xt), best, best_loss)[0]


def wilson_interval(k, n, z: float = 1.959964):
    """Wilson score interval of a binomial proportion k / n (95% for the default z), e.g. an accuracy of k correct
    answers out of n under attack:

        (p + z^2 / (2n) -+ z sqrt(p (1 - p) / n + z^2 / (4 n^2))) / (1 + z^2 / n),   p = k / n.

    E. B. Wilson, "Probable inference, the law of succession, and statistical inference", J. Amer. Statist.
    Assoc. 22(158), 1927. Unlike p -+ z sqrt(p (1 - p) / n) it stays inside [0, 1] and is not empty at k = 0 or
    k = n. Computed on the host in float64 (NumPy).

    Args:
      k: number of successes (scalar or array), 0 <= k <= n.
      n: number of trials (scalar or array) > 0.
      z: the normal quantile of the confidence level.

    Returns:
      ``(lo, hi)``: NumPy float64 arrays (0-d for scalar input).

    Example:
      >>> from sparsejax.nn.attacks import wilson_interval
      >>> lo, hi = wilson_interval(50, 100)
      >>> round(float(lo), 4), round(float(hi), 4)
      (0.4038, 0.5962)
      >>> float(wilson_interval(0, 40)[0])
      0.0
    """
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = k / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half
