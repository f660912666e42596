"""ISTA and FISTA for the Lasso / BPDN problem (REFERENCE A3; Beck & Teboulle, SIAM J. Imaging Sci. 2009).

    F(a) = 1/2 ||y - D a||_2^2 + sum_j lam_j |a_j|        (nonneg: + indicator(a >= 0))

ISTA :  a <- S_{lam/L}(a - D^T(D a - y) / L)
FISTA:  x_k = S_{lam/L}(z_k - grad(z_k)/L),  t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2,
        z_{k+1} = x_k + ((t_k - 1) / t_{k+1}) (x_k - x_{k-1})

Options: backtracking on L (Beck-Teboulle's FISTA with backtracking, factor ``eta``) and adaptive
restart of the momentum (O'Donoghue & Candes 2015, gradient scheme). ``D`` is any linear operator
(dense or convolutional); ``lam`` is a scalar or broadcasts against the codes.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax import shrink
from sparsejax.operators import as_operator
from sparsejax.pursuit.problem import objective_l1, prepare_init, prepare_problem
from sparsejax.solve import Solution, Solver, iterate, relative_change

__all__ = ["ista", "fista", "ista_solver", "fista_solver", "lasso_objective"]


def lasso_objective(D, y, a, lam) -> jax.Array:
    """F(a) = 1/2||y - D a||^2 + sum(lam |a|)."""

    return objective_l1(as_operator(D), y, lam, a)


def _prox(nonneg: bool):
    return shrink.nonneg_soft if nonneg else shrink.soft


class ISTAState(NamedTuple):
    x: jax.Array


class FISTAState(NamedTuple):
    x: jax.Array      # last proximal point x_k
    z: jax.Array      # extrapolated point
    t: jax.Array      # momentum scalar
    L: jax.Array      # current Lipschitz estimate (changes only with backtracking)


def ista_solver(op, y, lam, step, x0, nonneg: bool = False) -> Solver:
    """The (init, step) pair of ISTA with a fixed step size ``step`` (= 1/L)."""
    prox = _prox(nonneg)

    def step_fn(s):
        g = op.adjoint(op.apply(s.x) - y)
        return ISTAState(prox(s.x - step * g, step * lam))

    return Solver(
        init=lambda: ISTAState(x0),
        step=step_fn,
        codes=lambda s: s.x,
        error=lambda a, b: relative_change(a.x, b.x),
        objective=lambda s: objective_l1(op, y, lam, s.x),
    )


def fista_solver(op, y, lam, L, x0, nonneg=False, backtracking=False, restart=False, eta=2.0,
                 max_backtracks=30) -> Solver:
    """The (init, step) pair of FISTA (optionally with backtracking and adaptive restart)."""
    prox = _prox(nonneg)
    dtype = x0.dtype

    def smooth(a):
        r = op.apply(a) - y
        return 0.5 * jnp.sum(r * r), r

    def prox_point(z, Lk):
        f_z, r = smooth(z)
        g = op.adjoint(r)
        return prox(z - g / Lk, lam / Lk), f_z, g

    def step_fn(s):
        if backtracking:
            def not_enough(c):
                Lk, x, f_z, g, i = c
                d = x - s.z
                f_x, _ = smooth(x)
                q = f_z + jnp.sum(d * g) + 0.5 * Lk * jnp.sum(d * d)
                return (f_x > q * (1 + 10 * jnp.finfo(dtype).eps) + jnp.finfo(dtype).tiny) & (i < max_backtracks)

            def grow(c):
                Lk, _, _, _, i = c
                Lk = Lk * eta
                x, f_z, g = prox_point(s.z, Lk)
                return Lk, x, f_z, g, i + 1

            x, f_z, g = prox_point(s.z, s.L)
            Lk, x, _, _, _ = lax.while_loop(not_enough, grow, (s.L, x, f_z, g, jnp.asarray(0)))
        else:
            Lk = s.L
            x, _, _ = prox_point(s.z, Lk)
        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.t * s.t))
        t_cur = s.t
        if restart:
            # gradient restart: momentum off when it points uphill
            bad = jnp.sum((s.z - x) * (x - s.x)) > 0
            t_next = jnp.where(bad, jnp.ones_like(t_next), t_next)
            t_cur = jnp.where(bad, jnp.ones_like(t_cur), t_cur)
        z = x + ((t_cur - 1.0) / t_next) * (x - s.x)
        return FISTAState(x, z, t_next, Lk)

    one = jnp.asarray(1.0, dtype)
    return Solver(
        init=lambda: FISTAState(x0, x0, one, jnp.asarray(L, dtype)),
        step=step_fn,
        codes=lambda s: s.x,
        error=lambda a, b: relative_change(a.x, b.x),
        objective=lambda s: objective_l1(op, y, lam, s.x),
    )


def _check_common(max_iter, tol, mode, step, name="step"):
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    V.check_nonnegative("tol", tol)
    V.check_choice("mode", mode, ("while", "scan"))
    if step is not None:
        V.check_nonnegative(name, step, strict=True)


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "history"))
def _ista(op, y, lam, step, x0, tol, *, max_iter, mode, nonneg, history):
    step = 1.0 / op.lipschitz() if step is None else step
    solver = ista_solver(op, y, lam, jnp.asarray(step, y.dtype), x0, nonneg)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode, history=history)


def ista(D, y, lam, *, step=None, x0=None, max_iter: int = 1000, tol=1e-6, mode: str = "while",
         nonneg: bool = False, history: bool = False) -> Solution:
    """ISTA for min_a 1/2||y - D a||^2 + lam ||a||_1 (one signal; batch with ``jax.vmap``).

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      y: the signal, shape ``D.signal_shape``.
      lam: l1 weight, >= 0; scalar or broadcastable to the codes (per-atom weights).
      step: step size; default 1/L with L = ||D||_2^2. Steps above 2/L diverge (reported in the result).
      x0: warm start (default zeros).
      max_iter, tol: stop when ||a_k - a_{k-1}|| / ||a_k|| <= tol or after max_iter steps.
      mode: "while" (early stop) or "scan" (fixed count, reverse-differentiable).
      nonneg: constrain a >= 0 (shrinkage ReLU(z - lam/L)).
      history: per-step objective (scan mode).

    Returns:
      ``Solution`` (codes, num_steps, converged, diverged, objective, ...).

    Rate (T1): F(a_k) - F* <= L ||a_0 - a*||^2 / (2k).
    """
    op, y, lam, dtype = prepare_problem(D, y, lam)
    _check_common(max_iter, tol, mode, step)
    x0 = prepare_init(x0, op, dtype)
    return _ista(op, y, lam, step, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                 nonneg=nonneg, history=history)


@partial(jax.jit, static_argnames=("max_iter", "mode", "nonneg", "history", "backtracking", "restart"))
def _fista(op, y, lam, L, x0, tol, *, max_iter, mode, nonneg, history, backtracking, restart):
    if L is None:
        L = op.lipschitz()
    solver = fista_solver(op, y, lam, L, x0, nonneg, backtracking, restart)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode, history=history)


def fista(D, y, lam, *, L=None, step=None, x0=None, max_iter: int = 1000, tol=1e-6, mode: str = "while",
          nonneg: bool = False, backtracking: bool = False, restart: bool = False,
          history: bool = False) -> Solution:
    """FISTA for min_a 1/2||y - D a||^2 + lam ||a||_1 (one signal; batch with ``jax.vmap``).

    Args are those of ``ista``, plus:
      L: Lipschitz constant (default ||D||_2^2; the starting value when backtracking, default 1).
      step: alternatively the step size 1/L.
      backtracking: find L by the Beck-Teboulle backtracking rule (factor 2), no ||D|| needed.
      restart: adaptive momentum restart (O'Donoghue & Candes 2015).

    Rate (T1): F(a_k) - F* <= 2 L ||a_0 - a*||^2 / (k + 1)^2.
    """
    op, y, lam, dtype = prepare_problem(D, y, lam)
    _check_common(max_iter, tol, mode, step)
    if L is not None and step is not None:
        raise ValueError("give either L or step, not both")
    if L is not None:
        V.check_nonnegative("L", L, strict=True)
    if step is not None:
        L = 1.0 / jnp.asarray(step, dtype)
    if L is None and backtracking:
        L = 1.0
    L = None if L is None else jnp.asarray(L, dtype)
    x0 = prepare_init(x0, op, dtype)
    return _fista(op, y, lam, L, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                  nonneg=nonneg, history=history, backtracking=backtracking, restart=restart)
