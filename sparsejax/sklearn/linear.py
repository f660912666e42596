"""``Lasso``, ``LassoLars`` and ``OrthogonalMatchingPursuit``: scikit-learn's sparse linear models on sparsejax's
batched solvers. The design matrix X (n_samples, n_features) is the dictionary (atoms = its columns) and each
target column of y a signal, so several targets are one batched solve.

Scaling (scikit-learn's): ``Lasso`` / ``LassoLars`` minimise (1 / (2 n_samples)) ||y - X w||^2 + alpha ||w||_1,
i.e. sparsejax's 1/2 ||y - X w||^2 + lam ||w||_1 with lam = alpha n_samples (``interop.lam_from_sklearn_alpha``);
``OrthogonalMatchingPursuit(tol)`` bounds the squared residual norm, sparsejax's ``tol`` the norm
(``interop.omp_tol_from_sklearn``).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsejax.interop import lam_from_sklearn_alpha, omp_tol_from_sklearn
from sparsejax.pursuit.omp import omp_batch
from sparsejax.sklearn._common import (
    check_bool_param,
    check_nonneg_number,
    check_positive_int_param,
    compute_dtype,
    lasso_codes,
    precision,
    warn_not_converged,
)

__all__ = ["Lasso", "LassoLars", "OrthogonalMatchingPursuit"]

EPS = float(np.finfo(np.float64).eps)     # LassoLars' default eps (scikit-learn's)


class SparseLinearBase(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """fit: centre (``fit_intercept``), solve every target column with ``solve``, set coef_ / intercept_."""

    def fit(self, X, y):
        """Fit the model: X (n_samples, n_features), y (n_samples,) or (n_samples, n_targets). Returns self."""
        self.check_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32])
        dtype = compute_dtype(X)
        X = X.astype(dtype, copy=False)
        y = np.asarray(y, dtype)
        single = y.ndim == 1
        Y = y[:, None] if single else y
        if self.fit_intercept:
            x_off, y_off = X.mean(axis=0), Y.mean(axis=0)
        else:
            x_off, y_off = np.zeros(X.shape[1], dtype), np.zeros(Y.shape[1], dtype)
        Xc, Yc = X - x_off, Y - y_off
        with precision(dtype):
            coef, n_iter, conv = self.solve(Xc, Yc.T)
        coef = np.asarray(coef, dtype)
        warn_not_converged(conv, f"{type(self).__name__}.fit", stacklevel=3)
        intercept = (y_off - coef @ x_off).astype(dtype)
        self.coef_ = coef[0] if single else coef
        self.intercept_ = intercept[0] if single else intercept
        self.n_iter_ = max(int(np.max(n_iter)), 1)
        return self

    def predict(self, X):
        """X @ coef_.T + intercept_."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ np.asarray(self.coef_, X.dtype).T + np.asarray(self.intercept_, X.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def lasso_check(est):
    check_nonneg_number("alpha", est.alpha)
    check_bool_param("fit_intercept", est.fit_intercept)
    check_bool_param("positive", est.positive)
    check_positive_int_param("max_iter", est.max_iter, allow_zero=True)
    check_nonneg_number("tol", getattr(est, "tol", 0.0))


def lasso_solve(est, X, Yt, algorithm):
    lam = lam_from_sklearn_alpha(est.alpha, X.shape[0])
    sol = lasso_codes(X, Yt, lam, algorithm=algorithm, positive=bool(est.positive), max_iter=int(est.max_iter),
                      tol=min(float(getattr(est, "tol", 1e-6)), 1e-6))     # LassoLars has no tol
    return sol.codes, np.asarray(sol.num_steps), np.asarray(sol.converged)


class Lasso(SparseLinearBase):
    """The Lasso, as ``sklearn.linear_model.Lasso``: min_w (1 / (2 n_samples)) ||y - X w||^2 + alpha ||w||_1
    (Tibshirani, "Regression shrinkage and selection via the lasso", JRSS B 1996), solved by ``lasso_batch``
    (lam = alpha n_samples), every target column in one batch, to a relative duality gap of min(tol, 1e-6).

    Args:
      alpha: l1 weight (scikit-learn's scaling).
      fit_intercept: centre X and y first and fit an intercept.
      precompute, copy_X, warm_start, random_state, selection: accepted for compatibility (the batched solver
        always forms the Gram matrix; it is deterministic).
      max_iter: homotopy steps and FISTA-fallback iterations per target (too few: a ConvergenceWarning, as
        scikit-learn's coordinate descent gives).
      tol: target relative duality gap (capped at 1e-6).
      positive: coefficients >= 0.

    Attributes:
      coef_ (n_features,) or (n_targets, n_features), intercept_, n_iter_ (the most solver steps of a target).

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import Lasso
      >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
      >>> Lasso(alpha=0.1, fit_intercept=False).fit(X, np.array([1.0, 0.0, 1.0])).coef_.round(3)
      array([0.85, 0.  ])
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, precompute=False, copy_X=True, max_iter=1000, tol=1e-4,
                 warm_start=False, positive=False, random_state=None, selection="cyclic"):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.precompute = precompute
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.positive = positive
        self.random_state = random_state
        self.selection = selection

    def check_params(self):
        lasso_check(self)

    def solve(self, X, Yt):
        return lasso_solve(self, X, Yt, "lasso_cd")


class LassoLars(SparseLinearBase):
    """The Lasso by Least Angle Regression, as ``sklearn.linear_model.LassoLars``: the same problem as ``Lasso``,
    min_w (1 / (2 n_samples)) ||y - X w||^2 + alpha ||w||_1, solved by the exact LARS homotopy of
    ``lasso_batch(method="homotopy")`` (Efron, Hastie, Johnstone & Tibshirani, "Least angle regression",
    Ann. Statist. 2004; Osborne, Presnell & Turlach 2000), every target column in one batch.

    Args:
      alpha, fit_intercept, positive: as ``Lasso``.
      max_iter: homotopy steps (joins and drops) per target before the FISTA fallback.
      verbose, precompute, eps, copy_X, fit_path, jitter, random_state: accepted for compatibility (no path is
        stored: ``coef_`` is the solution at ``alpha``).

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import LassoLars
      >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
      >>> LassoLars(alpha=0.1, fit_intercept=False).fit(X, np.array([1.0, 0.0, 1.0])).coef_.round(3)
      array([0.85, 0.  ])
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, verbose=False, precompute="auto", max_iter=500,
                 eps=EPS, copy_X=True, fit_path=True, positive=False, jitter=None,
                 random_state=None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.verbose = verbose
        self.precompute = precompute
        self.max_iter = max_iter
        self.eps = eps
        self.copy_X = copy_X
        self.fit_path = fit_path
        self.positive = positive
        self.jitter = jitter
        self.random_state = random_state

    def check_params(self):
        lasso_check(self)

    def solve(self, X, Yt):
        return lasso_solve(self, X, Yt, "lasso_lars")


class OrthogonalMatchingPursuit(SparseLinearBase):
    """Orthogonal Matching Pursuit, as ``sklearn.linear_model.OrthogonalMatchingPursuit`` (Pati, Rezaiifar &
    Krishnaprasad 1993; Batch-OMP of Rubinstein, Zibulevsky & Elad 2008 via ``omp_batch``): at most
    ``n_nonzero_coefs`` coefficients, or (with ``tol``) until ||y - X w||^2 <= tol.

    Args:
      n_nonzero_coefs: default max(int(0.1 n_features), 1) when ``tol`` is None (scikit-learn's default).
      tol: squared residual norm to reach (scikit-learn's scaling; sparsejax's ``tol`` is its square root).
      fit_intercept: centre X and y first.
      precompute: accepted for compatibility (Batch-OMP always uses the Gram matrix).

    Attributes:
      coef_, intercept_, n_iter_ (the most atoms selected), n_nonzero_coefs_.

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import OrthogonalMatchingPursuit
      >>> X = np.eye(4)
      >>> OrthogonalMatchingPursuit(n_nonzero_coefs=1, fit_intercept=False).fit(X, np.array([0, 2.0, 1, 0])).coef_
      array([0., 2., 0., 0.])
    """

    def __init__(self, *, n_nonzero_coefs=None, tol=None, fit_intercept=True, precompute="auto"):
        self.n_nonzero_coefs = n_nonzero_coefs
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.precompute = precompute

    def check_params(self):
        check_positive_int_param("n_nonzero_coefs", self.n_nonzero_coefs, allow_none=True)
        check_nonneg_number("tol", self.tol, allow_none=True)
        check_bool_param("fit_intercept", self.fit_intercept)

    def solve(self, X, Yt):
        n, p = X.shape
        if self.tol is None:
            k = self.n_nonzero_coefs if self.n_nonzero_coefs is not None else max(int(0.1 * p), 1)
            if k > p:
                raise ValueError(f"n_nonzero_coefs must be at most n_features = {p}; got {k}")
            tol = None
        else:
            k, tol = p, omp_tol_from_sklearn(self.tol)
        self.n_nonzero_coefs_ = k if self.tol is None else None
        # more atoms than samples are linearly dependent: OMP stops there (scikit-learn warns and stops too)
        sol = omp_batch(X, Yt, k=max(min(k, n, p), 1), tol=tol)
        codes = np.asarray(sol.codes)
        ok = ~np.asarray(sol.diverged) & np.all(np.isfinite(codes), axis=1)
        codes = np.where(np.isfinite(codes), codes, 0.0)
        return codes, np.asarray(sol.num_steps), ok
