"""``SparseCoder``: scikit-learn's sparse coder against a fixed dictionary, on sparsejax's batched solvers."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from sparsejax.sklearn._base import SparseCodingBase

__all__ = ["SparseCoder"]


class SparseCoder(SparseCodingBase, BaseEstimator):
    """Sparse coding of the rows of X against a fixed dictionary (atoms as rows), as
    ``sklearn.decomposition.SparseCoder`` (same parameters, same scaling, same codes within solver tolerance).

    Each row x of X gets the code c minimising, for ``transform_algorithm``,

    * "lasso_lars" / "lasso_cd": 1/2 ||x - c @ dictionary||^2 + transform_alpha ||c||_1 (``lasso_batch``: the exact
      LARS homotopy; "lasso_cd" takes the guess-and-verify path on large batches);
    * "omp": ||x - c @ dictionary||^2 with ``transform_n_nonzero_coefs`` nonzeros (Batch-OMP, ``omp_batch``);
    * "lars": ``transform_n_nonzero_coefs`` steps of Least Angle Regression (Efron et al., Ann. Statist. 2004);
    * "threshold": sign(d) max(|d| - transform_alpha, 0), d = dictionary @ x.

    Defaults as scikit-learn's: transform_alpha = 1, transform_n_nonzero_coefs = min(max(n_features / 10, 1),
    n_components). float32 input is coded in float32, float64 input in float64.

    Args:
      dictionary: (n_components, n_features) atoms as rows (normalise them for the OMP / LARS coders).
      transform_algorithm: "omp" (default), "lasso_lars", "lasso_cd", "lars" or "threshold".
      transform_n_nonzero_coefs, transform_alpha: as above.
      split_sign: return [max(c, 0), -min(c, 0)] (2 n_components features).
      n_jobs: accepted for compatibility; the batched solvers use every core through XLA.
      positive_code: codes >= 0 (Lasso and threshold coders).
      transform_max_iter: homotopy steps ("lasso_lars") / fallback iterations ("lasso_cd").

    Attributes:
      n_components_, n_features_in_ (after ``fit``, which only validates).

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import SparseCoder
      >>> coder = SparseCoder(np.eye(4), transform_algorithm="omp", transform_n_nonzero_coefs=1)
      >>> coder.transform(np.array([[0.0, 3.0, 0.5, 0.0]]))
      array([[0., 3., 0., 0.]])
    """

    def __init__(self, dictionary, *, transform_algorithm="omp", transform_n_nonzero_coefs=None,
                 transform_alpha=None, split_sign=False, n_jobs=None, positive_code=False,
                 transform_max_iter=1000):
        self.dictionary = dictionary
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.split_sign = split_sign
        self.n_jobs = n_jobs
        self.positive_code = positive_code
        self.transform_max_iter = transform_max_iter

    def _dictionary(self):
        D = np.asarray(self.dictionary)
        if D.ndim != 2 or not np.issubdtype(D.dtype, np.number):
            raise ValueError(f"dictionary must be a numeric (n_components, n_features) array; got shape {D.shape}")
        if not np.all(np.isfinite(D)):
            raise ValueError("dictionary must be finite (it holds NaN or Inf)")
        return D

    def fit(self, X, y=None):
        """Only validates the parameters and X (scikit-learn's transformer API)."""
        self.check_transform_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        D = self._dictionary()
        self.n_components_ = D.shape[0]
        if X.shape[1] != D.shape[1]:
            raise ValueError(f"dictionary and X have different numbers of features: dictionary.shape {D.shape}, "
                             f"X.shape {X.shape}")
        return self

    def transform(self, X, y=None):
        """Codes (n_samples, n_components) of the rows of X ((n_samples, 2 n_components) with ``split_sign``)."""
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        D = self._dictionary()
        if X.shape[1] != D.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, but the dictionary has {D.shape[1]} "
                             f"(dictionary.shape {D.shape})")
        return self.encode(X, D)

    def inverse_transform(self, X):
        """Signals from codes: X @ dictionary."""
        return self.decode(X, self._dictionary())

    @property
    def components_(self):
        return self._dictionary()

    @property
    def _n_features_out(self):
        return self._dictionary().shape[0] * (2 if self.split_sign else 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
