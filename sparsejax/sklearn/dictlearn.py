"""``DictionaryLearning`` and ``MiniBatchDictionaryLearning``: scikit-learn's dictionary learners with
sparsejax's batched Lasso as the coder.

Both minimise scikit-learn's objective over the codes U (n_samples, m) and the atoms V (m, n_features, rows)

    1/2 ||X - U V||_F^2 + alpha ||U||_{1,1}     s.t. ||V_k||_2 <= 1                          (U >= 0, V >= 0 on request)

by alternating the Lasso codes (``lasso_batch``: its exact LARS homotopy for ``fit_algorithm="lars"``) with one
block-coordinate-descent sweep over the atoms on the statistics A = U^T U, B = X^T U (Mairal, Bach, Ponce &
Sapiro, "Online learning for matrix factorization and sparse coding", JMLR 2010, Algorithm 2):

    v_k <- v_k + (b_k - A_k V) / A_kk,   v_k <- max(v_k, 0) (positive_dict),   v_k <- v_k / max(||v_k||, 1);

an atom no signal uses (A_kk <= 1e-6) is replaced by a random training signal plus 1% noise, its codes zeroed, as
scikit-learn does. The batch learner runs on all of X; the mini-batch learner accumulates A, B with scikit-learn's
forgetting weights over mini-batches (``partial_fit`` takes one). Initial atoms: the right singular vectors of X
scaled by the singular values (scikit-learn's), or ``dict_init`` as given (not renormalised).
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import validate_data

from sparsejax.sklearn._base import SparseCodingBase
from sparsejax.sklearn._common import (
    check_algorithm,
    check_bool_param,
    check_nonneg_number,
    check_positive_int_param,
    compute_dtype,
    precision,
    sparse_encode,
    split_codes,
    warn_not_converged,
)

__all__ = ["DictionaryLearning", "MiniBatchDictionaryLearning", "update_dict"]

FIT_ALGORITHMS = ("lars", "cd")


@partial(jax.jit, static_argnames=("positive",))
def _update_dict_jit(V, A, B, Y, pick, noise, *, positive):
    m = V.shape[0]

    def atom(k, carry):
        V, dead = carry
        akk = A[k, k]
        v = V[k] + (B[:, k] - V.T @ A[:, k]) / jnp.where(akk > 1e-6, akk, 1.0)
        new = Y[pick[k]]
        new = new + noise[k] * jnp.where(jnp.std(new) > 0, jnp.std(new), 1.0)
        alive = akk > 1e-6
        v = jnp.where(alive, v, new)
        if positive:
            v = jnp.maximum(v, 0)
        v = v / jnp.maximum(jnp.linalg.norm(v), 1.0)
        return V.at[k].set(v), dead.at[k].set(~alive)

    return jax.lax.fori_loop(0, m, atom, (V, jnp.zeros((m,), bool)))


def update_dict(V, A, B, Y, rng, positive: bool = False):
    """One block-coordinate-descent sweep over the atoms (rows of V, (m, n)) on A = U^T U (m, m), B = Y^T U (n, m)
    (Mairal et al., JMLR 2010, Algorithm 2, scikit-learn's ``_update_dict``); unused atoms (A_kk <= 1e-6) become a
    random row of Y plus 1% Gaussian noise. Returns (V_new, dead (m,) bools) as NumPy arrays.

    Example: with A = I and B = T^T (unit-norm target rows T) one sweep reaches V = T.
      >>> import numpy as np
      >>> from sparsejax.sklearn.dictlearn import update_dict
      >>> T = np.array([[0.6, 0.8], [0.0, 1.0]], np.float32)
      >>> V, dead = update_dict(np.zeros((2, 2), np.float32), np.eye(2, dtype=np.float32), T.T, T,
      ...                       np.random.RandomState(0))
      >>> V.round(4).tolist(), dead.tolist()
      ([[0.6, 0.8], [0.0, 1.0]], [False, False])
    """
    V = np.asarray(V)
    dtype = V.dtype
    m = V.shape[0]
    pick = rng.randint(0, Y.shape[0], size=m)
    noise = (0.01 * rng.normal(size=(m, V.shape[1]))).astype(dtype)
    with precision(dtype):
        Vn, dead = _update_dict_jit(jnp.asarray(V), jnp.asarray(A, dtype), jnp.asarray(B, dtype),
                                    jnp.asarray(Y, dtype), jnp.asarray(pick), jnp.asarray(noise), positive=positive)
        return np.asarray(Vn).astype(dtype, copy=False), np.asarray(dead)


def svd_init(X, n_components):
    """scikit-learn's initial dictionary: S V^T of the thin SVD of X (signs flipped to be deterministic), the first
    ``n_components`` rows, zero rows appended when n_components > rank. Returns (codes U, atoms V)."""
    U, S, Vt = np.linalg.svd(X, full_matrices=False)
    U, Vt = svd_flip(U, Vt)
    V = S[:, None] * Vt
    r = len(S)
    if n_components <= r:
        return U[:, :n_components], V[:n_components]
    U = np.concatenate([U, np.zeros((U.shape[0], n_components - r), U.dtype)], axis=1)
    V = np.concatenate([V, np.zeros((n_components - r, V.shape[1]), V.dtype)], axis=0)
    return U, V


def cost(X, U, V, alpha):
    R = X - U @ V
    return 0.5 * float(np.sum(R * R)) + float(alpha) * float(np.sum(np.abs(U)))


class LearnerBase(SparseCodingBase, BaseEstimator):

    def check_learn_params(self):
        self.check_transform_params()
        check_positive_int_param("n_components", self.n_components, allow_none=True)
        check_nonneg_number("alpha", self.alpha)
        check_positive_int_param("max_iter", self.max_iter, allow_zero=True, allow_none=True)
        check_nonneg_number("tol", self.tol)
        check_algorithm("fit_algorithm", self.fit_algorithm, FIT_ALGORITHMS)
        check_bool_param("positive_dict", self.positive_dict)

    def n_atoms(self, X):
        return X.shape[1] if self.n_components is None else int(self.n_components)

    def initial_dict(self, X, m):
        if self.dict_init is not None:
            V = np.array(self.dict_init, dtype=X.dtype)
            if V.shape != (m, X.shape[1]):
                raise ValueError(f"dict_init must have shape (n_components, n_features) = {(m, X.shape[1])}; got "
                                 f"{V.shape}")
            if not np.all(np.isfinite(V)):
                raise ValueError("dict_init must be finite")
            return V
        return svd_init(X, m)[1].astype(X.dtype, copy=False)

    def code(self, X, V):
        algo = "lasso_lars" if self.fit_algorithm == "lars" else "lasso_cd"
        return sparse_encode(X, V, algorithm=algo, alpha=self.alpha, positive=self.positive_code,
                             max_iter=self.transform_max_iter)

    @property
    def _n_features_out(self):
        return self.components_.shape[0] * (2 if self.split_sign else 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class DictionaryLearning(LearnerBase):
    """Dictionary learning, as ``sklearn.decomposition.DictionaryLearning``: alternate the Lasso codes of all of X
    (``lasso_batch``) and one block-coordinate-descent sweep over the atoms (module docstring) until the cost
    1/2 ||X - U V||_F^2 + alpha ||U||_{1,1} falls by less than ``tol`` x cost, or ``max_iter`` sweeps.

    Args:
      n_components: atoms m (default n_features); more atoms than samples is fine.
      alpha: l1 weight of the codes during fitting.
      max_iter, tol: sweeps and the relative decrease of the cost that stops them.
      fit_algorithm: "lars" (the exact homotopy) or "cd" (the batched Lasso's default path); the same solution.
      transform settings: ``transform_algorithm``, ``transform_n_nonzero_coefs``, ``transform_alpha``,
        ``transform_max_iter``, ``split_sign``, ``positive_code``: the coder of ``transform`` (``SparseCoder``);
        ``positive_code`` also constrains the codes during fitting.
      code_init: accepted for compatibility (the first sweep codes X from the initial atoms).
      dict_init: initial atoms (n_components, n_features), used as given.
      positive_dict: atoms >= 0.
      random_state: seeds the replacement of unused atoms.
      n_jobs, callback, verbose: accepted for compatibility.

    Attributes:
      components_ (n_components, n_features), error_ (cost per sweep), n_iter_.

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import DictionaryLearning
      >>> X = np.random.RandomState(0).normal(size=(20, 6))
      >>> dl = DictionaryLearning(n_components=4, alpha=0.5, max_iter=10, random_state=0).fit(X)
      >>> dl.components_.shape, bool(dl.error_[-1] <= dl.error_[0])
      ((4, 6), True)
    """

    def __init__(self, n_components=None, *, alpha=1, max_iter=1000, tol=1e-8, fit_algorithm="lars",
                 transform_algorithm="omp", transform_n_nonzero_coefs=None, transform_alpha=None, n_jobs=None,
                 code_init=None, dict_init=None, callback=None, verbose=False, split_sign=False, random_state=None,
                 positive_code=False, positive_dict=False, transform_max_iter=1000):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_algorithm = fit_algorithm
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.n_jobs = n_jobs
        self.code_init = code_init
        self.dict_init = dict_init
        self.callback = callback
        self.verbose = verbose
        self.split_sign = split_sign
        self.random_state = random_state
        self.positive_code = positive_code
        self.positive_dict = positive_dict
        self.transform_max_iter = transform_max_iter

    def fit(self, X, y=None):
        """Learn the atoms from the rows of X. Returns self."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        """Learn the atoms and return the codes U of the training signals from the last sweep (as scikit-learn)."""
        self.check_learn_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        X = X.astype(compute_dtype(X), copy=False)
        rng = check_random_state(self.random_state)
        m = self.n_atoms(X)
        V = self.initial_dict(X, m)
        U = np.zeros((X.shape[0], m), X.dtype)
        errors, conv = [], np.ones(1, bool)
        ii = -1
        for ii in range(int(self.max_iter)):
            U, conv = self.code(X, V)
            V, dead = update_dict(V, U.T @ U, X.T @ U, X, rng, positive=bool(self.positive_dict))
            U = np.where(dead[None, :], 0, U).astype(X.dtype, copy=False)
            errors.append(cost(X, U, V, self.alpha))
            if ii > 0 and errors[-2] - errors[-1] < self.tol * errors[-1]:
                break
            if self.callback is not None:
                self.callback(locals())
        warn_not_converged(conv, "DictionaryLearning.fit (codes of the last sweep)", stacklevel=3)
        self.components_ = V
        self.error_ = np.asarray(errors)
        self.n_iter_ = ii + 1
        U = U.astype(X.dtype, copy=False)
        return split_codes(U) if self.split_sign else U


class MiniBatchDictionaryLearning(LearnerBase):
    """Mini-batch dictionary learning, as ``sklearn.decomposition.MiniBatchDictionaryLearning`` (Mairal, Bach,
    Ponce & Sapiro, JMLR 2010): per mini-batch, the Lasso codes U_b (``lasso_batch``), the statistics
    A <- beta A + U_b^T U_b / b, B <- beta B + X_b^T U_b / b (scikit-learn's forgetting weights beta) and one
    block-coordinate-descent sweep over the atoms (module docstring).

    Every mini-batch is coded at the same shape (the last, shorter batch is padded with zero rows, which add
    nothing to A and B), so the coder compiles once.

    Args:
      n_components, alpha, fit_algorithm, dict_init, positive_code, positive_dict, transform_*, split_sign:
        as ``DictionaryLearning``.
      max_iter: passes (epochs) over X.
      batch_size: signals per mini-batch.
      shuffle: shuffle X before the passes.
      tol: stop when ||V_new - V_old||_F / n_components <= tol (0: never).
      max_no_improvement: stop after this many mini-batches without a new minimum of the exponentially weighted
        batch cost (None: never).
      random_state: shuffling, initialisation ties and unused-atom replacement.
      n_jobs, callback, verbose: accepted for compatibility.

    Attributes:
      components_, n_iter_ (passes run), n_steps_ (mini-batches run).

    Example:
      >>> import numpy as np
      >>> from sparsejax.sklearn import MiniBatchDictionaryLearning
      >>> X = np.random.RandomState(0).normal(size=(30, 6))
      >>> mb = MiniBatchDictionaryLearning(n_components=4, alpha=0.5, batch_size=10, max_iter=2, random_state=0)
      >>> mb.fit(X).components_.shape, mb.n_steps_
      ((4, 6), 6)
    """

    def __init__(self, n_components=None, *, alpha=1, max_iter=1000, fit_algorithm="lars", n_jobs=None,
                 batch_size=256, shuffle=True, dict_init=None, transform_algorithm="omp",
                 transform_n_nonzero_coefs=None, transform_alpha=None, verbose=False, split_sign=False,
                 random_state=None, positive_code=False, positive_dict=False, transform_max_iter=1000,
                 callback=None, tol=1e-3, max_no_improvement=10):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.fit_algorithm = fit_algorithm
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.dict_init = dict_init
        self.transform_algorithm = transform_algorithm
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_alpha = transform_alpha
        self.verbose = verbose
        self.split_sign = split_sign
        self.random_state = random_state
        self.positive_code = positive_code
        self.positive_dict = positive_dict
        self.transform_max_iter = transform_max_iter
        self.callback = callback
        self.tol = tol
        self.max_no_improvement = max_no_improvement

    def check_minibatch_params(self):
        self.check_learn_params()
        check_positive_int_param("batch_size", self.batch_size)
        check_bool_param("shuffle", self.shuffle)
        check_positive_int_param("max_no_improvement", self.max_no_improvement, allow_none=True)

    def _step(self, Xb, n_real, step, rng):
        """One mini-batch (rows beyond ``n_real`` are zero padding). Returns the batch cost per signal."""
        V = self.components_
        U, conv = self.code(Xb, V)
        self._conv = conv[:n_real]
        bs = n_real                                   # scikit-learn's weights use the batch's own size
        if step < bs - 1:
            theta = (step + 1) * bs
        else:
            theta = bs ** 2 + step + 1 - bs
        beta = (theta + 1 - bs) / (theta + 1)
        self._A = beta * self._A + U.T @ U / n_real
        self._B = beta * self._B + Xb.T @ U / n_real
        self.components_, _ = update_dict(V, self._A, self._B, Xb[:n_real], rng, positive=bool(self.positive_dict))
        return cost(Xb, U, V, self.alpha) / n_real

    def _start(self, X, rng):
        m = self.n_atoms(X)
        self.components_ = self.initial_dict(X, m)
        self._A = np.zeros((m, m), X.dtype)
        self._B = np.zeros((X.shape[1], m), X.dtype)
        self.n_steps_ = 0
        self._rng = rng

    def fit(self, X, y=None):
        """Learn the atoms from the rows of X in mini-batches. Returns self."""
        self.check_minibatch_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        X = X.astype(compute_dtype(X), copy=False)
        rng = check_random_state(self.random_state)
        n = X.shape[0]
        self._batch = min(int(self.batch_size), n)
        self._start(X, rng)
        Xs = X[rng.permutation(n)] if self.shuffle else X
        per_epoch = math.ceil(n / self._batch)
        n_steps = int(self.max_iter) * per_epoch
        ewa, ewa_min, no_improve = None, None, 0
        step = 0
        self._conv = np.ones(1, bool)
        for step in range(n_steps):
            i = step % per_epoch
            Xb = Xs[i * self._batch:(i + 1) * self._batch]
            n_real = Xb.shape[0]
            if n_real < self._batch:
                Xb = np.concatenate([Xb, np.zeros((self._batch - n_real, X.shape[1]), X.dtype)])
            V_old = self.components_
            c = self._step(Xb, n_real, step, rng)
            if self.callback is not None:
                self.callback(locals())
            # scikit-learn's early stopping: nothing in the first min(100, n / batch) steps, then a small
            # dictionary change (tol) or no new minimum of the smoothed batch cost (max_no_improvement)
            if step + 1 <= min(100, n / n_real):
                continue
            a_ = min(n_real / (n + 1), 1.0)
            ewa = c if ewa is None else ewa * (1 - a_) + c * a_
            if self.tol > 0 and np.linalg.norm(self.components_ - V_old) / V_old.shape[0] <= self.tol:
                break
            if ewa_min is None or ewa < ewa_min:
                ewa_min, no_improve = ewa, 0
            else:
                no_improve += 1
            if self.max_no_improvement is not None and no_improve >= self.max_no_improvement:
                break
        warn_not_converged(self._conv, "MiniBatchDictionaryLearning.fit (codes of the last mini-batch)",
                           stacklevel=3)
        self.n_steps_ = step + 1 if n_steps else 0
        self.n_iter_ = math.ceil(self.n_steps_ / per_epoch)
        return self

    def partial_fit(self, X, y=None):
        """One mini-batch (all of X) of online learning; the first call initialises the atoms from X (or
        ``dict_init``). Returns self."""
        self.check_minibatch_params()
        first = not hasattr(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first)
        X = X.astype(compute_dtype(X) if first else self.components_.dtype, copy=False)
        if first:
            self._start(X, check_random_state(self.random_state))
        self._batch = X.shape[0]
        self._step(X, X.shape[0], self.n_steps_, self._rng)
        warn_not_converged(self._conv, "MiniBatchDictionaryLearning.partial_fit", stacklevel=3)
        self.n_steps_ += 1
        return self
