"""Learn a dictionary by gradient descent *through* the Lasso solver, with an Optax optimiser.

Loss(D) = mean_j 1/2 ||y_j - D a*(D, y_j)||^2 with a*(D, y) = argmin_a 1/2 ||y - D a||^2 + lam ||a||_1.
``sparsejax.lasso_codes(..., mode="implicit")`` differentiates a* at its fixed point (a linear solve on the
support) instead of back-propagating through the iterations; after each Adam step the atoms are put back on the
unit sphere.

Run:  python examples/dictionary_gradient_optax.py           (16 x 32 dictionary, 512 signals, 300 steps)
      python examples/dictionary_gradient_optax.py --quick   (8 x 12 dictionary, 64 signals, 12 steps)
"""
import argparse

import jax
import jax.numpy as jnp
import optax

import sparsejax as sj

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny problem, a few seconds")
parser.add_argument("--out", default="example_output", help="unused (no figure); kept for a uniform interface")
args = parser.parse_args()
n, m, k, n_signals, n_steps = (8, 12, 2, 64, 12) if args.quick else (16, 32, 3, 512, 300)
lam = 0.05

# training signals: k-sparse combinations of the atoms of a hidden dictionary, plus a little noise
k_true, k_init, k_supp, k_val, k_noise = jax.random.split(jax.random.PRNGKey(0), 5)
D_true = sj.random_gaussian(k_true, n, m)
rows = jnp.arange(n_signals)[:, None]
supp = jax.vmap(lambda kk: jax.random.choice(kk, m, (k,), replace=False))(jax.random.split(k_supp, n_signals))
A = jnp.zeros((n_signals, m)).at[rows, supp].set(jax.random.uniform(k_val, (n_signals, k), minval=0.5) + 0.5)
Y = A @ D_true.T + 0.01 * jax.random.normal(k_noise, (n_signals, n))


def loss_fn(D, Y):
    codes = jax.vmap(lambda y: sj.lasso_codes(D, y, lam, mode="implicit", tol=1e-5))(Y)
    return 0.5 * jnp.mean(jnp.sum((Y - codes @ D.T) ** 2, axis=1))


optimizer = optax.adam(1e-2)


@jax.jit
def train_step(D, opt_state, Y):
    loss, grad = jax.value_and_grad(loss_fn)(D, Y)                   # d loss / d D through the solver
    updates, opt_state = optimizer.update(grad, opt_state, D)
    D = sj.normalize_atoms(optax.apply_updates(D, updates))            # back to unit-norm atoms
    return D, opt_state, loss


D = sj.random_gaussian(k_init, n, m)
opt_state = optimizer.init(D)
losses = []
for step in range(n_steps):
    D, opt_state, loss = train_step(D, opt_state, Y)
    losses.append(float(loss))
    if step % max(1, n_steps // 10) == 0 or step == n_steps - 1:
        print(f"step {step:4d}  loss {losses[-1]:.5f}")

print(f"loss: first {losses[0]:.5f} -> last {losses[-1]:.5f} ({100 * (1 - losses[-1] / losses[0]):.0f}% lower)")
