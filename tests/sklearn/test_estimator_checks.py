"""scikit-learn's own estimator checks (``parametrize_with_checks``) for every estimator of sparsejax.sklearn.

The checks compile many small JAX programs (each new shape and dtype is a new program; the batched Lasso is the
dearest, ~8 s of CPU per program): the default run keeps the checks of ``SparseCoder`` (OMP), the other
estimators' checks are marked ``slow`` (``python -m pytest -m slow tests/sklearn``).
"""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from sparsejax.sklearn import (
    ConvDictionaryLearning,
    ConvSparseCoder,
    DictionaryLearning,
    Lasso,
    LassoLars,
    MiniBatchDictionaryLearning,
    OrthogonalMatchingPursuit,
    SparseCoder,
)

_rng = np.random.RandomState(0)
# the settings scikit-learn's own test suite gives the estimators they mirror (few iterations)
FAST = [
    SparseCoder(dictionary=_rng.normal(size=(5, 3))),
]
SLOW = [
    OrthogonalMatchingPursuit(),
    SparseCoder(dictionary=_rng.normal(size=(5, 3)), transform_algorithm="lasso_lars", transform_alpha=0.1),
    Lasso(max_iter=5),
    LassoLars(max_iter=5),
    DictionaryLearning(max_iter=20, transform_algorithm="lasso_lars"),
    MiniBatchDictionaryLearning(batch_size=10, max_iter=5),
    ConvSparseCoder(filters=_rng.normal(size=(2, 1, 1)), transform_max_iter=50),
    ConvDictionaryLearning(n_components=2, kernel_size=1, max_iter=3, transform_max_iter=50),
]

# SparseCoder's dictionary must match the checks' number of features (scikit-learn's suite does the same)
SPARSE_CODER_FEATURES = {
    "check_array_api_input": 10, "check_estimators_dtypes": 5, "check_dtype_object": 10,
    "check_transformers_unfitted_stateless": 5, "check_fit_idempotent": 2, "check_transformer_preserve_dtypes": 3,
    "check_set_output_transform": 5, "check_global_output_transform_pandas": 5,
    "check_set_output_transform_pandas": 5, "check_set_output_transform_polars": 5,
    "check_global_set_output_transform_polars": 5, "check_dataframe_column_names_consistency": 8,
    "check_estimators_overwrite_params": 2, "check_estimators_fit_returns_self": 2,
    "check_readonly_memmap_input": 2, "check_n_features_in_after_fitting": 4, "check_fit_check_is_fitted": 2,
    "check_n_features_in": 2, "check_positive_only_tag_during_fit": 4, "check_fit2d_1sample": 10,
    "check_fit2d_1feature": 1,
}


def _check_name(check):
    f = getattr(check, "func", check)
    return f.__name__


def _run(estimator, check):
    name = _check_name(check)
    if isinstance(estimator, SparseCoder) and name in SPARSE_CODER_FEATURES:
        d = np.random.RandomState(1).normal(size=(5, SPARSE_CODER_FEATURES[name]))
        if name == "check_transformer_preserve_dtypes":
            d = d.astype(np.float32)
        estimator = clone(estimator).set_params(dictionary=d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        check(estimator)


@parametrize_with_checks(FAST)
def test_sklearn_checks(estimator, check):
    _run(estimator, check)


@pytest.mark.slow
@parametrize_with_checks(SLOW)
def test_sklearn_checks_slow(estimator, check):
    _run(estimator, check)

