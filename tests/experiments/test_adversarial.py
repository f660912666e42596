"""experiments/adversarial.py: the accuracy-under-attack accounting with the package's attacks
(``sparsejax.nn.attacks``, tested in tests/nn/test_attacks.py) and the T9 margin check (Romano, Aberdam, Sulam &
Elad, JMIV 2020).

* ``robustness_curve`` counts exactly the images that ``fgsm`` / ``pgd`` leave correctly classified.
* T9: perturbations with ||E||^p_{2,inf} below the certified radius (T5 layered thresholding, T6 layered
  BP) never flip the linear decision on the deepest code of synthetic ML-CSC signals.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sparsejax.nn.attacks import fgsm, pgd
from sparsejax.reproduce.registry import load_experiment
from sparsejax.theory import multilayer as tm

A = load_experiment("adversarial")


def test_robustness_curve_counts_the_package_attacks():
    rng = np.random.default_rng(8)
    W = jnp.asarray(rng.standard_normal((784, 10)) / 28, jnp.float32)
    X = jnp.asarray(rng.uniform(0, 1, (40, 1, 28, 28)), jnp.float32)

    def apply(params, x):
        return x.reshape(x.shape[0], -1) @ params

    Y = jnp.argmax(apply(W, X), axis=1)                      # every clean image is classified correctly
    eps, steps = 0.02, 3
    curve = A.robustness_curve(apply, W, X, Y, (0.0, eps), pgd_steps=steps, chunk=16)
    loss = lambda x, y: optax.softmax_cross_entropy_with_integer_labels(apply(W, x), y)  # noqa: E731
    correct = lambda xa: int(jnp.sum(jnp.argmax(apply(W, xa), axis=1) == Y))  # noqa: E731
    assert curve["n"] == 40 and curve["eps"] == [0.0, eps]
    assert curve["fgsm"]["correct"] == [40, correct(fgsm(loss, X, Y, eps))]
    assert curve["pgd"]["correct"] == [40, correct(pgd(loss, X, Y, eps, steps, alpha=2.5 * eps / steps))]
    assert curve["fgsm"]["correct"][1] < 40                  # the attack has teeth at this size
    for attack in ("fgsm", "pgd"):
        assert curve[attack]["max_linf"][1] <= eps * (1 + 1e-6)
        assert curve[attack]["ci95_lo"][1] <= curve[attack]["accuracy"][1] <= curve[attack]["ci95_hi"][1]


def test_t9_certified_radius_never_flipped(x64):
    L = tm.incoherent_conv_layers(256, jnp.float64)
    levels = jnp.asarray([0.5, 0.99])
    grid = jnp.asarray([0.003, 1.0])
    r_lt, r_lbp, keep_lt, keep_lbp, k = A._t9_batch(L, jax.random.PRNGKey(7), 2, 3, levels, grid)
    assert np.all(r_lt > 0) and np.all(r_lbp > 0)                 # the T5 / T6 conditions hold on these draws
    np.testing.assert_array_equal(k, np.broadcast_to([3, 1], k.shape))
    # keep: (draws, levels, directions): no flip below the radius (random and attack directions)
    assert keep_lt[:, :2].all() and keep_lbp[:, :2].all()
    # the check has teeth: a perturbation of the size of the code (eps_0 = 1) along the attack flips it
    assert not keep_lt[:, -1, -1].all() and not keep_lbp[:, -1, -1].all()
