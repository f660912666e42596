"""Conventions of the neighbouring libraries, converted: scikit-learn, SPORCO / SCICO and Flax.

=====================  ===============================  ===========================================
quantity               sparsejax                        elsewhere
=====================  ===============================  ===========================================
dense dictionary       D (n, m), atoms as columns       scikit-learn ``components_`` (m, n), rows
Lasso weight           0.5 ||y - D a||^2 + lam ||a||_1   ``Lasso``: (1/2N) ||y - X w||^2 + alpha ||w||_1
OMP tolerance          ||r||_2 <= tol                   ``orthogonal_mp``: ||r||_2^2 <= tol
conv. filters          (M, C, h, w)                     SPORCO (h, w, M) or (h, w, C, M); Flax (h, w, C, M)
conv. codes            (M, H, W)                        SPORCO (H, W, 1, 1, M); Flax NHWC
=====================  ===============================  ===========================================

Synthesis here and in SPORCO is a sum of true convolutions, X = sum_m d_m * G_m; a Flax ``nn.Conv`` layer is a
correlation with its kernel, which is the *adjoint* of the synthesis with the same filters (no flip). So a
CNN layer with kernel K computes ``Conv(filters_from_flax_kernel(K), ...).T`` on its input (VALID padding: the
``"full"`` boundary mode).

scikit-learn's sparse coders (``SparseCoder``, ``sparse_encode`` with ``"lasso_lars"`` / ``"lasso_cd"``) already
use the 0.5 ||y - D a||^2 + alpha ||a||_1 scale, so there alpha = lam; only the ``Lasso`` regressor divides the
data term by its number of samples N (the signal length n, when a dictionary is the design matrix).
"""
from __future__ import annotations

import numpy as np

__all__ = ["dictionary_from_components", "components_from_dictionary", "lam_from_sklearn_alpha",
           "sklearn_alpha_from_lam", "omp_tol_from_sklearn", "sklearn_omp_tol", "filters_from_sporco",
           "filters_to_sporco", "codes_from_sporco", "filters_from_flax_kernel", "filters_to_flax_kernel"]


def _array(name: str, x, ndims: tuple) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {a.shape}")
    return a


def dictionary_from_components(components):
    """scikit-learn's ``components_`` (m atoms as rows, n features) -> D (n, m), atoms as columns.

    Example:
      >>> import numpy as np
      >>> from sparsejax.interop import dictionary_from_components
      >>> dictionary_from_components(np.zeros((5, 3))).shape
      (3, 5)
    """
    return _array("components", components, (2,)).T


def components_from_dictionary(D):
    """D (n, m), atoms as columns -> scikit-learn's ``components_`` layout (m, n)."""
    return _array("D", D, (2,)).T


def _positive(name, x) -> float:
    x = float(x)
    if not x >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {x}")
    return x


def lam_from_sklearn_alpha(alpha, n_samples: int) -> float:
    """The l1 weight lam of 0.5 ||y - D a||^2 + lam ||a||_1 equal to ``sklearn.linear_model.Lasso(alpha)``.

    ``Lasso`` minimises (1 / (2 N)) ||y - X w||^2 + alpha ||w||_1 with N = ``n_samples`` (the rows of X: the
    signal length when X is a dictionary); multiplying by N gives lam = alpha N.

    Example:
      >>> from sparsejax.interop import lam_from_sklearn_alpha
      >>> lam_from_sklearn_alpha(0.01, 64)
      0.64
    """
    return _positive("alpha", alpha) * int(n_samples)


def sklearn_alpha_from_lam(lam, n_samples: int) -> float:
    """The ``Lasso(alpha)`` of scikit-learn equal to our lam: alpha = lam / N."""
    return _positive("lam", lam) / int(n_samples)


def omp_tol_from_sklearn(tol) -> float:
    """scikit-learn's OMP ``tol`` bounds the squared residual norm; ours bounds the norm: sqrt(tol)."""
    return float(np.sqrt(_positive("tol", tol)))


def sklearn_omp_tol(tol) -> float:
    """Our OMP ``tol`` (a residual norm) as scikit-learn's (a squared norm): tol^2."""
    return _positive("tol", tol) ** 2


def filters_from_sporco(D):
    """SPORCO filters (h, w, M) or (h, w, C, M) -> (M, C, h, w) (C = 1 for the single-channel layout).

    Example:
      >>> import numpy as np
      >>> from sparsejax.interop import filters_from_sporco
      >>> filters_from_sporco(np.zeros((8, 8, 32))).shape
      (32, 1, 8, 8)
    """
    D = _array("D", D, (3, 4))
    if D.ndim == 3:
        D = D[:, :, None, :]
    return np.transpose(D, (3, 2, 0, 1))


def filters_to_sporco(filters):
    """(M, C, h, w) -> SPORCO's (h, w, M) when C = 1, else (h, w, C, M)."""
    f = _array("filters", filters, (4,))
    out = np.transpose(f, (2, 3, 1, 0))
    return out[:, :, 0, :] if out.shape[2] == 1 else out


def codes_from_sporco(X):
    """SPORCO coefficient maps (H, W, C, K, M) (C = K = 1: one single-channel image) -> ours (M, H, W).

    Raises ValueError for several channels or images (convert them one at a time).
    """
    X = _array("X", X, (5,))
    if X.shape[2] != 1 or X.shape[3] != 1:
        raise ValueError(f"X must hold one single-channel image, (H, W, 1, 1, M); got shape {X.shape}")
    return np.transpose(X[:, :, 0, 0, :], (2, 0, 1))


def filters_from_flax_kernel(kernel):
    """A Flax ``nn.Conv`` kernel (h, w, C_in, M) -> filters (M, C, h, w); the layer is then our adjoint."""
    return np.transpose(_array("kernel", kernel, (4,)), (3, 2, 0, 1))


def filters_to_flax_kernel(filters):
    """Filters (M, C, h, w) -> a Flax ``nn.Conv`` kernel (h, w, C, M) whose layer computes our adjoint."""
    return np.transpose(_array("filters", filters, (4,)), (2, 3, 1, 0))
