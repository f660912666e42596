"""The run / save / report boilerplate every experiment of ``experiments/`` shares.

An experiment script names its configurations (``PRESETS``: at least ``"quick"``, the seconds-long one that CI
runs) and writes only its science; this module does the rest:

    EXPERIMENT = Experiment(NAME, TITLE, __doc__, PRESETS, default="full")

    def run(quick, out_dir, seed=0, preset=None):
        trial = EXPERIMENT.start(quick, preset, out_dir, seed)   # preset chosen, out_dir created, clock started
        ...                                                      # trial.config, trial.out_dir, save_figure(...)
        return EXPERIMENT.result(trial, measured=..., predicted=..., figures=[...], passed=..., claim_shown=...)

    if __name__ == "__main__":
        raise SystemExit(EXPERIMENT.main(run))      # python experiments/NAME.py [--quick | --preset P] ...

A result is the dict the report (``sparsejax.reproduce.report.write_report``) and ``sparsejax reproduce`` read:
``name``, ``title``, ``description``, ``preset``, ``seed``, ``measured`` and ``predicted`` (the numbers next to
the theory's), ``figures`` (PNG names relative to the output folder), ``seconds``, and two separate verdicts:

* ``passed``: the experiment ran correctly, i.e. every check it asserts held (the exit status of the script
  and of ``sparsejax reproduce``);
* ``claim_shown``: whether the published claim the experiment reproduces is shown at this scale (True or
  False; None when the preset cannot decide it). The report says PASS only when both hold.

``verdict`` (also stored in the result) joins them: PASS (ran correctly and claim shown), RAN (ran correctly,
claim not shown), FAIL (a check failed, or some solve did not converge), ERROR (raised). A result also carries

* ``converged``: per solver, the fraction of its solves that met their tolerance. A run with any fraction below 1
  is rejected (``passed`` false, the reason in ``rejected``): numbers from unconverged solves show nothing;
* ``table``: the measured and predicted values, one row per setting (``{"columns": [...], "rows": [[...]]}``),
  printed aligned by ``format_table`` and by the command line;
* ``provenance``: the command, preset, seeds, git commit, versions and machine (``provenance``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Mapping, NamedTuple, Sequence

import jax
import jaxlib
import numpy as np

from sparsejax._version import VERSION

__all__ = ["Experiment", "Trial", "experiment_main", "select_preset", "save_figure", "verdict", "provenance",
           "format_table", "make_table", "converged_check", "wilson_interval"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def verdict(result: dict) -> str:
    """The status of one experiment result.

    "ERROR" when it raised, "FAIL" when a check it asserts failed or its solves did not all converge (``passed``
    false), "PASS" when it ran correctly and its claim is shown (``claim_shown`` true; a result without that
    field is judged by ``passed`` alone), else "RAN" (correct run, claim not shown or not decidable at this
    scale).

    Args:
      result: an experiment result dict.

    Returns:
      One of "ERROR", "FAIL", "PASS", "RAN".

    Example:
      >>> from sparsejax.reproduce.experiment import verdict
      >>> verdict({"passed": True, "claim_shown": True}), verdict({"passed": True, "claim_shown": False})
      ('PASS', 'RAN')
      >>> verdict({"passed": True, "claim_shown": None}), verdict({"passed": False, "claim_shown": True})
      ('RAN', 'FAIL')
      >>> verdict({"passed": False, "error": "boom"})
      'ERROR'
    """
    if result.get("error"):
        return "ERROR"
    if not result.get("passed"):
        return "FAIL"
    return "PASS" if result.get("claim_shown", True) else "RAN"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(_REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(name: str | None = None, preset: str | None = None, seeds: Sequence[int] = (),
               command: str | None = None) -> dict:
    """Where a result came from: what to run again and on what it ran.

    Args:
      name: the experiment's name (gives the equivalent script command).
      preset: the preset's name.
      seeds: every random seed the run used.
      command: the command line as typed (default: this process's ``sys.argv``).

    Returns:
      A dict: ``command``, ``rerun`` (the script command that repeats the run), ``preset``, ``seeds``,
      ``git_commit`` (with "+uncommitted" when tracked files differ from it; None outside a checkout),
      ``versions`` (sparsejax, jax, jaxlib, numpy, python) and ``machine`` (platform, cpu_count, device_kind,
      backend, devices, x64_default).

    Example:
      >>> from sparsejax.reproduce.experiment import provenance
      >>> p = provenance("toy", "quick", [3], command="python toy.py --quick")
      >>> p["command"], p["rerun"], p["seeds"], sorted(p["versions"])
      ('python toy.py --quick', 'python experiments/toy.py --preset quick --seed 3', [3], \
['jax', 'jaxlib', 'numpy', 'python', 'sparsejax'])
      >>> {"platform", "cpu_count", "device_kind"} <= set(p["machine"])
      True
    """
    seeds = [int(s) for s in seeds]
    machine = {"platform": platform.platform(), "processor": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        devs = jax.devices()
        machine.update(device_kind=devs[0].device_kind, backend=jax.default_backend(),
                       devices=[str(d) for d in devs])
    except Exception as e:  # pragma: no cover
        machine.update(device_kind=f"unavailable: {e}", backend=None, devices=[])
    machine["x64_default"] = bool(jax.config.jax_enable_x64)
    rerun = None
    if name:
        rerun = f"python experiments/{name}.py" + (f" --preset {preset}" if preset else "")
        rerun += f" --seed {seeds[0]}" if seeds else ""
    return {
        "command": command if command is not None else " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "rerun": rerun,
        "preset": preset,
        "seeds": seeds,
        "git_commit": _git_commit(),
        "versions": {"sparsejax": VERSION, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "machine": machine,
    }


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_cell(x) for x in v) + "]"
    return str(v)


def make_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> dict:
    """A result table from rows (one per setting): ``{"columns": [...], "rows": [[...], ...]}``.

    Args:
      rows: one mapping per setting, column name -> value.
      columns: the column order (default: the keys in order of first appearance); missing values are None.

    Returns:
      The table dict (JSON-ready; ``format_table`` prints it).

    Example:
      >>> from sparsejax.reproduce.experiment import make_table
      >>> make_table([{"T": 1, "ratio": 2.5}, {"T": 2, "note": "x"}])
      {'columns': ['T', 'ratio', 'note'], 'rows': [[1, 2.5, None], [2, None, 'x']]}
    """
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    return {"columns": list(columns), "rows": [[r.get(c) for c in columns] for r in rows]}


def format_table(table: Mapping) -> str:
    """Plain-text table with aligned columns (floats to 4 significant digits, None as "-").

    Args:
      table: ``{"columns": [...], "rows": [[...], ...]}`` (``make_table``).

    Returns:
      The text, one line per row under a header and a rule.

    Example:
      >>> from sparsejax.reproduce.experiment import format_table, make_table
      >>> print(format_table(make_table([{"T": 1, "FISTA its / T": 2.5}, {"T": 16, "FISTA its / T": None}])))
      T   FISTA its / T
      --  -------------
      1   2.5
      16  -
    """
    cols = [str(c) for c in table["columns"]]
    cells = [[_cell(v) for v in row] for row in table["rows"]]
    width = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, width)).rstrip()  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in width])] + [line(r) for r in cells])


def wilson_interval(successes, trials, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate (95% with the default z): the interval to print beside a rate
    measured on ``trials`` draws, sensible also at 0% and 100%.

    Args:
      successes: the number of successes (0 <= successes <= trials).
      trials: the number of draws (> 0).
      z: the normal quantile (1.96: 95%).

    Returns:
      ``(low, high)``, within [0, 1].

    Example:
      >>> from sparsejax.reproduce.experiment import wilson_interval
      >>> [round(v, 3) for v in wilson_interval(100, 100)], [round(v, 3) for v in wilson_interval(50, 100)]
      ([0.963, 1.0], [0.404, 0.596])
    """
    n, k = float(trials), float(successes)
    if n <= 0:
        raise ValueError(f"trials must be > 0, got {trials}")
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def converged_check(converged: Mapping[str, float] | None) -> str | None:
    """The reason a run is rejected for unconverged solves, or None when every solve converged.

    Args:
      converged: solver name -> fraction (0 to 1) of its solves that met their tolerance.

    Returns:
      None when every fraction is 1 (or there is none), else a message listing the fractions below 1.

    Example:
      >>> from sparsejax.reproduce.experiment import converged_check
      >>> converged_check({"holistic": 1.0, "projection": 0.67})
      'unconverged solves: projection 67.00% converged'
      >>> converged_check({"holistic": 1.0}) is None, converged_check({"holistic": 23519 / 23520})
      (True, 'unconverged solves: holistic 99.99% converged')
    """
    bad = {k: float(v) for k, v in (converged or {}).items() if not float(v) >= 1.0}
    if not bad:
        return None
    return "unconverged solves: " + ", ".join(f"{k} {_percent_down(v)} converged" for k, v in bad.items())


def _percent_down(v) -> str:
    """A fraction as a percentage rounded down (a fraction below 1 never prints as 100.00%)."""
    return "nan%" if math.isnan(v) else f"{math.floor(1e4 * float(v) + 1e-9) / 100:.2f}%"


def select_preset(quick: bool, preset, presets: Mapping, out_dir, default: str = "short"):
    """Pick an experiment's configuration and create its output folder.

    The preset is ``"quick"`` when ``quick`` is set, else ``preset``, else ``default``.

    Args:
      quick: the small preset (what CI and ``--quick`` run).
      preset: a preset name, or None for ``default``.
      presets: name -> configuration dict.
      out_dir: the output folder (created with its parents).
      default: the preset used when neither ``quick`` nor ``preset`` is given.

    Returns:
      ``(name, config, out_dir)`` with ``out_dir`` a ``Path``.

    Raises:
      ValueError naming the known presets when the chosen one is not among them.

    Example:
      >>> import tempfile
      >>> from sparsejax.reproduce.experiment import select_preset
      >>> presets = {"quick": {"n": 8}, "full": {"n": 512}}
      >>> tag, cfg, out = select_preset(False, None, presets, tempfile.mkdtemp(), default="full")
      >>> tag, cfg["n"], out.is_dir()
      ('full', 512, True)
      >>> select_preset(True, None, presets, out)[0]
      'quick'
    """
    tag = "quick" if quick else (preset or default)
    if tag not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {tag!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return tag, presets[tag], out_dir


def save_figure(fig, out_dir, name: str, dpi: int = 110) -> str:
    """Lay out ``fig``, write it as the PNG ``out_dir/name`` and close it (long runs do not pile up figures).

    Args:
      fig: a Matplotlib figure (``matplotlib.figure.Figure``).
      out_dir: an existing folder.
      name: the file name, ending in ``.png``.
      dpi: resolution.

    Returns:
      ``name``: the file name the report links to (relative to ``out_dir``).

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from matplotlib.figure import Figure
      >>> from sparsejax.reproduce.experiment import save_figure
      >>> fig = Figure(figsize=(2, 2))
      >>> _ = fig.add_subplot().plot([0, 1], [1, 0])
      >>> out = Path(tempfile.mkdtemp())
      >>> save_figure(fig, out, "line.png", dpi=50), (out / "line.png").read_bytes()[1:4]
      ('line.png', b'PNG')
    """
    import matplotlib.pyplot as plt   # a plotting backend starts only where a figure is written

    fig.tight_layout()
    fig.savefig(Path(out_dir) / name, dpi=dpi)
    plt.close(fig)
    return name


def experiment_main(run: Callable[..., dict], name: str, title: str, argv=None, presets: Mapping | None = None
                    ) -> int:
    """The command line of one experiment script:
    ``python experiments/NAME.py [--quick | --preset P] [--out DIR] [--seed N]``.

    Runs ``run(quick, out_dir, seed)`` (with ``presets``: ``run(quick, out_dir, seed, preset=P)``, where
    ``--quick`` is ``--preset quick``), writes the result to ``DIR/NAME.json``, prints its table (when it has
    one, aligned), the fraction of converged solves per solver (when recorded), the reason it was rejected (if
    so), and its name, verdicts and seconds as one JSON line.

    Args:
      run: the experiment's run function; returns a result dict (see the module docstring).
      name: the experiment's name (the JSON file's stem).
      title: one line, the command's description.
      argv: the arguments (default ``sys.argv[1:]``).
      presets: the experiment's named configurations (offers ``--preset``), or None.

    Returns:
      The exit status: 0 when the result passed, 1 otherwise.

    Example:
      >>> import json, tempfile
      >>> from pathlib import Path
      >>> from sparsejax.reproduce.experiment import experiment_main
      >>> def run(quick, out_dir, seed=0):
      ...     return {"name": "toy", "passed": quick, "claim_shown": None, "seconds": 0.0}
      >>> out = Path(tempfile.mkdtemp())
      >>> experiment_main(run, "toy", "a toy", argv=["--quick", "--out", str(out)])
      {"name": "toy", "verdict": "RAN", "passed": true, "claim_shown": null, "seconds": 0.0}
      0
      >>> json.loads((out / "toy.json").read_text())["passed"]
      True
    """
    ap = argparse.ArgumentParser(description=title)
    ap.add_argument("--quick", action="store_true", help="the small preset (seconds; what CI runs)")
    if presets:
        ap.add_argument("--preset", choices=sorted(presets), default=None,
                        help="a named configuration (see the script's docstring)")
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if presets:
        res = run(a.quick or a.preset == "quick", a.out, a.seed, preset=a.preset)
    else:
        res = run(a.quick, a.out, a.seed)
    res.setdefault("verdict", verdict(res))
    (a.out / f"{name}.json").write_text(json.dumps(res, indent=2, default=str))
    if res.get("table"):
        print(format_table(res["table"]))
    if res.get("converged"):
        print("converged: " + ", ".join(f"{k} {_percent_down(v)}" for k, v in res["converged"].items()))
    if res.get("rejected"):
        print(f"rejected: {res['rejected']}")
    print(json.dumps({k: res.get(k) for k in ("name", "verdict", "passed", "claim_shown", "seconds")}))
    return 0 if res.get("passed") else 1


class Trial(NamedTuple):
    """One run of an experiment, as ``Experiment.start`` begins it.

    Attributes:
      preset: the preset's name ("quick", "short", "full", ...).
      config: the preset's configuration dict.
      out_dir: the output folder (exists).
      seed: the random seed.
      started: ``time.time()`` at the start.
    """

    preset: str
    config: dict
    out_dir: Path
    seed: int
    started: float


class Experiment(NamedTuple):
    """What an experiment script declares once: its name, title, description and presets.

    Attributes:
      name: the registry name (``sparsejax.reproduce.registry.EXPERIMENTS``) and the stem of its JSON file.
      title: one line.
      description: the script's docstring (what is measured, the paper, the pass criterion).
      presets: preset name -> configuration dict; holds ``"quick"``.
      default: the preset run when neither ``--quick`` nor ``--preset`` is given.

    Example:
      >>> import tempfile
      >>> from sparsejax.reproduce.experiment import Experiment
      >>> toy = Experiment("toy", "a toy", "Adds two numbers.", {"quick": {"n": 2}, "full": {"n": 9}})
      >>> trial = toy.start(True, None, tempfile.mkdtemp(), seed=3)
      >>> res = toy.result(trial, measured={"sum": trial.config["n"] + 1}, predicted={"sum": 3}, figures=[],
      ...                  passed=True, claim_shown=True)
      >>> res["preset"], res["seed"], res["measured"]["sum"], res["passed"], res["claim_shown"]
      ('quick', 3, 3, True, True)
    """

    name: str
    title: str
    description: str
    presets: Mapping[str, dict]
    default: str = "full"

    def start(self, quick: bool, preset, out_dir, seed: int = 0) -> Trial:
        """Begin a run: choose the preset (``select_preset``), create ``out_dir``, start the clock.

        Args:
          quick: run the ``"quick"`` preset.
          preset: a preset name, or None for ``self.default``.
          out_dir: the output folder.
          seed: the random seed (recorded in the result).

        Returns:
          The ``Trial``.

        Raises:
          ValueError naming the known presets for an unknown ``preset``.

        Example:
          >>> import tempfile
          >>> from sparsejax.reproduce.experiment import Experiment
          >>> toy = Experiment("toy", "a toy", "", {"quick": {"n": 2}, "full": {"n": 9}})
          >>> trial = toy.start(False, None, tempfile.mkdtemp())
          >>> trial.preset, trial.config["n"], trial.out_dir.is_dir()
          ('full', 9, True)
        """
        started = time.time()
        tag, config, out_dir = select_preset(quick, preset, self.presets, out_dir, default=self.default)
        return Trial(tag, config, out_dir, int(seed), started)

    def result(self, trial: Trial, *, measured: dict, predicted: dict, figures: list, passed: bool,
               claim_shown: bool | None, table: Mapping | Sequence[Mapping] | None = None,
               converged: Mapping[str, float] | None = None, seeds: Sequence[int] | None = None) -> dict:
        """The result dict of a finished run (the fields of the module docstring), timed from ``trial.started``.

        Args:
          trial: from ``start``.
          measured: the measured numbers.
          predicted: what the theory or the paper predicts, next to them.
          figures: the PNG file names written into ``trial.out_dir``.
          passed: the run is correct: every check the experiment asserts held.
          claim_shown: the claim's verdict at this scale (None: not decidable with this preset).
          table: measured next to predicted, one row per setting: a ``make_table`` dict or a list of row
            mappings.
          converged: solver name -> fraction of its solves that converged; any fraction below 1 rejects the run
            (``passed`` false, the reason in ``rejected``).
          seeds: every seed the run used (default ``[trial.seed]``).

        Returns:
          The result dict, with ``verdict`` and ``provenance``.

        Example:
          >>> import tempfile
          >>> from sparsejax.reproduce.experiment import Experiment
          >>> toy = Experiment("toy", "a toy", "  Counts.  ", {"quick": {}})
          >>> res = toy.result(toy.start(True, None, tempfile.mkdtemp()), measured={}, predicted={}, figures=[],
          ...                  passed=True, claim_shown=None)
          >>> res["description"], res["claim_shown"], res["verdict"], res["seconds"] >= 0
          ('Counts.', None, 'RAN', True)
          >>> res = toy.result(toy.start(True, None, tempfile.mkdtemp()), measured={}, predicted={}, figures=[],
          ...                  passed=True, claim_shown=True, converged={"admm": 0.5})
          >>> res["passed"], res["verdict"], res["rejected"]
          (False, 'FAIL', 'unconverged solves: admm 50.00% converged')
        """
        if table is not None and not isinstance(table, Mapping):
            table = make_table(table)
        seeds = [trial.seed] if seeds is None else [int(s) for s in seeds]
        rejected = converged_check(converged)
        res = {
            "name": self.name,
            "title": self.title,
            "description": self.description.strip(),
            "preset": trial.preset,
            "seed": trial.seed,
            "measured": measured,
            "predicted": predicted,
            "table": None if table is None else dict(table),
            "converged": None if converged is None else {k: float(v) for k, v in converged.items()},
            "figures": list(figures),
            "passed": bool(passed) and rejected is None,
            "claim_shown": None if claim_shown is None else bool(claim_shown) and rejected is None,
            "seconds": round(time.time() - trial.started, 2),
            "provenance": provenance(self.name, trial.preset, seeds),
        }
        if rejected:
            res["rejected"] = rejected
        res["verdict"] = verdict(res)
        return res

    def main(self, run: Callable[..., dict], argv=None) -> int:
        """The script's command line: ``experiment_main`` with this experiment's name, title and presets.

        Args:
          run: the experiment's ``run(quick, out_dir, seed, preset=None)``.
          argv: the arguments (default ``sys.argv[1:]``).

        Returns:
          The exit status: 0 when the result passed, 1 otherwise.

        Example:
          >>> import tempfile
          >>> from sparsejax.reproduce.experiment import Experiment
          >>> toy = Experiment("toy", "a toy", "", {"quick": {"ok": True}, "full": {"ok": False}})
          >>> def run(quick, out_dir, seed=0, preset=None):
          ...     trial = toy.start(quick, preset, out_dir, seed)
          ...     return toy.result(trial, measured={}, predicted={}, figures=[], passed=trial.config["ok"],
          ...                       claim_shown=None)
          >>> toy.main(run, ["--preset", "full", "--out", tempfile.mkdtemp()])   # doctest: +ELLIPSIS
          {"name": "toy", "verdict": "FAIL", "passed": false, "claim_shown": null, "seconds": ...}
          1
        """
        return experiment_main(run, self.name, self.title, argv=argv, presets=self.presets)
