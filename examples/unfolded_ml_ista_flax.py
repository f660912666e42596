"""An unfolded ML-ISTA network (``sparsejax.nn.MLISTANet``) trained in your own Flax / Optax loop on MNIST.

The network computes T + 1 ML-ISTA iterations of the multi-layer sparse coding problem
  G_i = P(G_i - r D_i^T (D_i G_i - G_{i-1}) + b_i),  G_0 = image,  P = ReLU,
from G = 0 and classifies G_K with a linear layer; T = 0 is the CNN with the same weights (Sulam et al., TPAMI
2020). It is a plain ``flax.linen.Module``: ``init`` / ``apply``, any Optax optimiser, your own loop.

Run:  python examples/unfolded_ml_ista_flax.py          (10,000 training images, 3 epochs, T = 2)
      python examples/unfolded_ml_ista_flax.py --quick  (512 training images, 1 epoch)
Data: the MNIST files bundled with sparsejax (``sparsejax.datasets.mnist.load_mnist``).
"""
import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sparsejax as sj
from sparsejax.datasets.mnist import load_mnist

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny subset, a few seconds")
parser.add_argument("--T", type=int, default=2, help="number of unfoldings (0 = the CNN)")
parser.add_argument("--out", default="example_output", help="unused (no figure); kept for a uniform interface")
args = parser.parse_args()
n_train, n_test, epochs, batch = (512, 500, 1, 32) if args.quick else (10_000, 2_000, 3, 64)

x_train, y_train = load_mnist("train", limit=n_train)                 # (N, 1, 28, 28) in [0, 1], labels 0..9
x_test, y_test = load_mnist("test", limit=n_test)

# two convolutional layers (filters, kernel, stride): 28 x 28 -> 12 x 12 -> 4 x 4, then a linear classifier
net = sj.nn.MLISTANet(arch=((16, 6, 2), (32, 6, 2)), T=args.T, input_shape=(1, 28, 28), num_classes=10)
params = net.init(jax.random.PRNGKey(0), jnp.asarray(x_train[:1]))
print(f"ML-ISTA, T = {args.T}: {sum(p.size for p in jax.tree_util.tree_leaves(params)):,} parameters")
optimizer = optax.adam(2e-3)
opt_state = optimizer.init(params)


def loss_fn(params, x, y):
    logits = net.apply(params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@jax.jit
def train_step(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


@jax.jit
def accuracy(params, x, y):
    return jnp.mean(jnp.argmax(net.apply(params, x), axis=1) == y)


rng = np.random.default_rng(0)
print(f"test accuracy before training: {100 * float(accuracy(params, x_test, y_test)):.1f}%")
for epoch in range(epochs):
    order = rng.permutation(n_train)
    losses = []
    for i in range(0, n_train - batch + 1, batch):
        idx = order[i:i + batch]
        params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
        losses.append(float(loss))
    print(f"epoch {epoch + 1}: mean training loss {np.mean(losses):.3f}")
print(f"test accuracy after training: {100 * float(accuracy(params, x_test, y_test)):.1f}%"
      f" ({n_test} test images, {n_train} training images)")
