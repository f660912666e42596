"""ISTA and FISTA for the Lasso / BPDN problem (Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm
for linear inverse problems", SIAM J. Imaging Sci. 2009).

    F(a) = 1/2 ||y - D a||_2^2 + sum_j lam_j |a_j|        (prox="nonneg_soft": + indicator(a >= 0))

ISTA :  a <- S_{lam/L}(a - D^T(D a - y) / L)
FISTA:  x_k = S_{lam/L}(z_k - grad(z_k)/L),  t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2,
        z_{k+1} = x_k + ((t_k - 1) / t_{k+1}) (x_k - x_{k-1})

Options: backtracking on L (Beck-Teboulle's FISTA with backtracking, factor ``eta``) and adaptive
restart of the momentum (O'Donoghue & Candes 2015, gradient scheme). ``D`` is any linear operator
(dense or convolutional); ``lam`` is a scalar or broadcasts against the codes. ``prox`` picks the shrinkage
P (``sparsejax.shrink``: "soft", "nonneg_soft", "hard" or a callable ``(z, threshold) -> z``); S above is "soft".
The reported objective is always the l1 objective F.

Stopping rule (both): the relative proximal-gradient residual ||T(w) - w||_2 / ||T(w)||_2 <= tol, where
T(w) = P_{lam/L}(w - D^T(D w - y) / L) is the proximal-gradient (ISTA) map and w the point the step was taken from
(a_{k-1} for ISTA, the extrapolated z_k for FISTA), so T(w) is the returned iterate. T(w) = w exactly at a solution,
and ||T(w) - w|| L is the norm of the gradient mapping (Beck & Teboulle 2009, Lemma 2.3: F(T(w)) <= F(w)), so the
test measures optimality, is invariant to the scale of y, lam and D, and is reached in float32 as in float64. For
ISTA it is the relative change of the iterates; FISTA's relative change ||x_k - x_{k-1}|| / ||x_k|| instead carries
the momentum and decays much later than the objective (on 64 x 256 Gaussian problems, lam = 0.1, it was still 3e-5
after 1,000 steps with the objective optimal to 5e-7).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax.operators import as_operator
from sparsejax.pursuit.problem import l1_objective, prepare_init, prepare_problem, resolve_prox
from sparsejax.solve import Solution, Solver, check_iteration, iterate, relative_change

__all__ = ["ista", "fista", "ista_solver", "fista_solver", "lasso_objective", "ISTAState", "FISTAState"]


def lasso_objective(D, y, a, lam) -> jax.Array:
    """F(a) = 1/2||y - D a||^2 + sum(lam |a|), for a ``LinearOperator`` or an (n, m) array ``D``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> round(float(sj.lasso_objective(jnp.eye(2), jnp.array([1.0, 0.0]), jnp.array([0.5, 0.0]), 0.2)), 6)
      0.225
    """
    V.check_lasso_point(D, y, a, lam)
    return l1_objective(as_operator(D), y, a, lam)


class ISTAState(NamedTuple):
    """ISTA state: the current codes ``x`` (``Solution.state`` of ``ista``).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.ista(jnp.eye(2), jnp.array([2.0, 0.1]), 0.5).state.x.tolist()
      [1.5, 0.0]
    """

    x: jax.Array


class FISTAState(NamedTuple):
    """FISTA state.

    Attributes:
      x: last proximal point x_k (the codes).
      z: extrapolated point.
      t: momentum scalar.
      L: current Lipschitz estimate (changes only with backtracking).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> float(sj.fista(jnp.eye(2), jnp.array([2.0, 0.1]), 0.5, backtracking=True).state.L) >= 1.0
      True
    """

    x: jax.Array
    z: jax.Array
    t: jax.Array
    L: jax.Array


def _positive_lipschitz(L):
    """L where L > 0, else 1: a zero dictionary (L = ||D||_2^2 = 0) has a zero gradient, and any step size gives its
    solution (codes 0 for lam > 0) instead of the NaN of a step 1 / 0."""
    return jnp.where(L > 0, L, jnp.ones_like(L))


def ista_solver(op, y, lam, step, x0, prox="soft") -> Solver:
    """The (init, step) pair of ISTA, a <- P_{step lam}(a - step D^T(D a - y)), with a fixed step size ``step``
    (= 1/L) from ``x0``; run it with ``sparsejax.solve.iterate``.

    Args:
      op: the dictionary as a ``LinearOperator``. y: the signal. lam: the l1 weight(s). step: the step size.
      x0: the starting codes. prox: the shrinkage P (a name of ``sparsejax.shrink.PROXES`` or a callable).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> op = sj.Dense(jnp.eye(2))
      >>> sol = sj.iterate(sj.ista_solver(op, jnp.array([2.0, -0.1]), 0.5, 1.0, jnp.zeros(2)), max_iter=10)
      >>> sol.codes.tolist(), bool(sol.converged)
      ([1.5, 0.0], True)
    """
    prox = resolve_prox(prox)

    def step_fn(s):
        g = op.adjoint(op.apply(s.x) - y)
        return ISTAState(prox(s.x - step * g, step * lam))

    return Solver(
        init=lambda: ISTAState(x0),
        step=step_fn,
        codes=lambda s: s.x,
        error=lambda a, b: relative_change(a.x, b.x),
        objective=lambda s: l1_objective(op, y, s.x, lam),
    )


def fista_solver(op, y, lam, L, x0, prox="soft", backtracking=False, restart=False, eta=2.0,
                 max_backtracks=30) -> Solver:
    """The (init, step) pair of FISTA from ``x0`` with the Lipschitz estimate ``L``, optionally with the
    Beck-Teboulle backtracking on L (factor ``eta``, at most ``max_backtracks`` growths per step) and the adaptive
    gradient restart of the momentum (O'Donoghue & Candes, "Adaptive restart for accelerated gradient schemes",
    Found. Comput. Math. 2015); run it with ``sparsejax.solve.iterate``. Its ``error`` is the relative
    proximal-gradient residual ||x_k - z_k|| / ||x_k|| (module docstring); ``L = 0`` (a zero dictionary) is taken
    as 1.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> op = sj.Dense(jnp.eye(2))
      >>> solver = sj.fista_solver(op, jnp.array([2.0, -0.1]), 0.5, 1.0, jnp.zeros(2), prox="nonneg_soft")
      >>> sj.iterate(solver, max_iter=50).codes.tolist()
      [1.5, 0.0]
    """
    prox = resolve_prox(prox)
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
    L = _positive_lipschitz(jnp.asarray(L, dtype))
    return Solver(
        init=lambda: FISTAState(x0, x0, one, L),
        step=step_fn,
        codes=lambda s: s.x,
        error=lambda a, b: relative_change(a.z, b.x),   # ||T(z_k) - z_k|| / ||T(z_k)||: see ``fista``
        objective=lambda s: l1_objective(op, y, s.x, lam),
        fixed_point=partial(_prox_grad_map, op, y, lam, prox, L, backtracking),
    )


def _prox_grad_map(op, y, lam, prox, L, backtracking, a):
    """ISTA's map a -> prox(a - D^T (D a - y) / L, lam / L): FISTA's solution is its fixed point, and it contracts
    there (for L >= ||D||_2^2), so ``mode="implicit"`` differentiates through it instead of FISTA's momentum step,
    which never settles. With backtracking the estimate may lie below ||D||_2^2: ||D||_2^2 itself is used. The step
    size does not move the fixed point, so no gradient flows through it."""
    Lfp = lax.stop_gradient(_positive_lipschitz(op.lipschitz()) if backtracking else jnp.asarray(L, a.dtype))
    Lfp = Lfp.astype(a.dtype)
    return prox(a - op.adjoint(op.apply(a) - y) / Lfp, lam / Lfp)


def _check_common(max_iter, tol, mode, step, prox):
    check_iteration(max_iter, tol, mode)
    resolve_prox(prox)
    if step is not None:
        V.check_nonnegative("step", step, strict=True)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "history"))
def _ista(op, y, lam, step, x0, tol, *, max_iter, mode, prox, history):
    step = 1.0 / _positive_lipschitz(op.lipschitz()) if step is None else step
    solver = ista_solver(op, y, lam, jnp.asarray(step, y.dtype), x0, prox)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode, history=history)


def ista(D, y, lam, *, step=None, x0=None, max_iter: int = 1000, tol=1e-6, mode: str = "while",
         prox="soft", history: bool = False) -> Solution:
    """ISTA for min_a 1/2||y - D a||^2 + lam ||a||_1 (one signal; batch with ``jax.vmap``).

    a_{k+1} = P_{lam/L}(a_k - D^T(D a_k - y) / L) (Beck & Teboulle 2009, section 2; Daubechies, Defrise & De Mol,
    "An iterative thresholding algorithm for linear inverse problems with a sparsity constraint", Comm. Pure Appl.
    Math. 2004).

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      y: the signal, shape ``D.signal_shape``.
      lam: l1 weight, >= 0; scalar or broadcastable to the codes (per-atom weights).
      step: step size; default 1/L with L = ||D||_2^2. Steps above 2/L diverge (reported in the result).
      x0: warm start (default zeros).
      max_iter, tol: stop when the relative proximal-gradient residual ||a_k - a_{k-1}|| / ||a_k|| <= tol (module
        docstring), or after max_iter steps.
      mode: a mode of ``sparsejax.solve.iterate``: "while" (early stop) or "scan" (fixed count,
        reverse-differentiable), ...
      prox: the shrinkage: "soft" (default), "nonneg_soft" (constrain a >= 0: ReLU(z - lam/L)), "hard", or a
        callable ``(z, threshold) -> z``.
      history: per-step objective (scan mode).

    Returns:
      ``Solution`` (codes, num_steps, converged, diverged, objective, error, state, history, status).

    Rate: F(a_k) - F* <= L ||a_0 - a*||^2 / (2k) (Beck & Teboulle 2009, theorem 3.1; checked in
    tests/theory/test_t1_rates.py).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sol = sj.ista(jnp.eye(3), jnp.array([2.0, -1.0, 0.1]), 0.5)
      >>> sol.codes.tolist(), bool(sol.converged), sj.solve.status_name(sol.status)
      ([1.5, -0.5, 0.0], True, 'converged')
      >>> sj.ista(jnp.eye(3), jnp.array([2.0, -1.0, 0.1]), 0.5, prox="nonneg_soft").codes.tolist()
      [1.5, 0.0, 0.0]
    """
    op, y, lam, dtype = prepare_problem(D, y, lam)
    _check_common(max_iter, tol, mode, step, prox)
    x0 = prepare_init(x0, op, dtype)
    return _ista(op, y, lam, step, x0, jnp.asarray(tol, dtype), max_iter=max_iter, mode=mode,
                 prox=prox, history=history)


@partial(jax.jit, static_argnames=("max_iter", "mode", "prox", "history", "backtracking", "restart"))
def _fista(op, y, lam, L, x0, tol, *, max_iter, mode, prox, history, backtracking, restart):
    if L is None:
        L = op.lipschitz()
    solver = fista_solver(op, y, lam, L, x0, prox, backtracking, restart)
    return iterate(solver, max_iter=max_iter, tol=tol, mode=mode, history=history)


def fista(D, y, lam, *, L=None, step=None, x0=None, max_iter: int = 1000, tol=1e-6, mode: str = "while",
          prox="soft", backtracking: bool = False, restart: bool = False,
          history: bool = False) -> Solution:
    """FISTA for min_a 1/2||y - D a||^2 + lam ||a||_1 (one signal; batch with ``jax.vmap``).

    x_k = P_{lam/L}(z_k - D^T(D z_k - y)/L), t_{k+1} = (1 + sqrt(1 + 4 t_k^2))/2,
    z_{k+1} = x_k + ((t_k - 1)/t_{k+1})(x_k - x_{k-1}) (Beck & Teboulle 2009, section 4).

    Args are those of ``ista`` (``tol`` bounds the relative proximal-gradient residual ||x_k - z_k|| / ||x_k|| at
    the extrapolated point z_k, module docstring), plus:
      L: Lipschitz constant (default ||D||_2^2; the starting value when backtracking, default 1).
      step: alternatively the step size 1/L.
      backtracking: find L by the Beck-Teboulle backtracking rule (factor 2), no ||D|| needed.
      restart: adaptive momentum restart (O'Donoghue & Candes 2015).

    Rate: F(a_k) - F* <= 2 L ||a_0 - a*||^2 / (k + 1)^2 (Beck & Teboulle 2009, theorem 4.4).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sol = sj.fista(jnp.eye(3), jnp.array([2.0, -1.0, 0.1]), 0.5, restart=True)
      >>> [round(v, 4) for v in sol.codes.tolist()], bool(sol.converged)
      ([1.5, -0.5, 0.0], True)
      >>> sj.fista(jnp.eye(3), jnp.array([2.0, -1.0, 0.1]), 0.5, prox="nope")
      Traceback (most recent call last):
      ...
      ValueError: prox must be one of ('soft', 'hard', 'nonneg_soft') or a callable (z, threshold) -> z, got 'nope'
    """
    op, y, lam, dtype = prepare_problem(D, y, lam)
    _check_common(max_iter, tol, mode, step, prox)
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
                  prox=prox, history=history, backtracking=backtracking, restart=restart)
