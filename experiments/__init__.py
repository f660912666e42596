"""The reproduced results of sparsejax, one script per published claim.

In the repository they live in ``experiments/``; the wheel installs them as ``sparsejax.experiments`` so that
``sparsejax reproduce NAME`` works from an installed wheel as well as from a source checkout. Each script declares
an ``EXPERIMENT`` and defines ``run(quick, out_dir, seed=0, preset=None)``; ``sparsejax.reproduce.registry`` lists
them.
"""
