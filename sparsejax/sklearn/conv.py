"""``ConvSparseCoder`` and ``ConvDictionaryLearning``: convolutional sparse coding (CBPDN) and convolutional
dictionary learning as scikit-learn transformers, the samples being 1-D signals or images.

Each row x of X is one signal: of length n_features (1-D filters), or an image of ``signal_shape`` (H, W) flattened
row-major (2-D filters). The codes are M maps of the signal's size, flattened (n_samples, M * n_features):

    min_z 1/2 || sum_m d_m * z_m - x ||_2^2 + alpha sum_m ||z_m||_1      (circular boundary)

(Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016), solved per signal by
``sparsejax.pursuit.csc.cbpdn_admm`` under ``vmap``; the learner runs ``sparsejax.learn.conv.learn_conv_dictionary``
(Garcia-Cardona & Wohlberg, IEEE TCI 2018). ``components_`` holds the filters as rows (n_components, h [* w]);
``filters_`` the library's layout (M, 1, h[, w]).
"""
from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from sparsejax.conv.operator import conv_synthesis
from sparsejax.learn.conv import learn_conv_dictionary
from sparsejax.pursuit.csc import cbpdn_admm
from sparsejax.sklearn._common import (
    check_bool_param,
    check_nonneg_number,
    check_positive_int_param,
    compute_dtype,
    precision,
    warn_not_converged,
)

__all__ = ["ConvDictionaryLearning", "ConvSparseCoder"]


def signal_dims(signal_shape, n_features: int) -> tuple:
    """The spatial shape of one row: (n_features,) or ``signal_shape`` (its product must be n_features)."""
    if signal_shape is None:
        return (n_features,)
    shape = tuple(int(s) for s in signal_shape)
    if len(shape) not in (1, 2) or any(s < 1 for s in shape):
        raise ValueError(f"signal_shape must be None, (N,) or (H, W) with positive sizes; got {signal_shape!r}")
    if int(np.prod(shape)) != n_features:
        raise ValueError(f"signal_shape {shape} holds {int(np.prod(shape))} values but X has {n_features} "
                         f"feature(s) per row")
    return shape


def filters_array(filters, dtype) -> np.ndarray:
    F = np.asarray(filters, dtype)
    if F.ndim in (2, 3) and not (F.ndim == 3 and F.shape[1] == 1):
        F = F[:, None]                                   # (M, h) / (M, h, w) -> one channel
    if F.ndim not in (3, 4) or F.shape[1] != 1:
        raise ValueError(f"filters must have shape (M, h), (M, h, w), (M, 1, h) or (M, 1, h, w); got {np.shape(filters)}")
    if not np.all(np.isfinite(F)):
        raise ValueError("filters must be finite (they hold NaN or Inf)")
    return F


@partial(jax.jit, static_argnames=("N", "max_iter", "prox"))
def _code_batch(F, X, lam, tol, *, N, max_iter, prox):
    def one(x):
        sol = cbpdn_admm(F, x.reshape((1,) + N), lam, max_iter=max_iter, tol=tol, prox=prox, chunk=F.shape[0])
        return sol.codes, sol.converged
    return jax.vmap(one)(X)


def conv_encode(F, X, N, alpha, max_iter, tol, positive):
    """Codes (B, M * prod(N)) of the rows of X over filters F (M, 1, *k), and the converged flags."""
    dtype = X.dtype
    k = F.shape[2:]
    if len(k) != len(N):
        raise ValueError(f"the filters are {len(k)}-D but the signals are {len(N)}-D (signal_shape {N})")
    if any(kk > nn for kk, nn in zip(k, N)):
        raise ValueError(f"the filters {k} are larger than the signals {N}: X has {int(np.prod(N))} feature(s) per "
                         f"row")
    if X.shape[0] == 0:
        return np.zeros((0, F.shape[0] * int(np.prod(N))), dtype), np.ones(0, bool)
    with precision(dtype):
        Z, conv = _code_batch(jnp.asarray(F), jnp.asarray(X), jnp.asarray(alpha, dtype), jnp.asarray(tol, dtype),
                              N=tuple(N), max_iter=int(max_iter), prox="nonneg_soft" if positive else "soft")
        return np.array(Z, dtype=dtype).reshape(X.shape[0], -1), np.asarray(conv)


def conv_decode(F, Z, N):
    dtype = Z.dtype
    M = F.shape[0]
    with precision(dtype):
        Fj = jnp.asarray(F, dtype)
        out = jax.vmap(lambda z: conv_synthesis(Fj, z.reshape((M,) + tuple(N))))(jnp.asarray(Z))
        return np.array(out, dtype=dtype).reshape(Z.shape[0], -1)


class ConvCodingBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):

    def check_coder_params(self):
        check_nonneg_number("transform_alpha", self.transform_alpha, allow_none=True)
        check_positive_int_param("transform_max_iter", self.transform_max_iter)
        check_nonneg_number("tol", self.tol)
        check_bool_param("positive_code", self.positive_code)

    def coder_alpha(self):
        return self.transform_alpha if self.transform_alpha is not None else getattr(self, "alpha", 0.1)

    def encode(self, X, F):
        self.check_coder_params()
        N = signal_dims(self.signal_shape, X.shape[1])
        Z, conv = conv_encode(F, X, N, self.coder_alpha(), self.transform_max_iter, self.tol, self.positive_code)
        warn_not_converged(conv, f"{type(self).__name__}.transform (cbpdn_admm)", stacklevel=4)
        return Z

    def decode(self, Z, F):
        Z = check_array(Z, dtype=[np.float64, np.float32])
        n_features = getattr(self, "n_features_in_", None)
        M = F.shape[0]
        if n_features is None:
            n_features = Z.shape[1] // M
        if Z.shape[1] != M * n_features:
            raise ValueError(f"X (the codes) must have n_components * n_features = {M * n_features} columns; got "
                             f"{Z.shape[1]}")
        return conv_decode(np.asarray(F, Z.dtype), Z, signal_dims(self.signal_shape, n_features))


class ConvSparseCoder(ConvCodingBase):
    """Convolutional sparse coding (CBPDN) of each row of X with fixed filters; a transformer like
    ``SparseCoder`` (module docstring for the maths and the layout).

    Args:
      filters: (M, h), (M, h, w) or (M, 1, h[, w]) filters (normalise them; 1-D filters code 1-D rows, 2-D
        filters code images of ``signal_shape``).
      transform_alpha: the l1 weight alpha (default 0.1).
      signal_shape: None (each row a 1-D signal) or (H, W) (each row a flattened image).
      transform_max_iter, tol: ADMM iterations and the relative-residual tolerance of ``cbpdn_admm``.
      positive_code: codes >= 0.

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import ConvSparseCoder
      >>> f = np.array([[1.0, 0.0, 0.0]])                        # one identity filter (a spike at the origin)
      >>> Z = ConvSparseCoder(f, transform_alpha=0.5, tol=1e-6).transform(np.array([[0.0, 2.0, 0.0, -1.0]]))
      >>> Z.round(3)
      array([[ 0. ,  1.5,  0. , -0.5]])
    """

    def __init__(self, filters, *, transform_alpha=None, signal_shape=None, transform_max_iter=500, tol=1e-4,
                 positive_code=False):
        self.filters = filters
        self.transform_alpha = transform_alpha
        self.signal_shape = signal_shape
        self.transform_max_iter = transform_max_iter
        self.tol = tol
        self.positive_code = positive_code

    def fit(self, X, y=None):
        """Only validates the parameters and X."""
        self.check_coder_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        F = filters_array(self.filters, compute_dtype(X))
        N = signal_dims(self.signal_shape, X.shape[1])
        if len(F.shape[2:]) != len(N) or any(k > n for k, n in zip(F.shape[2:], N)):
            raise ValueError(f"the filters {F.shape[2:]} do not fit the signals {N}: X has {X.shape[1]} feature(s) "
                             f"per row")
        self.n_components_ = F.shape[0]
        return self

    def transform(self, X, y=None):
        """Codes (n_samples, M * n_features): the M coefficient maps of each row, flattened."""
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = X.astype(compute_dtype(X), copy=False)
        return self.encode(X, filters_array(self.filters, X.dtype))

    def inverse_transform(self, X):
        """Signals sum_m d_m * z_m (n_samples, n_features) from flattened codes."""
        Z = check_array(X, dtype=[np.float64, np.float32])
        return self.decode(Z, filters_array(self.filters, Z.dtype))

    @property
    def components_(self):
        F = filters_array(self.filters, np.float64)
        return F.reshape(F.shape[0], -1)

    @property
    def _n_features_out(self):
        return self.n_components_ * self.n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class ConvDictionaryLearning(ConvCodingBase):
    """Convolutional dictionary learning (``learn_conv_dictionary``: SPORCO's interleaved CBPDN / ConvCnstrMOD
    ADMM) on the rows of X; then a ``ConvSparseCoder`` with the learned filters (module docstring).

        min_{||d_m|| <= 1, z} 1/2 sum_i || sum_m d_m * z_{i,m} - x_i ||^2 + alpha ||z||_1

    Args:
      n_components: filters M.
      kernel_size: filter size h (1-D rows) or (h, w) / an int for images of ``signal_shape``.
      alpha: l1 weight while learning (and of ``transform`` unless ``transform_alpha`` is given).
      max_iter: outer ADMM steps (one code and one filter update each).
      signal_shape: None (1-D rows) or (H, W).
      dict_init: initial filters (M, 1, *k) (projected onto the unit ball); default random Gaussian.
      random_state: seed of the random initial filters.
      transform_alpha, transform_max_iter, tol, positive_code: the coder of ``transform``.

    Attributes:
      filters_ (M, 1, *k), components_ (M, prod(k)), codes of the last step in ``fit_transform``, error_ (the
      objective per step), n_iter_.

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import ConvDictionaryLearning
      >>> X = np.random.RandomState(0).normal(size=(3, 32)).astype(np.float32)
      >>> cdl = ConvDictionaryLearning(4, 5, alpha=0.1, max_iter=10, random_state=0).fit(X)
      >>> cdl.filters_.shape, cdl.components_.shape, bool(cdl.error_[-1] < cdl.error_[0])
      ((4, 1, 5), (4, 5), True)
    """

    def __init__(self, n_components=8, kernel_size=5, *, alpha=0.1, max_iter=100, signal_shape=None,
                 dict_init=None, random_state=None, transform_alpha=None, transform_max_iter=500, tol=1e-4,
                 positive_code=False):
        self.n_components = n_components
        self.kernel_size = kernel_size
        self.alpha = alpha
        self.max_iter = max_iter
        self.signal_shape = signal_shape
        self.dict_init = dict_init
        self.random_state = random_state
        self.transform_alpha = transform_alpha
        self.transform_max_iter = transform_max_iter
        self.tol = tol
        self.positive_code = positive_code

    def _ksize(self, N):
        k = self.kernel_size
        ks = tuple(k) if isinstance(k, (tuple, list)) else (k,) * len(N)
        for v in ks:
            check_positive_int_param("kernel_size", v)
        if len(ks) != len(N):
            raise ValueError(f"kernel_size {k!r} must have one size per signal axis ({len(N)}: signal_shape {N})")
        if any(kk > n for kk, n in zip(ks, N)):
            raise ValueError(f"kernel_size {ks} is larger than the signals {N}: X has {int(np.prod(N))} feature(s) "
                             f"per row")
        return ks

    def fit(self, X, y=None):
        """Learn the filters from the rows of X. Returns self."""
        self._learn(X)
        return self

    def fit_transform(self, X, y=None):
        """Learn the filters, then code the training rows with them as ``transform`` does (the learning loop's own
        codes are those of its last, partial ADMM step: ``fit(X).transform(X)`` must give the same codes)."""
        self._learn(X)
        return self.transform(X)

    def _learn(self, X):
        """Learn the filters (sets ``filters_``, ``components_``, ``error_``, ``n_iter_``); returns the learning
        loop's codes of the training rows."""
        check_positive_int_param("n_components", self.n_components)
        check_nonneg_number("alpha", self.alpha)
        check_positive_int_param("max_iter", self.max_iter)
        self.check_coder_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        X = X.astype(compute_dtype(X), copy=False)
        N = signal_dims(self.signal_shape, X.shape[1])
        ks = self._ksize(N)
        seed = check_random_state(self.random_state).randint(0, 2 ** 31 - 1)
        init = None if self.dict_init is None else filters_array(self.dict_init, X.dtype)
        with precision(X.dtype):
            res = learn_conv_dictionary(jnp.asarray(X.reshape((X.shape[0],) + N)), int(self.n_components), ks,
                                        float(self.alpha), n_steps=int(self.max_iter), key=jax.random.PRNGKey(seed),
                                        init=init, progress=False)
            F = np.array(res.filters, dtype=X.dtype)
            Z = np.array(res.codes, dtype=X.dtype).reshape(X.shape[0], -1)
            hist = res.loop.history.get("loss")
        if res.loop.status != "completed":
            warnings.warn(f"ConvDictionaryLearning.fit stopped: {res.loop.status} ({res.loop.message})",
                          ConvergenceWarning, stacklevel=2)
        self.filters_ = F
        self.components_ = F.reshape(F.shape[0], -1)
        self.error_ = np.asarray(hist) if hist is not None else np.zeros(0)
        self.n_iter_ = int(res.loop.steps)
        return Z

    def transform(self, X):
        """Codes (n_samples, M * n_features) of the rows of X with the learned filters (``cbpdn_admm``)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.encode(X.astype(compute_dtype(X), copy=False), self.filters_.astype(compute_dtype(X)))

    def inverse_transform(self, X):
        """Signals from flattened codes (sum_m d_m * z_m)."""
        check_is_fitted(self)
        return self.decode(X, self.filters_)

    @property
    def _n_features_out(self):
        return self.filters_.shape[0] * self.n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
