"""The batched front door: encode a matrix of signals with one call, on the fastest path we have.

    codes = sparsejax.pursuit.encode(D, Y, method="lasso", lam=0.1).codes      # Y: (B, *D.signal_shape)

Paths (dense dictionaries take the specialised batched algorithms; any other operator is vmapped):

=======================  ===========================================  ===============================
method                   dense ``D``                                  other operators (``Conv``, ...)
=======================  ===========================================  ===============================
``"omp"``                Batch-OMP (``omp_batch``)                    ``vmap(omp)``
``"lasso"``              batched Lasso (``lasso_batch``)              ``vmap(fista, restart=True)``
``"threshold"``          ``vmap(thresholding)`` (one matrix product)  ``vmap(thresholding)``
``"ista"``, ``"fista"``  ``vmap`` of the named pursuit                the same
``"admm"``               ``vmap(bpdn_admm)``                          the same
``"bp_constrained"``     ``vmap(bpdn_constrained_admm)``              the same
=======================  ===========================================  ===============================

Each signal is solved on its own (its own stopping point and flags in the returned ``Solution``). Options,
``prox=`` included, go to the pursuit; a warm start ``x0`` (one row of codes per signal, shape (B, *D.code_shape))
goes to ``lasso_batch`` (Newton steps from it, then the homotopy) or, row by row, to the vmapped ``ista`` / ``fista``
/ ``admm`` / ``vmap(fista)``; ``nonneg=True`` (the older spelling) is accepted for every method and means
``prox="nonneg_soft"``.

The result says which path ran: ``sol.state`` is an ``EncodeState`` whose ``route`` names the method, the solver that
ran and why, and whose ``solver`` is the solver's own state (its attributes are reachable directly on ``sol.state``:
``sol.state.path`` / ``sol.state.fallback`` of the batched Lasso, counted by
``sparsejax.pursuit.lasso_batch.path_counts(sol)``). encode
adds no work of its own: the batched dense paths validate their input once (in the solver), and nothing is copied or
retraced.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np

from sparsejax import _validate as V
from sparsejax.operators import Dense, as_operator
from sparsejax.pursuit.admm import bpdn_admm, bpdn_constrained_admm
from sparsejax.pursuit.ista import fista, ista
from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.omp import omp, omp_batch
from sparsejax.pursuit.thresholding import thresholding
from sparsejax.solve import Solution

__all__ = ["encode", "METHODS", "Route", "EncodeState"]

METHODS = ("omp", "lasso", "threshold", "ista", "fista", "admm", "bp_constrained")


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class Route:
    """The path ``encode`` took (static: passes through ``jit``).

    Attributes:
      method: the method asked for.
      solver: what ran, e.g. "lasso_batch" or "vmap(fista)".
      reason: why that solver (and, for the batched Lasso, the first-stage plan it chose).

    Example:
      >>> Route("omp", "omp_batch", "dense dictionary").solver
      'omp_batch'
    """

    method: str
    solver: str
    reason: str


class EncodeState(NamedTuple):
    """``encode``'s ``Solution.state``: the ``route`` and the ``solver``'s own state, whose attributes are also
    read through this object (``sol.state.fallback`` is ``sol.state.solver.fallback``).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> from sparsejax.pursuit.lasso_batch import path_counts
      >>> sol = sj.encode(jnp.eye(3), jnp.eye(3), method="lasso", lam=0.5)
      >>> sol.state.route.solver, path_counts(sol)
      ('lasso_batch', {'guess': 3})
    """

    route: Route
    solver: Any

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.solver, name)


def encode(D, Y, method: str = "lasso", **options) -> Solution:
    """Sparse-code every row (leading index) of ``Y`` over ``D``.

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      Y: a batch of signals, shape (B, *D.signal_shape).
      method: one of ``METHODS`` (table in the module docstring).
      **options: passed to the pursuit: ``lam`` for lasso/ista/fista/admm/threshold, ``k`` / ``tol``
        for omp, ``eps`` for bp_constrained, ``prox`` (e.g. "nonneg_soft" for non-negative codes; ``nonneg=True``
        is the same), ``max_iter``, ``tol``, ``x0`` (warm start, (B, *D.code_shape): methods "lasso", "ista",
        "fista", "admm"), ...

    Returns:
      ``Solution`` whose fields have a leading batch axis; ``state`` is an ``EncodeState`` (``route``: the path
      taken and why).

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.random_gaussian(jax.random.PRNGKey(0), 16, 32)
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
      >>> sol = sj.encode(D, Y, method="omp", k=3)
      >>> sol.codes.shape, sol.num_steps.tolist(), sol.state.route.solver
      ((4, 32), [3, 3, 3, 3], 'omp_batch')
    """
    V.check_choice("method", method, METHODS)
    op = as_operator(D)
    Y = V.as_float_array("Y", Y)
    sig = tuple(op.signal_shape)
    if Y.ndim != len(sig) + 1 or tuple(Y.shape[1:]) != sig:
        raise ValueError(f"Y must have shape (B, {', '.join(map(str, sig))}): a batch of signals of the "
                         f"dictionary's signal shape, got {tuple(Y.shape)}")
    dense = isinstance(op, Dense)
    opts = _prox_option(dict(options))
    x0 = opts.pop("x0", None)
    if x0 is not None:
        if method not in _WARM_METHODS:
            raise ValueError(f"x0 (a warm start) is accepted by the methods {', '.join(_WARM_METHODS)}, "
                             f"not method={method!r}")
        x0 = V.as_float_array("x0", x0)
        want = (Y.shape[0],) + tuple(op.code_shape)
        if tuple(x0.shape) != want:
            raise ValueError(f"x0 must have shape {want} (one row of warm-start codes per signal of Y), "
                             f"got {tuple(x0.shape)}")
        V.check_finite("x0", x0)

    if dense and method in ("omp", "lasso"):
        # the batched solvers check Y themselves (one host round trip, not two)
        if method == "omp":
            sol = omp_batch(op, Y, **opts)
            return _routed(sol, method, "omp_batch", "dense dictionary: Batch-OMP (one Gram matrix for the batch)")
        lam = _pop_required(opts, "lam", method)
        sol = lasso_batch(op, Y, lam, x0=x0, **opts)
        plan = sol.state.plan
        return _routed(sol, method, "lasso_batch", f"dense dictionary: the batched Lasso, first stage "
                                                  f"{plan.method!r} ({plan.reason})")
    # the single-signal pursuits below run under vmap, where values cannot be checked: check Y here
    V.check_finite("Y", Y)
    why = "dense dictionary" if dense else f"{type(op).__name__} operator (matrix-free): vmap of the pursuit"
    if method == "omp":
        return _routed(jax.vmap(lambda y: omp(op, y, **opts))(Y), method, "vmap(omp)", why)
    if method == "lasso":
        lam = _pop_required(opts, "lam", method)
        opts.setdefault("restart", True)
        return _routed(_vmap_warm(lambda y, a: fista(op, y, lam, x0=a, **opts), Y, x0), method, "vmap(fista)", why)
    if method == "threshold":
        return _routed(jax.vmap(lambda y: thresholding(op, y, **opts))(Y), method, "vmap(thresholding)",
                       "one matrix product per signal")
    if method in ("ista", "fista", "admm"):
        lam = _pop_required(opts, "lam", method)
        fn = {"ista": ista, "fista": fista, "admm": bpdn_admm}[method]
        return _routed(_vmap_warm(lambda y, a: fn(op, y, lam, x0=a, **opts), Y, x0), method, f"vmap({fn.__name__})",
                       "the named pursuit, per signal")
    eps = _pop_required(opts, "eps", method)
    return _routed(jax.vmap(lambda y: bpdn_constrained_admm(op, y, eps, **opts))(Y), method,
                   "vmap(bpdn_constrained_admm)", "the named pursuit, per signal")


_WARM_METHODS = ("lasso", "ista", "fista", "admm")


def _vmap_warm(fn, Y, x0):
    """vmap of fn(y, x0_row) over the signals, with x0 None (each pursuit's own zero start) when not given."""
    if x0 is None:
        return jax.vmap(lambda y: fn(y, None))(Y)
    return jax.vmap(fn)(Y, x0)


def _routed(sol: Solution, method: str, solver: str, reason: str) -> Solution:
    return sol._replace(state=EncodeState(Route(method, solver, reason), sol.state))


def _prox_option(opts: dict) -> dict:
    """Map the older ``nonneg=`` flag to ``prox=`` ("nonneg_soft" for True; the pursuit's default for False)."""
    if "nonneg" not in opts:
        return opts
    nonneg = opts.pop("nonneg")
    if not isinstance(nonneg, (bool, np.bool_)):
        raise ValueError(f"nonneg must be True or False, got {nonneg!r}")
    nonneg = bool(nonneg)
    warnings.warn("encode(nonneg=...) is the older spelling of prox='nonneg_soft'", DeprecationWarning, stacklevel=3)
    if nonneg:
        if opts.get("prox", "nonneg_soft") != "nonneg_soft":
            raise ValueError(f"nonneg=True asks for non-negative codes but prox={opts['prox']!r} was also given; "
                             f"pass one of them (prox='nonneg_soft')")
        opts["prox"] = "nonneg_soft"
    return opts


def _pop_required(opts, name, method):
    if name not in opts:
        raise ValueError(f"method={method!r} needs the keyword argument {name}")
    return opts.pop(name)
