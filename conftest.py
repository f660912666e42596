"""Settings of the whole test run (tests/ and the docstring examples of the package).

* XLA compiles the test programs with backend optimisation level 0: the suite is dominated by compiling small
  programs (the run time of each is milliseconds), and level 0 compiles them about 20-40% faster on CPU (the same
  operations, less optimised machine code). Set before JAX is imported by any test; an XLA_FLAGS given by the user
  is kept and extended.
* ``CI_SLOW``: checks of 10-30 s each (measured: the slowest of a full run, 2 cores) that are marked ``slow``
  here so that CI stays under 20 minutes; they run with ``python -m pytest -m slow -q``. Most have faster siblings
  in the default run (the same function on another shape, dtype or path).
"""
import os

import pytest

if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

CI_SLOW = {
    "tests/pursuit/test_lasso_edges.py::test_small_dictionaries_every_front_door",
    "tests/pursuit/test_conventions.py::test_prox_nonneg_soft_gives_nonnegative_codes[lasso_batch]",
    "tests/pursuit/test_lasso_batch.py::test_no_retrace",
    "tests/pursuit/test_lasso_batch.py::test_kkt_and_gap[float64-False]",
    "tests/pursuit/test_sklearn_agreement.py::test_agreement_float64[False-lasso_batch]",
    "sparsejax/pursuit/lasso_batch.py::sparsejax.pursuit.lasso_batch.lasso_batch",
    "tests/theory/test_t2_stability.py::test_omp_exact_support_and_error[identity_hadamard-0.1]",
    "tests/experiments/test_mnist_classification.py::test_learned_steps_are_parameters_of_the_trained_net",
    "tests/multilayer/test_holistic.py::test_holistic_recovers_noiseless_signals_and_beats_projection",
    "sparsejax/pursuit/lasso_batch.py::sparsejax.pursuit.lasso_batch.BatchState",
    "tests/pursuit/test_lasso_edges.py::test_lam_zero_least_squares[12-16-32]",
    "tests/nn/test_attacks.py::test_pgd_in_ball_and_not_weaker_than_fgsm",
    "tests/nn/test_unfolded.py::test_ml_ista_network_equals_library_ml_ista[float64-False]",
    "tests/learn/test_learn_conv.py::test_admm_learner_recovers_planted_1d_filters[float64]",
    "sparsejax/pursuit/encode.py::sparsejax.pursuit.encode.EncodeState",
    "tests/pursuit/test_conventions.py::test_nonfinite_signal_in_a_batch_under_jit[lasso_batch]",
    "tests/nn/test_unfolded.py::test_T0_networks_are_the_cnn[float32]",
    "tests/theory/test_t2_stability.py::test_omp_exact_support_and_error[identity_hadamard-0.3]",
    "tests/multilayer/test_layered_bp.py::test_vmap_over_a_batch_equals_a_loop",
    "tests/experiments/test_adversarial.py::test_t9_certified_radius_never_flipped",
    "sparsejax/pursuit/lasso_batch.py::sparsejax.pursuit.lasso_batch.reason_counts",
    "tests/learn/test_learn_conv.py::test_admm_learner_recovers_planted_1d_filters[float32]",
    "tests/multilayer/test_signals.py::test_conv_multilayer_signal_chain_stripe_and_contrast[False-float64]",
    "tests/pursuit/test_sklearn_agreement.py::test_agreement_float64[True-lasso_batch]",
    "tests/learn/test_learn_multilayer.py::test_pursuit_prox_and_flags",
    "tests/test_differentiate.py::test_convolutional_operator_and_cg",
    "tests/nn/test_unfolded.py::test_ml_ista_network_equals_library_ml_ista[float32-False]",
    "tests/pursuit/test_lasso_batch.py::test_kkt_and_gap[float32-True]",
    "tests/pursuit/test_lasso_batch.py::test_kkt_and_gap[float64-True]",
    "tests/nn/test_unfolded.py::test_lbp_network_equals_layerwise_ista[float64]",
    "tests/pursuit/test_conventions.py::test_status_converged_and_max_steps",
    "tests/theory/test_t5_t9.py::test_t8_oracle_closed_form_vs_monte_carlo",
    "tests/nn/test_unfolded.py::test_T0_networks_are_the_cnn[float64]",
    "tests/multilayer/test_result.py::test_every_pursuit_returns_the_one_type",
    "tests/test_differentiate.py::test_unrolled_equals_checkpointed",
    "tests/theory/test_t2_stability.py::test_reference_omp_agrees_with_package_omp",
    "tests/multilayer/test_result.py::test_ml_ista_implicit_gradient_equals_unrolled",
    "tests/cli/test_cli.py::test_reproduce_quick_writes_html_and_json",
    "sparsejax/pursuit/csc.py::sparsejax.pursuit.csc.cbpdn_admm",
    "sparsejax/learn/dense.py::sparsejax.learn.dense.learn_dictionary",
    # the scikit-learn estimators' docstring examples (fit = a compiled solver each, ~5 s apiece); the estimators
    # are tested in tests/sklearn/ (agreement with scikit-learn and its estimator checks)
    "sparsejax/sklearn/conv.py::sparsejax.sklearn.conv.ConvDictionaryLearning",
    "sparsejax/sklearn/conv.py::sparsejax.sklearn.conv.ConvSparseCoder",
    "sparsejax/sklearn/dictlearn.py::sparsejax.sklearn.dictlearn.DictionaryLearning",
    "sparsejax/sklearn/dictlearn.py::sparsejax.sklearn.dictlearn.MiniBatchDictionaryLearning",
    "sparsejax/sklearn/linear.py::sparsejax.sklearn.linear.Lasso",
    "sparsejax/sklearn/linear.py::sparsejax.sklearn.linear.LassoLars",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in CI_SLOW:
            item.add_marker(pytest.mark.slow)
