"""sparsejax.sklearn estimators inside scikit-learn's meta-estimators: a Pipeline and a GridSearchCV give what the
same objects built from scikit-learn's estimators give."""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import decomposition as skd
from sklearn import linear_model as skl
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sparsejax import sklearn as sjs

RNG = np.random.RandomState(3)
ATOMS = RNG.normal(size=(10, 6))
ATOMS /= np.linalg.norm(ATOMS, axis=1, keepdims=True)
X = RNG.normal(size=(60, 6))
LABELS = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def test_pipeline_changes_by_the_import():
    def pipe(module):
        return Pipeline([("code", module.SparseCoder(ATOMS, transform_algorithm="omp", transform_n_nonzero_coefs=2,
                                                     split_sign=True)),
                         ("clf", LogisticRegression())])

    ours, ref = pipe(sjs).fit(X, LABELS), pipe(skd).fit(X, LABELS)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert ours.score(X, LABELS) == ref.score(X, LABELS) > 0.6


def test_grid_search_picks_what_sklearn_picks():
    y = X[:, :3] @ np.array([1.0, -1.0, 0.5]) + 0.05 * RNG.normal(size=60)
    grid = {"n_nonzero_coefs": [2, 3, 4]}
    ours = GridSearchCV(sjs.OrthogonalMatchingPursuit(), grid, cv=3).fit(X, y)
    ref = GridSearchCV(skl.OrthogonalMatchingPursuit(), grid, cv=3).fit(X, y)
    assert ours.best_params_ == ref.best_params_ == {"n_nonzero_coefs": 3}
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-8)


def test_get_set_params_round_trip():
    est = sjs.DictionaryLearning(n_components=4, alpha=0.3, positive_dict=True)
    params = est.get_params()
    assert params["alpha"] == 0.3 and params["positive_dict"] is True
    assert set(params) == set(skd.DictionaryLearning().get_params())    # the same parameter names as scikit-learn
    assert est.set_params(alpha=0.7).alpha == 0.7
    for ours, ref in [(sjs.SparseCoder(ATOMS), skd.SparseCoder(ATOMS)),
                      (sjs.MiniBatchDictionaryLearning(), skd.MiniBatchDictionaryLearning()),
                      (sjs.Lasso(), skl.Lasso()), (sjs.LassoLars(), skl.LassoLars()),
                      (sjs.OrthogonalMatchingPursuit(), skl.OrthogonalMatchingPursuit())]:
        assert set(ours.get_params()) == set(ref.get_params()), type(ours).__name__
        assert {k: v for k, v in ours.get_params().items() if k != "dictionary"} == \
            {k: v for k, v in ref.get_params().items() if k != "dictionary"}       # and the same defaults
