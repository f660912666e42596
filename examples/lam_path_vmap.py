"""A Lasso regularisation path in one call: ``jax.vmap`` of FISTA over lam, checked against the KKT conditions.

For each lam, a*(lam) = argmin_a 1/2 ||y - D a||^2 + lam ||a||_1 satisfies (KKT) with g = D^T (y - D a*):
g_i = lam sign(a*_i) on the support and |g_i| <= lam off it; a* = 0 exactly when lam >= lam_max = ||D^T y||_inf.

Run:  python examples/lam_path_vmap.py            (n = 64, m = 256, 40 values of lam)
      python examples/lam_path_vmap.py --quick    (n = 24, m = 48, 8 values of lam)
Writes lam_path.png (support size and coefficient paths) to --out (default ./example_output).
"""
import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import sparsejax as sj

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny problem, a few seconds")
parser.add_argument("--out", default="example_output", help="folder for the PNG")
args = parser.parse_args()
n, m, k, n_lam = (24, 48, 3, 8) if args.quick else (64, 256, 8, 40)

key_d, key_s, key_c, key_e = jax.random.split(jax.random.PRNGKey(0), 4)
D = sj.random_gaussian(key_d, n, m)                                    # (n, m), unit-norm atoms
support = jax.random.choice(key_s, m, (k,), replace=False)
a_true = jnp.zeros(m).at[support].set(jax.random.normal(key_c, (k,)) + jnp.sign(jax.random.normal(key_c, (k,))))
y = D @ a_true + 0.02 * jax.random.normal(key_e, (n,))

lam_max = jnp.max(jnp.abs(D.T @ y))                                    # above it the solution is 0
lams = lam_max * jnp.geomspace(1.01, 1e-3, n_lam)                   # from just above lam_max


@jax.jit
def lasso_path(D, y, lams):
    """FISTA at every lam (vmapped: each lam stops on its own) and the KKT residual of each solution / lam."""
    sols = jax.vmap(lambda lam: sj.fista(D, y, lam, tol=1e-7, max_iter=20000))(lams)
    a = sols.codes                                                     # (n_lam, m)
    g = (y[None, :] - a @ D.T) @ D                                     # D^T (y - D a) for every lam
    lam = lams[:, None]
    # on the support g_i = lam sign(a_i); off it |g_i| <= lam
    viol = jnp.where(a != 0, jnp.abs(g - lam * jnp.sign(a)), jnp.maximum(jnp.abs(g) - lam, 0.0))
    return sols, jnp.max(viol, axis=1) / lams


sols, kkt = lasso_path(D, y, lams)
codes, on = np.asarray(sols.codes), np.asarray(sols.codes) != 0

print(f"lam_max = ||D^T y||_inf = {float(lam_max):.4f}; true support size {k}")
print(f"{'lam':>10} {'|supp|':>7} {'objective':>11} {'KKT/lam':>9} {'steps':>6} converged")
for i in range(n_lam):
    print(f"{float(lams[i]):10.5f} {int(on[i].sum()):7d} {float(sols.objective[i]):11.5f} {float(kkt[i]):9.1e} "
          f"{int(sols.num_steps[i]):6d} {bool(sols.converged[i])}")
print(f"all converged: {bool(np.all(sols.converged))}")
print(f"max KKT violation / lam over the path: {float(np.max(kkt)):.2e}")
print(f"support size at lam = 1.01 lam_max: {int(on[0].sum())} (theory: 0)")

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
fig = Figure(figsize=(9, 3.5))
ax = fig.add_subplot(1, 2, 1)
ax.semilogx(np.asarray(lams), np.asarray(on.sum(1)), "o-")
ax.set_xlabel("lam")
ax.set_ylabel("support size")
ax = fig.add_subplot(1, 2, 2)
ax.semilogx(np.asarray(lams), codes[:, np.asarray(support)])
ax.set_xlabel("lam")
ax.set_title("codes of the true atoms", fontsize=10)
fig.tight_layout()
fig.savefig(out / "lam_path.png", dpi=90)
print(f"wrote {out / 'lam_path.png'}")
