"""The batched front door: encode a matrix of signals with one call, on the fastest path we have.

    codes = sparsejax.pursuit.encode(D, Y, method="lasso", lam=0.1).codes      # Y: (B, *D.signal_shape)

Paths (dense dictionaries take the specialised batched algorithms; any other operator is vmapped):

===============  ===========================================  =======================================
method           dense ``D``                                  other operators (``Conv``, ...)
===============  ===========================================  =======================================
``"omp"``        Batch-OMP (``omp_batch``)                     ``vmap(omp)``
``"lasso"``      active-set Lasso (``lasso_batch``)            ``vmap(fista, restart=True)``
``"threshold"``  ``vmap(thresholding)`` (one matrix product)   ``vmap(thresholding)``
``"ista"``, ``"fista"``, ``"admm"``, ``"bp_constrained"``: ``vmap`` of the named pursuit
===============  ===========================================  =======================================

(``"admm"`` is ``bpdn_admm``, ``"bp_constrained"`` is ``bpdn_constrained_admm``.) Each signal is solved on its own
(its own stopping point and flags in the returned ``Solution``). Options, ``prox=`` included, go to the pursuit.
"""
from __future__ import annotations

import jax

from sparsejax import _validate as V
from sparsejax.operators import Dense, as_operator
from sparsejax.pursuit.admm import bpdn_admm, bpdn_constrained_admm
from sparsejax.pursuit.ista import fista, ista
from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.omp import omp, omp_batch
from sparsejax.pursuit.thresholding import thresholding
from sparsejax.solve import Solution

__all__ = ["encode", "METHODS"]

METHODS = ("omp", "lasso", "threshold", "ista", "fista", "admm", "bp_constrained")


def encode(D, Y, method: str = "lasso", **options) -> Solution:
    """Sparse-code every row (leading index) of ``Y`` over ``D``.

    Args:
      D: a ``LinearOperator`` or an (n, m) array of atoms.
      Y: a batch of signals, shape (B, *D.signal_shape).
      method: one of ``METHODS`` (table in the module docstring).
      **options: passed to the pursuit: ``lam`` for lasso/ista/fista/admm/threshold, ``k`` / ``tol``
        for omp, ``eps`` for bp_constrained, ``prox`` (e.g. "nonneg_soft" for non-negative codes),
        ``max_iter``, ``tol``, ...

    Returns:
      ``Solution`` whose fields have a leading batch axis.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.random_gaussian(jax.random.PRNGKey(0), 16, 32)
      >>> Y = jax.random.normal(jax.random.PRNGKey(1), (4, 16))
      >>> sol = sj.encode(D, Y, method="omp", k=3)
      >>> sol.codes.shape, sol.num_steps.tolist()
      ((4, 32), [3, 3, 3, 3])
    """
    V.check_choice("method", method, METHODS)
    op = as_operator(D)
    Y = V.as_float_array("Y", Y)
    sig = tuple(op.signal_shape)
    if Y.ndim != len(sig) + 1 or tuple(Y.shape[1:]) != sig:
        raise ValueError(f"Y must have shape (B, {', '.join(map(str, sig))}): a batch of signals of the "
                         f"dictionary's signal shape, got {tuple(Y.shape)}")
    V.check_finite("Y", Y)
    dense = isinstance(op, Dense)
    opts = dict(options)

    if method == "omp":
        if dense:
            return omp_batch(op, Y, **opts)
        return jax.vmap(lambda y: omp(op, y, **opts))(Y)
    if method == "lasso":
        lam = _pop_required(opts, "lam", method)
        if dense:
            return lasso_batch(op, Y, lam, **opts)
        opts.setdefault("restart", True)
        return jax.vmap(lambda y: fista(op, y, lam, **opts))(Y)
    if method == "threshold":
        return jax.vmap(lambda y: thresholding(op, y, **opts))(Y)
    if method in ("ista", "fista", "admm"):
        lam = _pop_required(opts, "lam", method)
        fn = {"ista": ista, "fista": fista, "admm": bpdn_admm}[method]
        return jax.vmap(lambda y: fn(op, y, lam, **opts))(Y)
    eps = _pop_required(opts, "eps", method)
    return jax.vmap(lambda y: bpdn_constrained_admm(op, y, eps, **opts))(Y)


def _pop_required(opts, name, method):
    if name not in opts:
        raise ValueError(f"method={method!r} needs the keyword argument {name}")
    return opts.pop(name)
