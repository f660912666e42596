"""ISTA and FISTA for the Lasso / BPDN problem (Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm
for linear inverse problems", SIAM J. Imaging Sci. 2009).

    F(a) = 1/2 ||y - D a||_2^2 + sum_j lam_j |a_j|        (prox="nonneg_soft": + indicator(a >= 0))

ISTA :  a <- S_{lam/L}(a - D^T(D a - y) / L)
FISTA:  x_k = S_{lam/L}(z_k - grad(z_k)/L),  t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2,
        z_{k+1} = x_k + ((t_k - 1) / t_{k+1}) (x_k - x_{k-1})

Options: backtracking on L (Beck-Teboulle's FISTA with backtracking, factor ``eta``: L only grows; or
``backtracking="adaptive"``, Scheinberg, Goldfarb & Bai 2014: each step first tries a smaller L, and the momentum
follows L's changes) and adaptive restart of the momentum (O'Donoghue & Candes 2015, gradient scheme).
``fista_prox_solver`` is the same FISTA for any penalty with a cheap prox (the joint, l1-ball and Elastic Net
forms). ``D`` is any linear operator (dense or convolutional); ``lam`` is a scalar or broadcasts against the codes
(or "auto": 0.1 max |D^T y|, ``sparsejax.pursuit.lam``). ``prox`` picks the shrinkage
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
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax import lax

from sparsejax import _validate as V
from sparsejax.operators import as_operator
from sparsejax.pursuit.lam import resolve_lam
from sparsejax.pursuit.problem import l1_objective, prepare_init, prepare_problem, resolve_prox
from sparsejax.solve import Solution, Solver, check_iteration, iterate, relative_change

__all__ = ["ista", "fista", "ista_solver", "fista_solver", "fista_prox_solver", "lasso_objective", "ISTAState",
           "FISTAState", "check_backtracking", "BACKTRACKING"]


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
      x_prev: the previous proximal point x_{k-1} (adaptive backtracking only, else None; there ``z`` is the point
        x_k was computed from, see ``fista_prox_solver``).

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
    x_prev: Optional[jax.Array] = None


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


BACKTRACKING = (False, True, "adaptive")


def check_backtracking(backtracking):
    """``backtracking`` checked before tracing: False, True (Beck-Teboulle: L only grows) or "adaptive"
    (Scheinberg-Goldfarb-Bai: L may also fall); ValueError naming it otherwise.

    Example:
      >>> from sparsejax.pursuit.ista import check_backtracking
      >>> check_backtracking("adaptive")
      'adaptive'
    """
    if not any(backtracking is b or (isinstance(b, str) and backtracking == b) for b in BACKTRACKING):
        raise ValueError(f"backtracking must be one of {BACKTRACKING}, got {backtracking!r}")
    return backtracking


def fista_prox_solver(op, y, prox_step, penalty, L, x0, *, backtracking=False, restart=False, eta=2.0,
                      decrease=0.9, max_backtracks=30) -> Solver:
    """FISTA for a composite problem min_a 1/2 ||y - D a||^2 + g(a), g convex with a cheap prox, as a ``Solver``
    (the engine of ``fista_solver`` and of the joint, l1-ball and Elastic Net pursuits).

    Args:
      op: the dictionary as a ``LinearOperator`` (or any object with ``apply``, ``adjoint`` and, for
        ``backtracking`` with ``mode="implicit"``, ``lipschitz``).
      y: the signal.
      prox_step: ``(v, Lk) -> prox_{g / Lk}(v)``, the proximal map of g with step 1 / Lk.
      penalty: ``a -> g(a)`` (the objective is 1/2 ||y - D a||^2 + g(a)).
      L: the Lipschitz estimate (the starting value with backtracking); 0 is taken as 1.
      x0: the starting codes.
      backtracking: False (fixed L), True (Beck & Teboulle 2009, section 4: each step multiplies L by ``eta``
        until the quadratic upper bound holds; L never falls) or "adaptive" (Scheinberg, Goldfarb & Bai, "Fast
        first-order methods for composite convex optimization with backtracking", Found. Comput. Math. 2014: each
        step first tries ``decrease`` L, then grows it by ``eta`` until the bound holds, and the momentum
        t_k = (1 + sqrt(1 + 4 (L_k / L_{k-1}) t_{k-1}^2)) / 2 keeps FISTA's guarantee
        F(x_k) - F* <= L_k ||x_0 - x*||^2 / (2 t_k^2) for L that rises and falls).
      restart: the gradient restart of the momentum (O'Donoghue & Candes, "Adaptive restart for accelerated
        gradient schemes", Found. Comput. Math. 2015).
      eta: growth factor of L (> 1). decrease: the factor each adaptive step starts from (in (0, 1]).
      max_backtracks: at most this many growths per step.

    The state is a ``FISTAState``. Without adaptive backtracking its ``z`` is the next extrapolated point; with it,
    ``z`` is the point y_k the step x_k = prox(y_k - grad(y_k) / L_k) was taken from (y_k depends on L_k), and
    ``x_prev`` is x_{k-1}. ``error`` is always the relative proximal-gradient residual ||x_k - y_k|| / ||x_k||.

    Example: non-negative least squares, g = indicator(a >= 0).
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit.ista import fista_prox_solver
      >>> op = sj.Dense(jnp.eye(2))
      >>> solver = fista_prox_solver(op, jnp.array([2.0, -1.0]), lambda v, L: jax.nn.relu(v), lambda a: 0.0,
      ...                            1000.0, jnp.zeros(2), backtracking="adaptive")
      >>> sol = sj.iterate(solver, max_iter=500)
      >>> [round(v, 4) for v in sol.codes.tolist()], int(sol.num_steps) < 100
      ([2.0, 0.0], True)
    """
    check_backtracking(backtracking)
    dtype = x0.dtype
    adaptive = isinstance(backtracking, str)
    slack = 1 + 10 * jnp.finfo(dtype).eps

    def smooth(a):
        r = op.apply(a) - y
        return 0.5 * jnp.sum(r * r), r

    def prox_point(z, Lk):
        return prox_step(z - op.adjoint(op.apply(z) - y) / Lk, Lk)

    def above_bound(x, z, Lk):
        """True where Lk is below the curvature of f along d = x - z: the quadratic bound
        f(x) <= f(z) + <grad f(z), d> + Lk/2 ||d||^2 fails. f is quadratic, so the bound is exactly
        ||D d||^2 <= Lk ||d||^2, which (unlike the difference of f values, lost in rounding once ||d||^2 is below
        eps f) stays exact near the solution: an adaptive L cannot drift below the curvature there."""
        d = x - z
        Dd = op.apply(d)
        return jnp.sum(Dd * Dd) > Lk * jnp.sum(d * d) * slack

    def momentum_off(z, x, x_old):
        """O'Donoghue-Candes gradient restart test: the momentum points uphill."""
        return jnp.sum((z - x) * (x - x_old)) > 0

    def step_fixed(s):
        if backtracking:
            g = op.adjoint(op.apply(s.z) - y)   # the gradient at z, shared by the trials

            def not_enough(c):
                Lk, x, i = c
                return above_bound(x, s.z, Lk) & (i < max_backtracks)

            def grow(c):
                Lk, _, i = c
                Lk = Lk * eta
                return Lk, prox_step(s.z - g / Lk, Lk), i + 1

            Lk, x, _ = lax.while_loop(not_enough, grow, (s.L, prox_step(s.z - g / s.L, s.L), jnp.asarray(0)))
        else:
            Lk = s.L
            x = prox_point(s.z, Lk)
        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * s.t * s.t))
        t_cur = s.t
        if restart:
            bad = momentum_off(s.z, x, s.x)
            t_next = jnp.where(bad, jnp.ones_like(t_next), t_next)
            t_cur = jnp.where(bad, jnp.ones_like(t_cur), t_cur)
        z = x + ((t_cur - 1.0) / t_next) * (x - s.x)
        return FISTAState(x, z, t_next, Lk)

    def step_adaptive(s):
        def trial(Lk):   # y_k depends on L_k through t_k
            t = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * (Lk / s.L) * s.t * s.t))
            z = s.x + ((s.t - 1.0) / t) * (s.x - s.x_prev)
            return t, z, prox_point(z, Lk)

        def not_enough(c):
            Lk, _, z, x, i = c
            return above_bound(x, z, Lk) & (i < max_backtracks)

        def grow(c):
            Lk, i = c[0] * eta, c[-1]
            return (Lk, *trial(Lk), i + 1)

        L0 = s.L * decrease
        Lk, t, z, x, _ = lax.while_loop(not_enough, grow, (L0, *trial(L0), jnp.asarray(0)))
        # no step (x = y_k: a fixed point, at any L) says nothing about the curvature: keep L, so that it does not
        # fall geometrically once the iterates stop moving (then a later step would start from a tiny L)
        Lk = jnp.where(jnp.sum((x - z) ** 2) > 0, Lk, s.L)
        x_prev = s.x
        if restart:   # t = 0 and x_prev = x: the next step starts from x with t = 1
            bad = momentum_off(z, x, s.x)
            t = jnp.where(bad, jnp.zeros_like(t), t)
            x_prev = jnp.where(bad, x, x_prev)
        return FISTAState(x, z, t, Lk, x_prev)

    L = _positive_lipschitz(jnp.asarray(L, dtype))
    if adaptive:   # t_0 = 0, x_{-1} = x_0: the first step has t_1 = 1 and y_1 = x_0
        init = lambda: FISTAState(x0, x0, jnp.asarray(0.0, dtype), L, x0)  # noqa: E731
        error = lambda a, b: relative_change(b.z, b.x)  # noqa: E731
    else:
        init = lambda: FISTAState(x0, x0, jnp.asarray(1.0, dtype), L)  # noqa: E731
        error = lambda a, b: relative_change(a.z, b.x)   # ||T(z_k) - z_k|| / ||T(z_k)||: see ``fista``  # noqa: E731

    def objective(s):
        return smooth(s.x)[0] + penalty(s.x)

    return Solver(
        init=init,
        step=step_adaptive if adaptive else step_fixed,
        codes=lambda s: s.x,
        error=error,
        objective=objective,
        fixed_point=partial(_prox_grad_map, op, y, prox_step, L, bool(backtracking)),
    )


def fista_solver(op, y, lam, L, x0, prox="soft", backtracking=False, restart=False, eta=2.0,
                 max_backtracks=30, decrease=0.9) -> Solver:
    """The (init, step) pair of FISTA for the Lasso from ``x0`` with the Lipschitz estimate ``L``, optionally with
    backtracking on L (True: Beck-Teboulle, L only grows by ``eta``, at most ``max_backtracks`` growths per step;
    "adaptive": Scheinberg-Goldfarb-Bai, each step starts from ``decrease`` L, see ``fista_prox_solver``) and the
    adaptive gradient restart of the momentum (O'Donoghue & Candes, "Adaptive restart for accelerated gradient
    schemes", Found. Comput. Math. 2015); run it with ``sparsejax.solve.iterate``. Its ``error`` is the relative
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
    return fista_prox_solver(op, y, lambda v, Lk: prox(v, lam / Lk), lambda a: jnp.sum(lam * jnp.abs(a)), L, x0,
                             backtracking=backtracking, restart=restart, eta=eta, decrease=decrease,
                             max_backtracks=max_backtracks)


def _prox_grad_map(op, y, prox_step, L, backtracking, a):
    """ISTA's map a -> prox(a - D^T (D a - y) / L, lam / L): FISTA's solution is its fixed point, and it contracts
    there (for L >= ||D||_2^2), so ``mode="implicit"`` differentiates through it instead of FISTA's momentum step,
    which never settles. With backtracking the estimate may lie below ||D||_2^2: ||D||_2^2 itself is used. The step
    size does not move the fixed point, so no gradient flows through it."""
    Lfp = lax.stop_gradient(_positive_lipschitz(op.lipschitz()) if backtracking else jnp.asarray(L, a.dtype))
    Lfp = Lfp.astype(a.dtype)
    return prox_step(a - op.adjoint(op.apply(a) - y) / Lfp, Lfp)


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
      lam: l1 weight, >= 0; scalar or broadcastable to the codes (per-atom weights); "auto": SPORCO's default
        0.1 max |D^T y| (``sparsejax.pursuit.lam.default_lam``).
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
    op, y, lam, dtype = prepare_problem(D, y, resolve_lam(D, y, lam))
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
          prox="soft", backtracking=False, restart: bool = False,
          history: bool = False) -> Solution:
    """FISTA for min_a 1/2||y - D a||^2 + lam ||a||_1 (one signal; batch with ``jax.vmap``).

    x_k = P_{lam/L}(z_k - D^T(D z_k - y)/L), t_{k+1} = (1 + sqrt(1 + 4 t_k^2))/2,
    z_{k+1} = x_k + ((t_k - 1)/t_{k+1})(x_k - x_{k-1}) (Beck & Teboulle 2009, section 4).

    Args are those of ``ista`` (``tol`` bounds the relative proximal-gradient residual ||x_k - z_k|| / ||x_k|| at
    the extrapolated point z_k, module docstring), plus:
      L: Lipschitz constant (default ||D||_2^2; the starting value when backtracking, default 1).
      step: alternatively the step size 1/L.
      backtracking: find L without ||D||: True, the Beck-Teboulle rule (L doubles until the quadratic bound holds;
        it never falls, so a start 1000x too large keeps steps 1000x too short: ~1,500 iterations on a
        problem adaptive backtracking solves in ~100); "adaptive", the Scheinberg-Goldfarb-Bai rule (each step
        first tries 0.9 L, then doubles it until the bound holds; the momentum follows L's changes,
        ``fista_prox_solver``); False: the fixed L.
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
    op, y, lam, dtype = prepare_problem(D, y, resolve_lam(D, y, lam))
    _check_common(max_iter, tol, mode, step, prox)
    check_backtracking(backtracking)
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
