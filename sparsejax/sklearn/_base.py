"""The transform side shared by ``SparseCoder``, ``DictionaryLearning`` and ``MiniBatchDictionaryLearning``:
``transform_*`` parameters, ``transform`` / ``inverse_transform`` with scikit-learn's ``split_sign`` layout."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsejax.sklearn._common import (
    check_algorithm,
    check_bool_param,
    check_nonneg_number,
    check_positive_int_param,
    merge_codes,
    sparse_encode,
    split_codes,
    warn_not_converged,
)

__all__ = ["SparseCodingBase"]


class SparseCodingBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin):
    """Codes the rows of X over ``components`` (m, n) with ``transform_algorithm`` (``_common.sparse_encode``)."""

    def check_transform_params(self):
        check_algorithm("transform_algorithm", self.transform_algorithm)
        check_positive_int_param("transform_n_nonzero_coefs", self.transform_n_nonzero_coefs, allow_none=True)
        check_nonneg_number("transform_alpha", self.transform_alpha, allow_none=True)
        check_bool_param("split_sign", self.split_sign)
        check_bool_param("positive_code", self.positive_code)
        check_positive_int_param("transform_max_iter", self.transform_max_iter, allow_zero=True)

    def encode(self, X, components):
        """Validated X -> codes (split by sign when ``split_sign``), with a ConvergenceWarning for unconverged
        solves."""
        self.check_transform_params()
        if self.positive_code and self.transform_algorithm in ("omp", "lars"):
            # raised by transform only: the learners fit positive codes with the Lasso whatever the transform
            raise ValueError(f"positive_code=True is not supported by transform_algorithm="
                             f"{self.transform_algorithm!r} (as in scikit-learn)")
        alpha = self.transform_alpha
        if alpha is None and hasattr(self, "alpha"):
            alpha = self.alpha
        code, conv = sparse_encode(X, components, algorithm=self.transform_algorithm,
                                   n_nonzero_coefs=self.transform_n_nonzero_coefs, alpha=alpha,
                                   max_iter=self.transform_max_iter, positive=self.positive_code)
        warn_not_converged(conv, f"{type(self).__name__}.transform ({self.transform_algorithm})", stacklevel=4)
        return split_codes(code) if self.split_sign else code

    def transform(self, X):
        """Encode the rows of X as sparse combinations of the atoms (``components_``, rows).

        Returns:
          (n_samples, n_components) codes ((n_samples, 2 n_components) with ``split_sign``).
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.encode(X, self.components_)

    def decode(self, code, components):
        code = check_array(code, dtype=[np.float64, np.float32])
        m = components.shape[0] * (2 if self.split_sign else 1)
        if code.shape[1] != m:
            raise ValueError(f"X (the codes) must have {m} columns (n_components"
                             f"{' x 2 with split_sign' if self.split_sign else ''}); got {code.shape[1]}")
        if self.split_sign:
            code = merge_codes(code)
        return code @ np.asarray(components, code.dtype)

    def inverse_transform(self, X):
        """Signals from codes: X @ components_ (the two halves subtracted first with ``split_sign``)."""
        check_is_fitted(self)
        return self.decode(X, self.components_)

    @property
    def _n_features_out(self):
        return self.components_.shape[0] * (2 if self.split_sign else 1)
