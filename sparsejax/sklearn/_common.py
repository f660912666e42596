"""What the scikit-learn estimators share: the dtype they compute in, the batched coders behind
``transform_algorithm`` (scikit-learn's ``sparse_encode`` on sparsejax's solvers), split-sign codes, the
Least Angle Regression coder ("lars") and the convergence warnings.

Scaling (scikit-learn's, kept exactly): the coders minimise, per row x of X and with the atoms as the rows of
``components`` (m, n),

    "lasso_lars", "lasso_cd":  1/2 ||x - code @ components||^2 + alpha ||code||_1     (lam = alpha)
    "omp":                     ||x - code @ components||^2 with at most n_nonzero_coefs nonzero codes
    "lars":                    n_nonzero_coefs steps of Least Angle Regression (Efron, Hastie, Johnstone &
                               Tibshirani, "Least angle regression", Ann. Statist. 2004)
    "threshold":               sign(c) max(|c| - alpha, 0), c = components @ x

Float64 input is computed in float64 (under ``jax.enable_x64``), float32 input in float32: the estimators return
the dtype they were given, as scikit-learn's do.
"""
from __future__ import annotations

import contextlib
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sparsejax.interop import dictionary_from_components
from sparsejax.pursuit.lasso_batch import lasso_batch
from sparsejax.pursuit.omp import omp_batch

__all__ = [
    "ALGORITHMS",
    "check_algorithm",
    "check_bool_param",
    "check_nonneg_number",
    "check_positive_int_param",
    "compute_dtype",
    "lars_codes",
    "lasso_codes",
    "merge_codes",
    "precision",
    "sparse_encode",
    "split_codes",
    "warn_not_converged",
]

ALGORITHMS = ("lasso_lars", "lasso_cd", "lars", "omp", "threshold")
GUESS_FROM = 256        # "lasso_cd" takes lasso_batch's guess-and-verify path from this many signals


def compute_dtype(X) -> np.dtype:
    """float64 for float64 input, float32 for anything else (float32 is the library's default)."""
    return np.dtype(np.float64) if np.asarray(X).dtype == np.float64 else np.dtype(np.float32)


def precision(dtype):
    """A context that lets JAX compute in ``dtype``: ``jax.enable_x64`` for float64, nothing for float32."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def check_algorithm(name: str, value, choices=ALGORITHMS) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_nonneg_number(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number >= 0{' or None' if allow_none else ''}; got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def check_positive_int_param(name: str, value, allow_none: bool = False, allow_zero: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or \
            value < (0 if allow_zero else 1):
        want = "an int >= 0" if allow_zero else "an int >= 1"
        raise ValueError(f"{name} must be {want}{' or None' if allow_none else ''}; got {value!r}")
    return int(value)


def check_bool_param(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def warn_not_converged(converged, what: str, stacklevel: int = 3) -> None:
    """A ``ConvergenceWarning`` naming how many of the solves did not converge (none: no warning)."""
    converged = np.asarray(converged).reshape(-1)
    bad = int(np.sum(~converged))
    if bad:
        warnings.warn(f"{what}: {bad} of {converged.size} solves did not converge (raise max_iter, or check the "
                      f"data)", ConvergenceWarning, stacklevel=stacklevel)


# ----------------------------------------------------------------------------------------------
# Least Angle Regression with a fixed number of steps (the "lars" coder)
# ----------------------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("k",))
def _lars_jit(G, C0, *, k):
    """LAR (no Lasso drops) for every column of C0 = D^T X^T (m, B): k steps, each adding the inactive atom of
    largest |correlation| and moving along the equiangular direction until the next atom would join (or, on the
    last atom, to the least-squares fit). The active atoms sit in k slots (a k x k solve per step)."""
    m = G.shape[0]
    dtype = G.dtype
    tiny = jnp.asarray(jnp.finfo(dtype).tiny, dtype) * 1e6
    eps = jnp.asarray(jnp.finfo(dtype).eps, dtype)
    eye = jnp.eye(k, dtype=dtype)
    slots = jnp.arange(k)

    def one(c0):
        def step(t, carry):
            a, c, active, idx, done = carry
            j = jnp.argmax(jnp.where(active, -jnp.inf, jnp.abs(c)))
            C = jnp.abs(c[j])
            done = done | (C <= eps * jnp.maximum(jnp.max(jnp.abs(c0)), tiny)) | jnp.all(active)
            act = active.at[j].set(True)
            ix = idx.at[t].set(j.astype(jnp.int32))
            used = slots <= t
            Gs = jnp.where(used[:, None] & used[None, :], G[ix][:, ix], eye)
            ws = jnp.linalg.solve(Gs, jnp.where(used, jnp.sign(c[ix]), 0.0))
            w = jnp.zeros((m,), dtype).at[ix].add(jnp.where(used, ws, 0.0))
            u = G @ w                                       # the change of the correlations per unit step
            g1 = jnp.where(~act & (1.0 - u > tiny), (C - c) / jnp.where(1.0 - u > tiny, 1.0 - u, 1.0), jnp.inf)
            g2 = jnp.where(~act & (1.0 + u > tiny), (C + c) / jnp.where(1.0 + u > tiny, 1.0 + u, 1.0), jnp.inf)
            g = jnp.minimum(jnp.min(jnp.where(g1 > 0, g1, jnp.inf)), jnp.min(jnp.where(g2 > 0, g2, jnp.inf)))
            g = jnp.minimum(g, C)
            bad = ~jnp.all(jnp.isfinite(w))                 # a singular active Gram: stop there (sticky)
            ok = ~done & ~bad
            done = done | bad
            a = jnp.where(ok, a + g * w, a)
            c = jnp.where(ok, c - g * u, c)
            active = jnp.where(ok, act, active)
            idx = jnp.where(ok, ix, idx)
            return a, c, active, idx, done

        init = (jnp.zeros((m,), dtype), c0, jnp.zeros((m,), bool), jnp.zeros((k,), jnp.int32), jnp.asarray(False))
        return jax.lax.fori_loop(0, k, step, init)[0]

    return jax.vmap(one, in_axes=1)(C0)


def lars_codes(D, X, k: int) -> jax.Array:
    """Codes (B, m) of ``k`` steps of Least Angle Regression for each row of X over D (n, m), as
    ``sklearn.linear_model.Lars(n_nonzero_coefs=k, fit_intercept=False)`` (Efron et al., Ann. Statist. 2004).

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn._common import lars_codes
      >>> np.asarray(lars_codes(np.eye(3, dtype=np.float32), np.array([[3.0, -1.0, 0.5]], np.float32), 1))
      array([[2., 0., 0.]], dtype=float32)
    """
    D = jnp.asarray(D)
    X = jnp.asarray(X, D.dtype)
    return _lars_jit(D.T @ D, D.T @ X.T, k=int(k))


# ----------------------------------------------------------------------------------------------
# scikit-learn's sparse_encode on the library's batched solvers
# ----------------------------------------------------------------------------------------------

def lasso_codes(D, Y, lam, *, algorithm: str, positive: bool, max_iter: int, tol):
    """The batched Lasso (``lasso_batch``) as scikit-learn's two Lasso coders use their ``max_iter``.

    "lasso_lars": the exact LARS homotopy with ``max_iter`` steps (joins and drops), unfinished signals to the
    FISTA fallback. "lasso_cd": ``max_iter`` bounds the homotopy steps and the fallback iterations (a Lasso that
    needs more reports not converged, where scikit-learn's coordinate descent warns); the guess-and-verify path
    from ``GUESS_FROM`` signals, the homotopy below (the same solution, one program less to compile).
    """
    prox = "nonneg_soft" if positive else "soft"
    if algorithm == "lasso_lars":
        return lasso_batch(D, Y, lam, prox=prox, method="homotopy", max_iter=int(max_iter), tol=tol)
    method = "homotopy" if Y.shape[0] < GUESS_FROM or positive else "auto"
    return lasso_batch(D, Y, lam, prox=prox, method=method, max_iter=int(max_iter),
                       fallback_iter=max(int(max_iter), 1), tol=tol)


def split_codes(code: np.ndarray) -> np.ndarray:
    """[max(code, 0), -min(code, 0)]: scikit-learn's ``split_sign`` features (B, 2 m)."""
    return np.concatenate([np.maximum(code, 0), -np.minimum(code, 0)], axis=1).astype(code.dtype, copy=False)


def merge_codes(code: np.ndarray) -> np.ndarray:
    """The inverse of ``split_codes``: (B, 2 m) -> (B, m)."""
    m = code.shape[1] // 2
    return code[:, :m] - code[:, m:]


def sparse_encode(X, components, *, algorithm: str = "lasso_lars", n_nonzero_coefs=None, alpha=None,
                  max_iter: int = 1000, positive: bool = False, tol=1e-6):
    """scikit-learn's ``sparse_encode`` on sparsejax's batched solvers.

    Args:
      X: (B, n) signals as rows (float32 or float64: computed in that dtype).
      components: (m, n) atoms as rows (scikit-learn's layout).
      algorithm: "lasso_lars" / "lasso_cd" (``lasso_codes``: the batched exact Lasso), "lars" (``lars_codes``),
        "omp" (``omp_batch``) or "threshold" (soft threshold of the correlations).
      n_nonzero_coefs: atoms per signal for "omp" / "lars" (default min(max(n / 10, 1), m), as scikit-learn).
      alpha: l1 weight of the Lasso coders and the threshold (default 1.0, as scikit-learn).
      max_iter: as ``lasso_codes``.
      positive: non-negative codes (not for "omp" / "lars", as in scikit-learn).
      tol: relative duality gap of the Lasso coders.

    Returns:
      (codes (B, m) NumPy array of X's dtype, converged (B,) bools).
    """
    check_algorithm("algorithm", algorithm)
    dtype = compute_dtype(X)
    X = np.asarray(X, dtype)
    C = np.asarray(components, dtype)
    n, m = X.shape[1], C.shape[0]
    if C.ndim != 2 or C.shape[1] != n:
        raise ValueError(f"components must have shape (n_components, {n}) (atoms as rows, X's n_features); "
                         f"got {C.shape}")
    if positive and algorithm in ("omp", "lars"):
        raise ValueError(f"positive_code=True is not supported by the {algorithm!r} coder (as in scikit-learn); "
                         f"use 'lasso_lars', 'lasso_cd' or 'threshold'")
    B = X.shape[0]
    if B == 0:
        return np.zeros((0, m), dtype), np.ones((0,), bool)
    with precision(dtype):
        D = jnp.asarray(dictionary_from_components(C))
        Xj = jnp.asarray(X)
        if algorithm in ("omp", "lars"):
            k = n_nonzero_coefs
            if k is None:
                k = min(max(n / 10, 1), m)
            k = int(k)
            if k > m:
                raise ValueError(f"n_nonzero_coefs must be at most n_components = {m}; got {k}")
            if algorithm == "lars":
                codes = lars_codes(D, Xj, min(k, m))
                conv = jnp.all(jnp.isfinite(codes), axis=1)
            else:
                sol = omp_batch(D, Xj, k=min(k, n, m))       # OMP stops at linear dependence beyond n atoms
                codes, conv = sol.codes, ~sol.diverged & jnp.all(jnp.isfinite(sol.codes), axis=1)
        elif algorithm == "threshold":
            lam = 1.0 if alpha is None else float(alpha)
            c = Xj @ D
            codes = jnp.sign(c) * jnp.maximum(jnp.abs(c) - lam, 0)
            if positive:
                codes = jnp.maximum(codes, 0)
            conv = jnp.all(jnp.isfinite(codes), axis=1)
        else:
            lam = 1.0 if alpha is None else float(alpha)
            sol = lasso_codes(D, Xj, lam, algorithm=algorithm, positive=positive, max_iter=max_iter, tol=tol)
            codes, conv = sol.codes, sol.converged
        codes = np.array(codes, dtype=dtype)              # a writable copy
        conv = np.asarray(conv)
    return codes, conv
