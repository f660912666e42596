"""sparsejax: sparse modeling (Sparseland, CSC, ML-CSC) as pure, jittable JAX functions.

The package is layered; each layer imports only the ones above it in this list:

* ``_validate``, ``cores``: argument checks run before tracing; every CPU core for the batched coders.
* ``shrink``, ``dictionary``, ``solve``, ``operators``, ``datasets``, ``interop``: shrinkage operators, dense
  dictionaries, the one iteration driver, linear operators, the bundled data, the other libraries' conventions.
* ``conv``: convolutional dictionaries.
* ``pursuit``: sparse coding (thresholding, OMP, ISTA / FISTA, ADMM, batched Lasso, CSC, ``encode``).
* ``patches``: patch extraction and its adjoint (overlap-add).
* ``multilayer``, ``differentiate``, ``imaging``, ``distributed``, ``streaming``: the ML-CSC model and its
  pursuits, differentiating through pursuits, image restoration with CSC, many devices and processes, coding
  streams bigger than memory.
* ``theory``, ``learn``, ``nn``, ``separation``: executable theorems, dictionary learning, unfolded networks,
  morphological component analysis.
* ``reproduce``, ``restoration``, ``sklearn``: the experiment registry and report, patch-based restoration
  (K-SVD denoising, inpainting, deblurring), scikit-learn estimators (``import sparsejax.sklearn``: it needs
  scikit-learn, an optional dependency, and is not imported with the package).
* ``cli``: the command line.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import sparsejax as sj
    >>> D = sj.random_gaussian(jax.random.PRNGKey(0), 20, 40)
    >>> y = D[:, 3] * 2.0
    >>> sol = sj.omp(D, y, k=1)
    >>> int(jnp.argmax(jnp.abs(sol.codes))), bool(sol.converged)
    (3, True)
"""
from sparsejax import (
                       conv,
                       cores,
                       datasets,
                       dictionary,
                       differentiate,
                       distributed,
                       imaging,
                       interop,
                       learn,
                       multilayer,
                       nn,
                       operators,
                       patches,
                       pursuit,
                       restoration,
                       separation,
                       shrink,
                       solve,
                       streaming,
                       theory,
)
from sparsejax._version import VERSION as __version__
from sparsejax.conv import (
                       BatchConv,
                       Conv,
                       conv_adjoint,
                       conv_code_shape,
                       conv_synthesis,
                       normalize_filters,
)
from sparsejax.conv import norms as conv_norms
from sparsejax.cores import cpu_cores_in_use, use_cpu_cores
from sparsejax.conv.norms import (
                       conv_coherence,
                       conv_cross_correlation,
                       patch_l2_inf,
                       stripe_counts,
                       stripe_l0_inf,
                       stripe_l2_inf,
)
from sparsejax.dictionary import (
                       babel,
                       gram,
                       mutual_coherence,
                       normalize_atoms,
                       overcomplete_dct,
                       overcomplete_dct_2d,
                       random_gaussian,
)
from sparsejax.differentiate import fixed_point_implicit, lasso_codes
from sparsejax.imaging import image_scale, noise_sigma
from sparsejax.learn.checkpoint import (
                       CheckpointReadError,
                       CheckpointWriteError,
                       latest_checkpoint,
                       load_latest,
                       load_checkpoint,
                       save_checkpoint,
)
from sparsejax.learn.loop import ConfigMismatchError, LoopResult, run_config, run_loop
from sparsejax.multilayer.layered import layered_thresholding, ml_bp_objective, ml_ista
from sparsejax.multilayer.layered_bp import (
                       LayeredSolution,
                       ProjectionSolution,
                       layered_bp,
                       layered_bp_unfolded,
                       projection_pursuit,
)
from sparsejax.multilayer.model import (
                       Chain,
                       MLModel,
                       effective_dictionary,
                       molecules,
                       synthesize,
                       to_dense,
)
from sparsejax.operators import Dense, LinearOperator, as_operator, power_iteration
from sparsejax.pursuit import (
                       admm_bpdn,
                       admm_constrained,
                       cbpdn_admm,
                       cbpdn_objective,
                       conv_thresholding,
                       duality_gap,
                       encode,
                       fista,
                       fista_solver,
                       ista,
                       ista_solver,
                       lasso_batch,
                       lasso_objective,
                       omp,
                       omp_batch,
                       thresholding,
)
from sparsejax.multilayer.result import MLSolution
from sparsejax.patches import average_patches, extract_patches, put_patches
from sparsejax.pursuit import (
                       bpdn_joint,
                       bpdn_proj_l1,
                       conv_bpdn_joint,
                       default_lam,
                       elastic_net,
                       lars_path,
                       lasso_path,
                       omp_gram,
)
from sparsejax.restoration import deblur, inpaint_patches, ksvd_denoise
from sparsejax.separation import cartoon_texture, mca
from sparsejax.streaming import encode_chunks, encode_to_file
from sparsejax.pursuit import bpdn_admm, bpdn_constrained_admm, cbpdn_admm_solver
from sparsejax.pursuit.lasso_batch import path_counts, reason_counts
from sparsejax.solve import Solution, Solver, Status, iterate

__all__ = [
    # subpackages and modules
    "conv", "conv_norms", "datasets", "dictionary", "differentiate", "distributed", "imaging", "interop", "learn",
    "multilayer", "nn", "operators", "pursuit", "shrink", "solve", "theory", "patches", "restoration",
    "separation", "streaming", "cores",
    # every CPU core for the batched coders
    "use_cpu_cores", "cpu_cores_in_use",
    # operators and dictionaries
    "LinearOperator", "Dense", "as_operator", "power_iteration", "Conv", "BatchConv", "conv_synthesis",
    "conv_adjoint", "conv_code_shape", "normalize_filters", "conv_coherence", "conv_cross_correlation",
    "patch_l2_inf", "stripe_counts", "stripe_l0_inf", "stripe_l2_inf", "babel", "gram", "mutual_coherence",
    "normalize_atoms", "overcomplete_dct", "overcomplete_dct_2d", "random_gaussian",
    # the driver and pursuits
    "Solution", "Solver", "iterate", "thresholding", "omp", "omp_batch", "ista", "fista", "ista_solver",
    "fista_solver", "lasso_objective", "admm_bpdn", "admm_constrained", "lasso_batch", "duality_gap", "encode",
    "cbpdn_admm", "cbpdn_objective", "conv_thresholding",
    # multi-layer
    "layered_thresholding", "ml_ista", "ml_bp_objective", "Chain", "MLModel", "effective_dictionary",
    "molecules", "synthesize", "to_dense", "LayeredSolution", "ProjectionSolution", "layered_bp",
    "layered_bp_unfolded", "projection_pursuit",
    # differentiation, learning loop, checkpoints
    "fixed_point_implicit", "lasso_codes", "LoopResult", "run_loop", "latest_checkpoint", "load_checkpoint",
    "save_checkpoint",
    "MLSolution", "bpdn_admm", "bpdn_constrained_admm", "cbpdn_admm_solver", "Status",
    # which path the batched Lasso took; safe resume; image scale and noise level
    "path_counts", "reason_counts", "run_config", "ConfigMismatchError", "CheckpointReadError",
    "CheckpointWriteError", "load_latest", "image_scale", "noise_sigma",
    # the peers' solver forms; patches and restoration; separation; streams
    "omp_gram", "lars_path", "lasso_path", "bpdn_joint", "conv_bpdn_joint", "bpdn_proj_l1", "elastic_net",
    "default_lam", "extract_patches", "put_patches", "average_patches", "ksvd_denoise", "inpaint_patches",
    "deblur", "mca", "cartoon_texture", "encode_chunks", "encode_to_file",
    "__version__",
]
