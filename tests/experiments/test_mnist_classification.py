"""The training loop of experiments/mnist_classification.py on a few bundled MNIST digits: exact resume, the
per-epoch shuffle (every image once per epoch, drawn once per epoch), learning above chance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparsejax.datasets.mnist import load_mnist
from sparsejax.learn.checkpoint import latest_checkpoint, load_checkpoint
from sparsejax.nn.unfolded import count_params
from sparsejax.reproduce.registry import load_experiment

MC = load_experiment("mnist_classification")

CFG = dict(models=("cnn", "ml_ista"), T=1, n_train=384, n_test=200, epochs=3, batch=64, lr=0.05, decay_epochs=30,
           weight_decay=1e-5, momentum=0.9, seeds=1, min_acc=0.3, checkpoint_every=4)


def _data():
    Xtr, Ytr = load_mnist("train", limit=CFG["n_train"])
    Xte, Yte = load_mnist("test", limit=CFG["n_test"])
    return tuple(jnp.asarray(a) for a in (Xtr, Ytr, Xte, Yte))


def _params_equal(a, b):
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.mark.slow  # ~20-40 s on 2 cores: kept out of CI (python -m pytest -m slow)
def test_training_resumes_exactly_and_learns(tmp_path):
    data = _data()
    whole = MC.train_model("ml_ista", CFG, data, 0, tmp_path / "whole", progress=False)
    # the same run interrupted after one epoch, then rerun to the end in the same folder
    MC.train_model("ml_ista", dict(CFG, epochs=1), data, 0, tmp_path / "split", progress=False)
    split = MC.train_model("ml_ista", CFG, data, 0, tmp_path / "split", progress=False)
    _, _, like = MC.training_setup("ml_ista", CFG, CFG["n_train"], 0)
    final = [load_checkpoint(latest_checkpoint(tmp_path / d), like) for d in ("whole", "split")]
    assert final[0].step == final[1].step == CFG["epochs"] * (CFG["n_train"] // CFG["batch"])
    assert _params_equal(final[0].tree["params"], final[1].tree["params"])
    assert whole["test_acc"] == split["test_acc"]
    # the state's shuffle is the last epoch's permutation of all images
    perm = np.asarray(final[0].tree["perm"])
    np.testing.assert_array_equal(np.sort(perm), np.arange(CFG["n_train"]))
    key = jax.random.fold_in(jax.random.PRNGKey(0), 1)
    np.testing.assert_array_equal(perm, np.asarray(jax.random.permutation(jax.random.fold_in(key, CFG["epochs"] - 1),
                                                                           CFG["n_train"])))
    assert whole["status"] == "completed" and whole["final_acc"] > CFG["min_acc"]   # chance: 0.1
    assert np.mean(whole["loss"][-6:]) < np.mean(whole["loss"][:6])


def test_learned_steps_are_parameters_of_the_trained_net(tmp_path):
    net, _, state = MC.training_setup("ml_ista", dict(CFG, learn_steps=True), CFG["n_train"], 0)
    assert {"r1", "r2", "r3"} <= set(state["params"]["params"])
    net0, _, state0 = MC.training_setup("cnn", CFG, CFG["n_train"], 0)
    assert count_params(state["params"]) == count_params(state0["params"]) + 3
