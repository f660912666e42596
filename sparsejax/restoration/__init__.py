"""Patch-based image restoration with sparse models: K-SVD denoising (Elad & Aharon, IEEE TIP 2006) over the
overcomplete DCT or a dictionary learned on the noisy image, patch inpainting by masked OMP, deblurring.

Modules: ``dct`` (the overcomplete 2-D DCT dictionary), ``ksvd_denoise`` (sparse coding of patches under the error
target, the K-SVD dictionary updates, the closed-form image update and the ``ksvd_denoise`` driver), ``inpaint``
(masked OMP on each patch's known pixels, then averaging), ``deblur`` (a blur operator in the data term, FISTA).
"""
from sparsejax.restoration.dct import overcomplete_dct, overcomplete_dct_1d
from sparsejax.restoration.deblur import Blur, Composed, DeblurResult, PatchSynthesis, box_psf, deblur, gaussian_psf
from sparsejax.restoration.inpaint import InpaintResult, MaskedCodes, inpaint_patches, masked_omp
from sparsejax.restoration.ksvd_denoise import (
    GAIN,
    KSVDDenoiseResult,
    PatchCodes,
    approximate_ksvd_update,
    error_target,
    image_update,
    ksvd_denoise,
    paper_lambda,
    sparse_code_patches,
)

__all__ = [
    "Blur", "Composed", "DeblurResult", "PatchSynthesis", "box_psf", "deblur", "gaussian_psf",
    "InpaintResult", "MaskedCodes", "inpaint_patches", "masked_omp",
    "GAIN",
    "KSVDDenoiseResult",
    "PatchCodes",
    "approximate_ksvd_update",
    "error_target",
    "image_update",
    "ksvd_denoise",
    "overcomplete_dct",
    "overcomplete_dct_1d",
    "paper_lambda",
    "sparse_code_patches",
]
