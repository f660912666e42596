"""The one iteration driver under every iterative pursuit.

A solver is a pure pair of functions with a NamedTuple state (the optax / blackjax pattern):

    Solver(init, step, codes, error, objective, fixed_point)
      init()             -> state0
      step(state)        -> state
      codes(state)       -> the current estimate
      error(old, new)    -> scalar stopping measure (e.g. relative change ||a_new - a_old|| / ||a_new||)
      objective(state)   -> scalar objective value (evaluated at the start and at the end only)
      fixed_point(codes) -> codes, optional: a contraction whose fixed point is the solution (``mode="implicit"``)

A factory (``ista_solver(op, y, lam, ...)``) closes over the problem's arrays, which stay traced:
calling the jitted pursuit again with another ``lam``, dictionary or signal of the same shapes
reuses the compiled code.

``iterate`` runs the pair in one of four modes (``MODES``), which also choose how it is differentiated:

* ``mode="while"``: ``lax.while_loop`` until ``error <= tol`` or ``max_iter`` steps. Under
  ``jax.vmap`` each instance stops on its own (its state freezes once converged, its ``num_steps``
  counts its own steps). Forward-mode differentiable (``jax.jvp``), not reverse-mode: ``jax.grad``
  through it raises a ValueError that names the modes that are (``REVERSE_MODES``).
* ``mode="scan"``: exactly ``max_iter`` steps with ``lax.scan``: reverse-mode ``jax.grad`` works
  (unrolled differentiation) and ``history=True`` records the objective after every step. Memory
  O(max_iter) states and step intermediates.
* ``mode="checkpoint"``: the same scan with ``jax.checkpoint`` on the step (Griewank, "Achieving
  logarithmic growth of temporal and spatial complexity in reverse automatic differentiation",
  Optim. Methods Softw. 1992; Griewank & Walther, "Evaluating Derivatives", SIAM 2008, ch. 12): the
  backward pass keeps only the carried state of each step and recomputes the step's intermediates
  (residuals, gradients), about one more forward pass of time. Same numbers as ``"scan"``.
* ``mode="implicit"``: the ``"while"`` loop forward (no tape, memory O(1) in the steps); backward by
  the implicit function theorem at the fixed point x* = T(x*, theta) of the solver's map (Blondel
  et al., "Efficient and modular implicit differentiation", NeurIPS 2022, sections 2-3). With
  ``A = dT/dx`` and ``B = dT/dtheta`` at x*, dx*/dtheta = (I - A)^{-1} B, so the reverse pass solves
  w = g + A^T w by the same fixed-point iteration (it converges where T contracts at x*) and returns
  B^T w. T is ``solver.fixed_point`` on the codes when the solver gives one, else ``solver.step`` on
  the floating-point leaves of the state (integer leaves such as counters are held fixed). The step
  of a momentum method does not contract in its momentum scalar, so FISTA gives the proximal-gradient
  map as its ``fixed_point``: its fixed point is ISTA's, the Lasso solution (Beck & Teboulle, "A fast
  iterative shrinkage-thresholding algorithm for linear inverse problems", SIAM J. Imaging Sci. 2009).
  The problem's arrays theta are those the solver closes over, made explicit with
  ``jax.closure_convert``. Reverse mode only (``jax.jvp`` refuses a custom VJP); exact only at a converged
  solution: check ``converged``. The backward iteration runs at most ``max_iter`` steps to the same ``tol``.

Divergence is reported, never hidden: ``diverged`` is set when the iterate or the objective
becomes non-finite or the objective grows above ``divergence_factor`` times its starting value.
``status`` says why a solve stopped (``Status``).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import Primitive
from jax.flatten_util import ravel_pytree
from jax.interpreters import ad, batching, mlir

from sparsejax import _validate as V
from sparsejax._validate import check_choice

__all__ = ["Solver", "Solution", "iterate", "relative_change", "MODES", "REVERSE_MODES", "Status", "STATUS_NAMES",
           "stop_status", "status_name", "check_iteration", "RhoBalancing", "check_balancing"]

MODES = ("while", "scan", "checkpoint", "implicit")
REVERSE_MODES = ("implicit", "scan", "checkpoint")   # the modes jax.grad works through
_FIXED_LENGTH_MODES = ("scan", "checkpoint")

WHILE_GRAD_ERROR = (
    "reverse-mode differentiation (jax.grad, jax.vjp) does not work through mode='while' (a lax.while_loop of "
    "unknown length keeps no tape); use mode='implicit' (implicit function theorem at the converged solution, "
    "memory O(1) in the steps), mode='scan' (unrolled, exactly max_iter steps) or mode='checkpoint' (unrolled with "
    "recomputation); mode='while' supports forward mode (jax.jvp) only")


# An identity whose forward derivative is itself and whose transpose (the reverse pass) raises WHILE_GRAD_ERROR: it
# wraps the outputs of the while loop, so jax.grad stops there with a message instead of JAX's generic one.
_while_output = Primitive("sparsejax_while_output")
_while_output.def_impl(lambda x: x)
_while_output.def_abstract_eval(lambda x: x)
mlir.register_lowering(_while_output, mlir.lower_fun(lambda x: x, multiple_results=False))
batching.primitive_batchers[_while_output] = lambda args, dims: (_while_output.bind(*args), dims[0])


def _while_output_transpose(ct, x):
    raise ValueError(WHILE_GRAD_ERROR)


ad.deflinear2(_while_output, _while_output_transpose)


def _forward_only(tree):
    """``tree`` with its floating-point leaves passed through ``_while_output``."""
    def mark(x):
        return _while_output.bind(x) if jnp.issubdtype(jnp.result_type(x), jnp.inexact) else x
    return jax.tree_util.tree_map(mark, tree)


class Status:
    """Why a solve stopped: the integer codes held by ``Solution.status`` (int32, one per instance under vmap).

    ``CONVERGED``: the stopping measure reached ``tol``. ``MAX_STEPS``: ``max_iter`` steps ran without reaching it.
    ``DIVERGED``: the iterates or the objective blew up (non-finite, or the objective grew without bound).
    ``NONFINITE_INPUT``: the problem itself held NaN or Inf (signal, dictionary, thresholds), so no step was
    meaningful.

    Example:
      >>> import sparsejax as sj
      >>> sj.solve.Status.MAX_STEPS, sj.solve.status_name(sj.solve.Status.MAX_STEPS)
      (1, 'max_steps')
    """

    CONVERGED = 0
    MAX_STEPS = 1
    DIVERGED = 2
    NONFINITE_INPUT = 3


STATUS_NAMES = ("converged", "max_steps", "diverged", "nonfinite_input")


def status_name(code) -> str:
    """The name of a status code (a Python int or a concrete scalar array), one of ``STATUS_NAMES``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.solve.status_name(jnp.int32(2))
      'diverged'
    """
    return STATUS_NAMES[int(code)]


def stop_status(converged, diverged, nonfinite_input=False) -> jax.Array:
    """The ``Status`` code from the flags: non-finite input first, then divergence, convergence, max steps.

    Args:
      converged, diverged, nonfinite_input: boolean scalars or arrays (broadcast together).

    Returns:
      int32 array of ``Status`` codes.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sj.solve.stop_status(jnp.array([True, False, True]), jnp.array([False, False, True])).tolist()
      [0, 1, 2]
    """
    converged, diverged, bad = jnp.asarray(converged), jnp.asarray(diverged), jnp.asarray(nonfinite_input)
    code = jnp.where(converged, Status.CONVERGED, Status.MAX_STEPS)
    code = jnp.where(diverged, Status.DIVERGED, code)
    return jnp.where(bad, Status.NONFINITE_INPUT, code).astype(jnp.int32)


def check_iteration(max_iter, tol=None, mode=None, *, min_iter: int = 0, modes=MODES) -> int:
    """The one check of the iteration arguments, run before tracing: ``max_iter`` a Python int >= ``min_iter``,
    ``tol`` (when given) a non-negative scalar, ``mode`` (when given) one of ``modes``. Returns ``max_iter``.

    Example:
      >>> import sparsejax as sj
      >>> sj.solve.check_iteration(100, 1e-6, "implicit")
      100
      >>> sj.solve.check_iteration(0, min_iter=1)
      Traceback (most recent call last):
      ...
      ValueError: max_iter must be a Python int >= 1, got 0
    """
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or int(max_iter) < min_iter:
        raise ValueError(f"max_iter must be a Python int >= {min_iter}, got {max_iter!r}")
    if tol is not None:
        V.check_tol(tol)
    if mode is not None:
        check_choice("mode", mode, modes)
    return int(max_iter)


class RhoBalancing(NamedTuple):
    """A residual-balancing rule for the ADMM penalty rho (module docstring; SPORCO's ``AutoRho`` options).

    Boyd et al., "Distributed optimization and statistical learning via the alternating direction method of
    multipliers", FnT ML 2011, sec. 3.4.1; Wohlberg, "ADMM penalty parameter selection by residual balancing",
    arXiv:1704.06209, 2017. Used by the ADMMs (``sparsejax.pursuit.admm``, ``sparsejax.pursuit.csc``). The
    default is SPORCO's ConvBPDN rule; ``sparsejax.learn.conv`` codes with
    ``RhoBalancing(period=10, ratio=10.0, scaling=2.0, auto_scaling=False, target=1.0)``, SPORCO's
    dictionary-learning rule.

    Attributes:
      period: balance after every ``period``-th iteration (SPORCO ``Period``).
      ratio: mu, the residual ratio that triggers a change (``RsdlRatio``).
      scaling: tau, the factor (the cap of the factor with ``auto_scaling``) (``Scaling``).
      auto_scaling: the factor sqrt(r / (xi s)) (or its inverse), capped at tau, instead of tau (``AutoScaling``).
      target: xi, the target ratio r / s (``RsdlTarget``); None: 1 + 18.3^(log10(max lam) + 1) for CBPDN, 1 for
        the masked form (SPORCO's defaults).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.solve import RhoBalancing
      >>> doubling = RhoBalancing(period=1, ratio=10.0, scaling=2.0, auto_scaling=False, target=1.0)
      >>> one = jnp.asarray(1.0)
      >>> float(doubling.factor(one, jnp.asarray(50.0), one, 3, one))   # primal residual 50x the dual: rho x 2
      2.0
    """

    period: int = 1
    ratio: float = 1.2
    scaling: float = 1000.0
    auto_scaling: bool = True
    target: Optional[float] = None

    def factor(self, rho, r, s, k, xi, until=None) -> jax.Array:
        """The factor f by which rho is multiplied (and the scaled dual divided) after iteration ``k``.

        Args:
          rho: the penalty (its dtype is the result's).
          r, s: the relative primal and dual residuals of iteration ``k``.
          k: the iteration (0-based, may be traced); no change at k = 0 or when the residuals are not finite.
          xi: the target ratio (``target``, or the solver's default when ``target`` is None), may be traced.
          until: no change from iteration ``until`` on (may be traced); None: balance for ever.

        Returns:
          f, a scalar of rho's dtype (1 when nothing changes).

        Example:
          >>> import jax.numpy as jnp
          >>> from sparsejax.solve import RhoBalancing
          >>> one = jnp.asarray(1.0)
          >>> float(RhoBalancing().factor(one, jnp.asarray(4.0), one, 5, one))   # sqrt(r / s)
          2.0
          >>> float(RhoBalancing().factor(one, jnp.asarray(4.0), one, 5, one, until=5))
          1.0
        """
        if self.auto_scaling:
            tiny = jnp.finfo(rho.dtype).tiny
            ratio = jnp.where(r > s * xi, r / jnp.maximum(s * xi, tiny), s * xi / jnp.maximum(r, tiny))
            mlt = jnp.where((s == 0) | (r == 0), self.scaling, jnp.minimum(jnp.sqrt(ratio), self.scaling))
        else:
            mlt = self.scaling
        f = jnp.where(r > xi * self.ratio * s, mlt, jnp.where(s > (self.ratio / xi) * r, 1.0 / mlt, 1.0))
        finite = jnp.isfinite(f) if self.auto_scaling else jnp.isfinite(r) & jnp.isfinite(s)
        ok = (k > 0) & ((k + 1) % self.period == 0) & finite
        if until is not None:
            ok = ok & (k < until)
        return jnp.where(ok, f, 1.0).astype(rho.dtype)


def check_balancing(balancing) -> RhoBalancing:
    """Check a ``RhoBalancing`` rule before tracing (TypeError / ValueError naming the field); return it.

    Example:
      >>> import sparsejax as sj
      >>> sj.solve.check_balancing(sj.solve.RhoBalancing(period=0))
      Traceback (most recent call last):
      ...
      ValueError: rho_balancing.period must be >= 1, got 0
    """
    if not isinstance(balancing, RhoBalancing):
        raise TypeError(f"rho_balancing must be a RhoBalancing, got {type(balancing).__name__}")
    V.check_positive_int("rho_balancing.period", balancing.period)
    V.check_nonnegative_scalar("rho_balancing.ratio", balancing.ratio, strict=True)
    V.check_nonnegative_scalar("rho_balancing.scaling", balancing.scaling, strict=True)
    if balancing.target is not None:
        V.check_nonnegative_scalar("rho_balancing.target", balancing.target, strict=True)
    return balancing


class Solver(NamedTuple):
    """An iterative algorithm as pure functions of a state pytree, run by ``iterate``.

    Attributes:
      init: ``() -> state``, the starting state.
      step: ``state -> state``, one iteration.
      codes: ``state -> array``, the current estimate (the codes).
      error: ``(old, new) -> scalar``, the stopping measure, compared with ``tol``.
      objective: ``state -> scalar`` or None; evaluated at the start and at the end (divergence check, result).
      fixed_point: ``codes -> codes`` or None: a map T contracting near the solution with T(a*) = a*, used by
        ``mode="implicit"`` for the backward pass (module docstring). None: the ``step`` on the state's
        floating-point leaves.

    Example: the Babylonian square root x <- (x + 2 / x) / 2.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> root2 = sj.solve.Solver(init=lambda: jnp.asarray(1.0), step=lambda x: 0.5 * (x + 2.0 / x),
      ...                         codes=lambda x: x, error=sj.solve.relative_change)
      >>> sol = sj.solve.iterate(root2, max_iter=50, tol=1e-7)
      >>> round(float(sol.codes), 6), bool(sol.converged), int(sol.num_steps) < 10
      (1.414214, True, True)
    """

    init: Callable[[], Any]
    step: Callable[[Any], Any]
    codes: Callable[[Any], jax.Array]
    error: Callable[[Any, Any], jax.Array]
    objective: Optional[Callable[[Any], jax.Array]] = None
    fixed_point: Optional[Callable[[jax.Array], jax.Array]] = None


class Solution(NamedTuple):
    """Result of a pursuit (every field is per instance under ``jax.vmap``).

    Attributes:
      codes: the sparse codes.
      num_steps: iterations used (int32 scalar).
      converged: True when the stopping measure reached ``tol`` within ``max_iter``.
      diverged: True when iterates/objective blew up (non-finite, or objective growing without bound).
      objective: final objective value (NaN when the solver defines none).
      error: final value of the stopping measure.
      state: the solver's final state (for warm starts and diagnostics).
      history: per-step objective (``mode="scan"`` or ``"checkpoint"`` with ``history=True``), else None.
      status: why the solve stopped, a ``Status`` code (int32; see ``status_name``).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> sol = sj.ista(jnp.eye(3), jnp.array([2.0, 0.5, -1.0]), 1.0)
      >>> sol.codes.tolist(), bool(sol.converged), sj.solve.status_name(sol.status)
      ([1.0, 0.0, 0.0], True, 'converged')
    """

    codes: jax.Array
    num_steps: jax.Array
    converged: jax.Array
    diverged: jax.Array
    objective: jax.Array
    error: jax.Array
    state: Any = None
    history: Optional[jax.Array] = None
    status: Optional[jax.Array] = None


def relative_change(old: jax.Array, new: jax.Array) -> jax.Array:
    """||new - old||_2 / max(||new||_2, tiny): the default stopping measure.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> float(sj.solve.relative_change(jnp.array([3.0, 0.0]), jnp.array([3.0, 4.0])))
      0.8
    """
    d = jnp.sqrt(jnp.sum((new - old) ** 2))
    n = jnp.sqrt(jnp.sum(new**2))
    return d / jnp.maximum(n, jnp.finfo(new.dtype).tiny)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def iterate(
    solver: Solver,
    *,
    max_iter: int,
    tol: float | jax.Array = 1e-6,
    mode: str = "while",
    history: bool = False,
    divergence_factor: float = 1e4,
) -> Solution:
    """Run ``solver`` to convergence (``"while"``, ``"implicit"``) or for exactly ``max_iter`` steps (``"scan"``,
    ``"checkpoint"``); the mode also fixes how the result is differentiated (module docstring).

    Args:
      solver: the ``Solver`` pair.
      max_iter: static iteration bound (also the cap of the implicit mode's backward iteration).
      tol: tolerance on ``solver.error`` (traced; ``tol=0`` runs all ``max_iter`` steps); the implicit mode's
        backward iteration stops at the same relative change.
      mode: one of ``MODES``: ``"while"``, ``"scan"``, ``"checkpoint"`` or ``"implicit"``.
      history: record the objective after each step (``"scan"`` and ``"checkpoint"`` only).
      divergence_factor: objective growth factor over its initial value that counts as divergence.

    Returns:
      ``Solution``, its ``status`` filled.

    Example: the implicit derivative of the fixed point of x <- cos(theta x) equals the unrolled one.
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> def root(theta, mode):
      ...     s = sj.solve.Solver(init=lambda: jnp.asarray(0.5), step=lambda x: jnp.cos(theta * x),
      ...                         codes=lambda x: x, error=sj.solve.relative_change)
      ...     return sj.solve.iterate(s, max_iter=200, tol=1e-7, mode=mode).codes
      >>> g_scan, g_implicit = (jax.grad(root)(1.0, m) for m in ("scan", "implicit"))
      >>> bool(jnp.allclose(g_scan, g_implicit, atol=1e-5))
      True
    """
    check_iteration(max_iter, mode=mode)
    if history and mode not in _FIXED_LENGTH_MODES:
        raise ValueError("history=True needs mode='scan' or 'checkpoint' (a while loop has no fixed length to "
                         "record)")
    if history and solver.objective is None:
        raise ValueError("history=True needs a solver with an objective")

    state0 = solver.init()
    codes0 = solver.codes(state0)
    dtype = codes0.dtype
    tol = jnp.asarray(tol, dtype=dtype)
    obj0 = solver.objective(state0) if solver.objective is not None else jnp.asarray(jnp.nan, dtype)
    hist = None

    if mode == "while":
        k, state, err = _forward_only(_while_loop(solver, state0, tol, max_iter))
        codes = solver.codes(state)
    elif mode == "implicit":
        k, state, err = _without_gradient(lambda s0, t: _while_loop(solver, s0, t, max_iter), state0, tol)
        state, codes = _with_implicit_gradient(solver, state, tol, max_iter)
    else:
        if mode == "checkpoint":
            solver = solver._replace(step=jax.checkpoint(solver.step, prevent_cse=False))
        state, err, hist = _scan_loop(solver, state0, dtype, max_iter, history)
        k = jnp.asarray(max_iter, jnp.int32)
        codes = solver.codes(state)

    obj = solver.objective(state) if solver.objective is not None else jnp.asarray(jnp.nan, dtype)
    finite = _all_finite(codes) & (jnp.isfinite(err) | (k == 0))
    if solver.objective is not None:
        # growth is only meaningful relative to a positive starting value (||a||_1 from a = 0 starts at 0)
        grew = (obj0 > 0) & (obj > divergence_factor * obj0)
        finite = finite & jnp.isfinite(obj)
        diverged = ~finite | grew
    else:
        diverged = ~finite
    converged = (err <= tol) & ~diverged
    # a non-finite objective at the start means the problem itself (signal, dictionary, thresholds) is not finite
    bad_input = ~jnp.isfinite(obj0) if solver.objective is not None else ~_all_finite(codes0)
    status = stop_status(converged, diverged, bad_input)
    return Solution(codes, k, converged, diverged, obj, err, state, hist, status)


def _while_loop(solver: Solver, state0, tol, max_iter: int):
    """(steps, state, error) after stepping until ``error <= tol`` (or non-finite) or ``max_iter`` steps."""
    dtype = tol.dtype

    def cond(carry):
        k, _, err = carry
        return (k < max_iter) & ((k == 0) | ((err > tol) & jnp.isfinite(err)))

    def body(carry):
        k, state, _ = carry
        new = solver.step(state)
        return k + 1, new, solver.error(state, new).astype(dtype)

    return lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), state0, jnp.asarray(jnp.inf, dtype)))


def _scan_loop(solver: Solver, state0, dtype, max_iter: int, history: bool):
    """(state, error, objective per step or None) after exactly ``max_iter`` steps."""

    def body(carry, _):
        state, _ = carry
        new = solver.step(state)
        err = solver.error(state, new).astype(dtype)
        out = solver.objective(new) if history else None
        return (new, err), out

    (state, err), hist = lax.scan(body, (state0, jnp.asarray(jnp.inf, dtype)), None, length=max_iter)
    return state, err, hist


def _stop(tree):
    return jax.tree_util.tree_map(lax.stop_gradient, tree)


def _without_gradient(fn: Callable, *args):
    """``fn(*args)`` with no derivative flowing through it, neither from ``args`` nor from the traced arrays ``fn``
    closes over (they are hoisted by ``jax.closure_convert`` and stopped): the implicit mode's forward loop records
    no tangents."""
    converted, consts = jax.closure_convert(fn, *args)
    return converted(*_stop(args), *_stop(consts))


def _with_implicit_gradient(solver: Solver, state, tol, max_iter: int):
    """(state, codes) equal to the given ones, their reverse derivative that of the fixed point of
    ``solver.fixed_point`` (on the codes) or else of ``solver.step`` (on the floating leaves of the state)."""
    if solver.fixed_point is not None:
        return state, _implicit_fixed_point(solver.fixed_point, solver.codes(state), tol, max_iter)
    real, rebuild = _real_part(state)
    real = _implicit_fixed_point(lambda v: _real_part(solver.step(rebuild(v)))[0], real, tol, max_iter)
    state = rebuild(real)
    return state, solver.codes(state)


def _real_part(state):
    """The floating-point leaves of ``state`` as one real vector (a complex leaf as its real and imaginary
    parts), and the map that puts such a vector back into ``state`` (the other leaves unchanged)."""
    leaves, treedef = jax.tree_util.tree_flatten(state)
    inexact = [jnp.issubdtype(jnp.result_type(x), jnp.inexact) for x in leaves]
    as_real = [jnp.stack([x.real, x.imag]) if jnp.iscomplexobj(x) else x
               for x, f in zip(leaves, inexact) if f]
    vector, unravel = ravel_pytree(as_real)

    def rebuild(v):
        parts = iter(unravel(v))
        out = []
        for x, f in zip(leaves, inexact):
            if not f:
                out.append(x)
                continue
            p = next(parts)
            out.append(lax.complex(p[0], p[1]) if jnp.iscomplexobj(x) else p)
        return treedef.unflatten(out)

    return vector, rebuild


def _implicit_fixed_point(T: Callable, x, tol, max_iter: int):
    """``x`` (a fixed point of ``T``), with the implicit reverse derivative in the arrays ``T`` closes over."""
    converted, theta = jax.closure_convert(T, x)
    return _fixed_point_identity(converted, max_iter, x, tol, *theta)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fixed_point_identity(T, max_iter, x, tol, *theta):
    return x


def _fixed_point_identity_fwd(T, max_iter, x, tol, *theta):
    return x, (x, tol, theta)


def _fixed_point_identity_bwd(T, max_iter, res, g):
    x, tol, theta = res
    _, vjp_x = jax.vjp(lambda z: T(z, *theta), x)
    adjoint = Solver(init=lambda: g, step=lambda w: g + vjp_x(w)[0], codes=lambda w: w, error=relative_change)
    w = iterate(adjoint, max_iter=max_iter, tol=tol, mode="while").codes   # w = g + (dT/dx)^T w
    _, vjp_theta = jax.vjp(lambda *p: T(x, *p), *theta)
    return (jnp.zeros_like(x), jnp.zeros_like(tol), *vjp_theta(w))


_fixed_point_identity.defvjp(_fixed_point_identity_fwd, _fixed_point_identity_bwd)
