"""Cost of the unfolded networks vs the CNN on the MNIST architecture of Sulam, Aberdam, Beck & Elad (IEEE TPAMI
2020; ``sparsejax.nn.unfolded.MNIST_ARCH``).

    python -m benchmarks.unfolded [--quick] [--T 1,2,6] [--batches 128,1024] [--repeat 2]

For every network of ``sparsejax.nn.unfolded.NETWORKS`` (CNN, ML-ISTA, ML-FISTA, LBP, ML-LISTA) on
32@6x6/2 -> 64@6x6/2 -> 512@4x4/1 -> linear 10 (28 -> 12 -> 4 -> 1), and T unfoldings:

* training step: one jitted SGD (momentum 0.9, weight decay) step on a batch of 128 images, seconds;
* inference: jitted forward pass, images/s at each batch size;
* cost ratio network / CNN, next to the ideal 1 + 2T: the CNN is one analysis pass D_i^T per layer, and each
  unfolding adds about one synthesis D_i and one analysis D_i^T pass per layer (ML-ISTA also back-projects
  through the deeper layers, so a little more);
* the reference row ``flax_cnn``: the same CNN written the usual Flax way (``nn.Conv``, channels-last), so that
  ``cnn`` (ours: layered thresholding with ``sparsejax.conv.operator.BatchConv`` layers) is measured against the library
  users would otherwise write it with.

Wall-clock best of ``--repeat`` runs after a warm-up (compilation excluded); the 1-minute load average
(``os.getloadavg()``) is printed with every row because this machine is shared. ``--quick``: T = 1 and
batch 128 only, one repeat.
"""
from __future__ import annotations

import argparse
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._harness import Table, best_time
from sparsejax.nn.unfolded import MNIST_ARCH, NETWORKS, count_params

ORDER = ("cnn", "ml_ista", "ml_fista", "lbp", "ml_lista")


class FlaxCNN(nn.Module):
    """The reference: the same CNN written the usual Flax way (``nn.Conv``, channels-last, VALID padding),
    the per-image input (B, 1, 28, 28) moved to channels-last inside."""

    @nn.compact
    def __call__(self, x):
        x = jnp.transpose(x, (0, 2, 3, 1))
        for i, (M, k, s) in enumerate(MNIST_ARCH):
            x = nn.relu(nn.Conv(M, (k, k), strides=(s, s), padding="VALID", name=f"conv{i + 1}")(x))
        return nn.Dense(10, name="classifier")(x.reshape(x.shape[0], -1))


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def train_step_fn(net, params, batch: int):
    """A jitted SGD step (the mnist_classification optimiser) and a runner for a fixed random batch."""
    tx = optax.chain(optax.add_decayed_weights(1e-5), optax.sgd(0.002, momentum=0.9))
    opt = tx.init(params)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0, 1, (batch, 1, 28, 28)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(
            lambda q: optax.softmax_cross_entropy_with_integer_labels(net.apply(q, x), y).mean())(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    return lambda: step(params, opt)


def bench(Ts, batches, repeat: int, train_batch: int = 128) -> Table:
    table = Table("unfolded networks vs CNN on the MNIST architecture (cost ratio = network / CNN)")
    x_full = jnp.asarray(np.random.default_rng(1).uniform(0, 1, (max(batches), 1, 28, 28)), jnp.float32)
    cnn_cost = {}
    for T in Ts:
        for name in ORDER + ("flax_cnn",):
            if name in ("cnn", "flax_cnn") and T != Ts[0]:
                continue                              # the CNNs do not depend on T
            net = FlaxCNN() if name == "flax_cnn" else NETWORKS[name](T=T)
            params = net.init(jax.random.PRNGKey(0), x_full[:2])
            n_par = count_params(params)
            ideal = 1.0 if name in ("cnn", "flax_cnn") else 1.0 + 2 * T
            tlabel = "-" if name in ("cnn", "flax_cnn") else str(T)
            load0 = _load()
            sec, out = best_time(train_step_fn(net, params, train_batch), repeat=repeat)
            ok = bool(np.isfinite(float(out[2])))
            key = ("train", train_batch)
            if name == "cnn":
                cnn_cost[key] = sec
            table.add(f"train step, batch {train_batch}", f"{name} T={tlabel}", sec,
                      {"cost_vs_cnn": sec / cnn_cost[key], "ideal": ideal, "params": n_par, "finite": ok,
                       "load": f"{load0}->{_load()}"}, n_signals=train_batch)
            apply = jax.jit(net.apply)
            for b in batches:
                xb = x_full[:b]
                load0 = _load()
                sec, logits = best_time(lambda: apply(params, xb), repeat=repeat)
                key = ("infer", b)
                if name == "cnn":
                    cnn_cost[key] = sec
                table.add(f"inference, batch {b}", f"{name} T={tlabel}", sec,
                          {"cost_vs_cnn": sec / cnn_cost[key], "ideal": ideal,
                           "finite": bool(jnp.all(jnp.isfinite(logits))), "load": f"{load0}->{_load()}"},
                          n_signals=b)
    return table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T = 1, batch 128, one repeat")
    ap.add_argument("--T", default="1,2,6", help="comma-separated numbers of unfoldings")
    ap.add_argument("--batches", default="128,1024", help="comma-separated inference batch sizes")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args(argv)
    Ts = [int(v) for v in a.T.split(",")]
    batches = [int(v) for v in a.batches.split(",")]
    repeat = a.repeat
    if a.quick:
        Ts, batches, repeat = [1], [128], 1
    if any(T < 0 for T in Ts) or any(b < 1 for b in batches) or repeat < 1:
        raise ValueError(f"need T >= 0, batches >= 1 and repeat >= 1, got T={Ts}, batches={batches}, "
                         f"repeat={repeat}")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; load average at start {os.getloadavg()}",
          flush=True)
    table = bench(Ts, batches, repeat)
    table.print()
    print(f"load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
