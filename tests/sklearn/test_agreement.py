"""sparsejax.sklearn against scikit-learn on shared data: the same codes / coefficients / atoms within solver
tolerance (float64, so that the comparison measures the algorithms, not float32 rounding), and the ConvergenceWarning
where a solve stops short."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import decomposition as skd
from sklearn import linear_model as skl
from sklearn.exceptions import ConvergenceWarning

from sparsejax import sklearn as sjs

# one problem size for the coders and the learners, so that the default run compiles the batched Lasso once
RNG = np.random.RandomState(0)
ATOMS = RNG.normal(size=(6, 8))
ATOMS /= np.linalg.norm(ATOMS, axis=1, keepdims=True)
X = RNG.normal(size=(40, 8))


def lasso_cost(X, code, atoms, alpha):
    R = X - code @ atoms
    return 0.5 * np.sum(R * R, axis=1) + alpha * np.sum(np.abs(code), axis=1)


@pytest.mark.parametrize("algorithm, kw", [
    ("omp", dict(transform_n_nonzero_coefs=3)),
    ("omp", {}),                                        # scikit-learn's default k = max(n / 10, 1)
    ("lars", dict(transform_n_nonzero_coefs=3)),
    ("threshold", dict(transform_alpha=0.3)),
    ("threshold", dict(transform_alpha=0.3, positive_code=True)),
    ("lasso_lars", dict(transform_alpha=0.3)),
    pytest.param("lasso_cd", dict(transform_alpha=0.3, split_sign=True), marks=pytest.mark.slow),
])
def test_sparse_coder_equals_sklearn(algorithm, kw):
    ours = sjs.SparseCoder(ATOMS, transform_algorithm=algorithm, **kw)
    ref = skd.SparseCoder(ATOMS, transform_algorithm=algorithm, **kw)
    a, b = ours.fit_transform(X), ref.fit_transform(X)
    assert a.dtype == np.float64 and a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-6)
    # the inverse: codes @ atoms (split codes merged first)
    np.testing.assert_allclose(ours.inverse_transform(a), ref.inverse_transform(b), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["lasso_lars", "lasso_cd"])
def test_positive_lasso_codes_match_coordinate_descent(algorithm):
    # scikit-learn's positive LassoLars stops above the optimum on this data (its objective is higher than its
    # own coordinate descent's); both our Lasso coders reach coordinate descent's minimiser
    ours = sjs.SparseCoder(ATOMS, transform_algorithm=algorithm, transform_alpha=0.3, positive_code=True)
    cd = skd.SparseCoder(ATOMS, transform_algorithm="lasso_cd", transform_alpha=0.3, positive_code=True)
    a, b = ours.transform(X), cd.transform(X)
    assert np.all(a >= 0)
    np.testing.assert_allclose(a, b, atol=1e-6)
    lars = skd.SparseCoder(ATOMS, transform_algorithm="lasso_lars", transform_alpha=0.3, positive_code=True)
    assert np.all(lasso_cost(X, a, ATOMS, 0.3) <= lasso_cost(X, lars.transform(X), ATOMS, 0.3) + 1e-12)


def test_sparse_coder_float32_stays_float32():
    ours = sjs.SparseCoder(ATOMS.astype(np.float32), transform_algorithm="omp", transform_n_nonzero_coefs=2)
    a = ours.transform(X.astype(np.float32))
    b = skd.SparseCoder(ATOMS, transform_algorithm="omp", transform_n_nonzero_coefs=2).transform(X)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="transform_algorithm"):
        sjs.SparseCoder(ATOMS, transform_algorithm="cholesky").transform(X)
    with pytest.raises(ValueError, match="positive_code"):
        sjs.SparseCoder(ATOMS, transform_algorithm="omp", positive_code=True).transform(X)
    with pytest.raises(ValueError, match="alpha"):
        sjs.Lasso(alpha=-1.0).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="n_nonzero_coefs"):
        sjs.OrthogonalMatchingPursuit(n_nonzero_coefs=0).fit(X, X[:, 0])


# --------------------------------------------------------------------------------------------------
# the linear models: X the design matrix, several targets one batch
# --------------------------------------------------------------------------------------------------
DESIGN = RNG.normal(size=(30, 10))
TARGETS = np.stack([DESIGN[:, :3] @ [1.0, -2.0, 0.5] + 3.0, DESIGN[:, 4] - DESIGN[:, 7]], axis=1)
TARGETS += 0.1 * RNG.normal(size=TARGETS.shape)


@pytest.mark.parametrize("ours, ref", [
    (sjs.OrthogonalMatchingPursuit(n_nonzero_coefs=3), skl.OrthogonalMatchingPursuit(n_nonzero_coefs=3)),
    pytest.param(sjs.OrthogonalMatchingPursuit(tol=2.0), skl.OrthogonalMatchingPursuit(tol=2.0),  # squared norm
                 marks=pytest.mark.slow),
    (sjs.OrthogonalMatchingPursuit(fit_intercept=False), skl.OrthogonalMatchingPursuit(fit_intercept=False)),
    pytest.param(sjs.LassoLars(alpha=0.05), skl.LassoLars(alpha=0.05), marks=pytest.mark.slow),
], ids=["omp_k", "omp_tol", "omp_default", "lassolars"])
def test_linear_models_equal_sklearn(ours, ref):
    for y in (TARGETS, TARGETS[:, 0]):               # several targets (one batch), one target
        a, b = ours.fit(DESIGN, y), ref.fit(DESIGN, y)
        assert np.shape(a.coef_) == np.shape(b.coef_)
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)
        np.testing.assert_allclose(a.intercept_, b.intercept_, atol=1e-8)
        np.testing.assert_allclose(a.predict(DESIGN), b.predict(DESIGN), atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("positive", [False, True])
def test_lasso_equals_sklearn_at_its_alpha_scaling(positive):
    # scikit-learn's Lasso divides the data term by n_samples: lam = alpha n_samples in sparsejax's scaling
    ours = sjs.Lasso(alpha=0.05, positive=positive).fit(DESIGN, TARGETS)
    ref = skl.Lasso(alpha=0.05, positive=positive, tol=1e-12, max_iter=100_000).fit(DESIGN, TARGETS)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-7)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-7)


@pytest.mark.slow
def test_convergence_warning_when_admm_stops_short():
    # two ADMM iterations cannot reach tol: reported as scikit-learn reports an unfinished solve (the batched Lasso
    # warns the same way when a signal's duality-gap certificate fails)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        sjs.ConvSparseCoder(np.ones((1, 2)) / np.sqrt(2), transform_alpha=0.1, transform_max_iter=2,
                            tol=1e-9).transform(X[:2])


# --------------------------------------------------------------------------------------------------
# dictionary learning: from scikit-learn's SVD initialisation both learners follow scikit-learn's iterates
# --------------------------------------------------------------------------------------------------
TRAIN = X


def test_dictionary_learning_follows_sklearn():
    kw = dict(n_components=6, alpha=0.5, max_iter=10, tol=0.0, random_state=0)
    ours, ref = sjs.DictionaryLearning(**kw), skd.DictionaryLearning(**kw)
    Ua, Ub = ours.fit_transform(TRAIN), ref.fit_transform(TRAIN)
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-8)
    np.testing.assert_allclose(Ua, Ub, atol=1e-8)
    np.testing.assert_allclose(ours.error_, ref.error_, rtol=1e-10)
    assert np.all(np.diff(ours.error_) <= 1e-12)                    # the objective never rises
    assert np.all(np.linalg.norm(ours.components_, axis=1) <= 1 + 1e-12)


@pytest.mark.slow
def test_positive_dictionary_learning_follows_sklearn():
    kw = dict(n_components=6, alpha=0.5, max_iter=5, tol=0.0, random_state=0, positive_dict=True,
              positive_code=True, fit_algorithm="cd")
    ours, ref = sjs.DictionaryLearning(**kw).fit(TRAIN), skd.DictionaryLearning(**kw).fit(TRAIN)
    assert np.all(ours.components_ >= 0)
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-6)


@pytest.mark.slow
def test_minibatch_partial_fit_follows_sklearn():
    kw = dict(n_components=6, alpha=0.5, batch_size=10, random_state=0)
    ours, ref = sjs.MiniBatchDictionaryLearning(**kw), skd.MiniBatchDictionaryLearning(**kw)
    for i in range(3):
        ours.partial_fit(TRAIN[10 * i:10 * i + 10])
        ref.partial_fit(TRAIN[10 * i:10 * i + 10])
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-8)
    kw = dict(kw, max_iter=2, shuffle=False, tol=0.0, max_no_improvement=None)
    ours, ref = sjs.MiniBatchDictionaryLearning(**kw).fit(TRAIN), skd.MiniBatchDictionaryLearning(**kw).fit(TRAIN)
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-8)
    assert ours.n_steps_ == ref.n_steps_


# --------------------------------------------------------------------------------------------------
# convolutional: CBPDN equals the Lasso over the circulant dictionary (scikit-learn's SparseCoder as reference)
# --------------------------------------------------------------------------------------------------
def circulant_atoms(filters, N):
    """Rows: every circular shift of every filter (map m, position j -> row m N + j)."""
    rows = []
    for f in filters:
        base = np.zeros(N)
        base[:len(f)] = f
        rows += [np.roll(base, j) for j in range(N)]
    return np.array(rows)


def test_conv_sparse_coder_is_the_circulant_lasso():
    filters = RNG.normal(size=(2, 3))
    filters /= np.linalg.norm(filters, axis=1, keepdims=True)
    S = RNG.normal(size=(3, 12))
    ours = sjs.ConvSparseCoder(filters, transform_alpha=0.2, transform_max_iter=2000, tol=1e-7)
    Z = ours.transform(S)
    ref = skd.SparseCoder(circulant_atoms(filters, 12), transform_algorithm="lasso_cd", transform_alpha=0.2)
    np.testing.assert_allclose(Z, ref.transform(S), atol=1e-5)
    np.testing.assert_allclose(ours.inverse_transform(Z), Z @ circulant_atoms(filters, 12), atol=1e-10)


@pytest.mark.slow
def test_conv_dictionary_learning_is_learn_conv_dictionary():
    import jax
    from sklearn.utils import check_random_state

    from sparsejax.learn.conv import learn_conv_dictionary

    S = RNG.normal(size=(3, 24)).astype(np.float32)
    cdl = sjs.ConvDictionaryLearning(3, 4, alpha=0.1, max_iter=15, random_state=0)
    Z = cdl.fit_transform(S)
    seed = check_random_state(0).randint(0, 2 ** 31 - 1)
    res = learn_conv_dictionary(S, 3, 4, 0.1, n_steps=15, key=jax.random.PRNGKey(seed), progress=False)
    np.testing.assert_allclose(cdl.filters_, np.asarray(res.filters), atol=1e-6)
    assert cdl.error_[-1] < cdl.error_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        R = cdl.inverse_transform(cdl.transform(S)) - S
    assert np.sum(R * R) < np.sum(S * S)
    assert Z.shape == (3, 3 * 24)
