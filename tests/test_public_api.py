"""The public API: every name exported before the reorganisation still imports from ``sparsejax``, ``__all__`` is
complete and true, and each subpackage re-exports what its modules declare."""
import importlib

import pytest

import sparsejax

# the names ``sparsejax`` exported before the package was split into folders (release 0.1.0)
NAMES_0_1 = [
    "conv", "conv_norms", "dictionary", "shrink", "BatchConv", "Conv", "conv_adjoint", "conv_code_shape",
    "conv_synthesis", "normalize_filters", "conv_coherence", "conv_cross_correlation", "patch_l2_inf",
    "stripe_counts", "stripe_l0_inf", "stripe_l2_inf", "babel", "gram", "mutual_coherence", "normalize_atoms",
    "overcomplete_dct", "overcomplete_dct_2d", "random_gaussian", "Dense", "LinearOperator", "as_operator",
    "power_iteration", "admm_bpdn", "cbpdn_admm", "cbpdn_objective", "conv_thresholding", "admm_constrained",
    "duality_gap", "fista", "fista_solver", "ista", "ista_solver", "lasso_batch", "lasso_objective", "omp",
    "omp_batch", "thresholding", "encode", "layered_thresholding", "ml_bp_objective", "ml_ista", "Chain", "MLModel",
    "effective_dictionary", "molecules", "synthesize", "to_dense", "LayeredSolution", "ProjectionSolution",
    "layered_bp", "layered_bp_unfolded", "projection_pursuit", "fixed_point_implicit", "lasso_codes", "LoopResult",
    "run_loop", "latest_checkpoint", "load_checkpoint", "save_checkpoint", "Solution", "Solver", "iterate",
]

SUBPACKAGES = ["conv", "pursuit", "multilayer", "theory", "learn", "nn", "datasets", "reproduce", "cli"]


@pytest.mark.parametrize("name", NAMES_0_1)
def test_names_of_0_1_still_import(name):
    assert getattr(sparsejax, name) is not None
    assert name in sparsejax.__all__


def test_all_is_true():
    missing = [n for n in sparsejax.__all__ if not hasattr(sparsejax, n)]
    assert not missing


@pytest.mark.parametrize("pkg", SUBPACKAGES)
def test_subpackage_all_is_true(pkg):
    mod = importlib.import_module(f"sparsejax.{pkg}")
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing


def test_version_has_one_source():
    from sparsejax._version import VERSION

    assert sparsejax.__version__ == VERSION
    assert VERSION.count(".") == 2
