"""Convolutional dictionaries: the ``Conv`` / ``BatchConv`` operators (synthesis and adjoint), their norms
(convolutional coherence, stripe and patch norms), and the Fourier helpers of the convolutional solvers.
"""

from sparsejax.conv import fourier, norms, operator
from sparsejax.conv.fourier import fsq, irfft, psum, rfft, sq
from sparsejax.conv.norms import (
    conv_coherence,
    conv_cross_correlation,
    patch_l2_inf,
    stripe_counts,
    stripe_l0_inf,
    stripe_l2_inf,
)
from sparsejax.conv.operator import (
    BOUNDARIES,
    METHODS,
    BatchConv,
    Conv,
    conv_adjoint,
    conv_code_shape,
    conv_synthesis,
    normalize_filters,
)

__all__ = [
    "fourier",
    "norms",
    "operator",
    "rfft",
    "irfft",
    "sq",
    "fsq",
    "psum",
    "conv_coherence",
    "conv_cross_correlation",
    "stripe_l0_inf",
    "stripe_l2_inf",
    "patch_l2_inf",
    "stripe_counts",
    "BOUNDARIES",
    "METHODS",
    "conv_synthesis",
    "conv_adjoint",
    "conv_code_shape",
    "normalize_filters",
    "Conv",
    "BatchConv",
]
