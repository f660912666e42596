"""Self-contained HTML report of reproduced experiments (figures inlined as base64 PNG) plus one JSON each.

Each experiment result is the dict of ``sparsejax.reproduce.experiment.Experiment.result``: "name", "title",
"description", "measured", "predicted", "figures" (names relative to ``out_dir``), "passed" (ran correctly),
"claim_shown" (the claim's verdict) and "seconds"; an "error" key marks an experiment that failed to run.
"""
from __future__ import annotations

import base64
import datetime
import html
import json
import platform
from pathlib import Path

import jax
import jaxlib
import numpy as np

from sparsejax._version import VERSION
# moved to sparsejax.reproduce.experiment; importable from here as before (deprecated location)
from sparsejax.reproduce.experiment import experiment_main, save_figure, select_preset  # noqa: F401
from sparsejax.reproduce.experiment import verdict  # one definition, also importable from here

__all__ = ["write_report", "environment", "verdict"]


def environment() -> dict:
    """Versions and devices, for the record.

    Returns:
      A dict with the versions of sparsejax, jax, jaxlib, numpy and Python, the platform, JAX's devices and
      backend, and whether float64 is the default (``x64_default``).

    Example:
      >>> import sparsejax as sj
      >>> from sparsejax.reproduce.report import environment
      >>> env = environment()
      >>> env["sparsejax"] == sj.__version__, {"jax", "jaxlib", "devices", "backend"} <= set(env)
      (True, True)
    """
    env = {"sparsejax": VERSION, "jax": jax.__version__, "numpy": np.__version__,
           "python": platform.python_version(), "platform": platform.platform()}
    env["jaxlib"] = jaxlib.__version__
    try:
        env["devices"] = [str(d) for d in jax.devices()]
        env["backend"] = jax.default_backend()
    except Exception as e:  # pragma: no cover
        env["devices"] = [f"unavailable: {e}"]
    env["x64_default"] = bool(jax.config.jax_enable_x64)
    return env


def _fmt(v, depth=0) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        if v and isinstance(v[0], (list, tuple)):
            return "<br>".join("[" + ", ".join(_fmt(x, depth + 1) for x in row) + "]" for row in v)
        return "[" + ", ".join(_fmt(x, depth + 1) for x in v) + "]"
    if isinstance(v, dict):
        return "; ".join(f"{html.escape(str(k))}: {_fmt(x, depth + 1)}" for k, x in v.items())
    if v is None:
        return "&ndash;"
    return html.escape(str(v))


def _table(d: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _result_table(t) -> str:
    """The measured-vs-predicted table of a result (one row per setting), as HTML."""
    if not t:
        return ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in t["columns"])
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in t["rows"])
    return f"<h3>Measured vs predicted</h3><table><tr>{head}</tr>{body}</table>"


def _provenance(p) -> str:
    if not p:
        return ""
    return f"<details><summary>provenance</summary>{_table(p)}</details>"


def _yes_no(flag) -> str:
    return "&ndash;" if flag is None else ("yes" if flag else "no")


def _jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}th,td{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#080;font-weight:bold}
.fail{color:#b00;font-weight:bold}
.ran{color:#a60;font-weight:bold}pre{background:#f8f8f8;padding:.5em;white-space:pre-wrap;font-size:85%}
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}.cols{display:flex;gap:1em}.cols>div{flex:1}"""


def write_report(results: list[dict], out_dir, title: str = "sparsejax: reproduced theory and experiments"
                 ) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and ``out_dir/<name>.json`` per experiment.

    The summary table gives per experiment its status (``verdict``), whether it ran correctly (``passed``),
    whether its claim is shown (``claim_shown``) and its seconds; one section per experiment holds the
    description, the reason a run was rejected (unconverged solves), the measured-vs-predicted table (one row
    per setting), the provenance (command, preset, seeds, commit, versions, machine), every recorded number
    and the figures (inlined). Each JSON file is the result with its ``verdict`` and the ``environment()``.

    Args:
      results: experiment result dicts (see ``sparsejax.reproduce.experiment``).
      out_dir: the output folder (created); figure names are relative to it.
      title: the page title.

    Returns:
      The path of the HTML file.

    Example:
      >>> import json, tempfile
      >>> from sparsejax.reproduce.report import write_report
      >>> res = {"name": "toy", "title": "a toy", "measured": {"x": 1.5}, "predicted": {"x": 1.5},
      ...        "figures": [], "passed": True, "claim_shown": False, "seconds": 0.1}
      >>> path = write_report([res], tempfile.mkdtemp())
      >>> "RAN" in path.read_text(), json.loads((path.parent / "toy.json").read_text())["measured"]
      (True, {'x': 1.5})
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    summary, sections = [], []
    for r in results:
        r = _jsonable(r)
        name = r.get("name", "unnamed")
        status = verdict(r)
        (out_dir / f"{name}.json").write_text(json.dumps({**r, "verdict": status, "environment": env}, indent=2))
        cls = {"PASS": "pass", "RAN": "ran"}.get(status, "fail")
        summary.append(f"<tr><td><a href='#{html.escape(name)}'>{html.escape(name)}</a></td>"
                       f"<td>{html.escape(r.get('title', ''))}</td><td class='{cls}'>{status}</td>"
                       f"<td>{_yes_no(r.get('passed'))}</td><td>{_yes_no(r.get('claim_shown'))}</td>"
                       f"<td>{_fmt(r.get('seconds'))}</td></tr>")
        imgs = []
        for f in r.get("figures", []):
            p = out_dir / f
            if p.is_file():
                b64 = base64.b64encode(p.read_bytes()).decode("ascii")
                imgs.append(f"<img alt='{html.escape(f)}' src='data:image/png;base64,{b64}'>")
            else:
                imgs.append(f"<p class='fail'>missing figure {html.escape(f)}</p>")
        err = f"<pre class='fail'>{html.escape(r['error'])}</pre>" if r.get("error") else ""
        if r.get("rejected"):
            err += f"<p class='fail'>rejected: {html.escape(str(r['rejected']))}</p>"
        err += _result_table(r.get("table")) + _provenance(r.get("provenance"))
        sections.append(
            f"<h2 id='{html.escape(name)}'>{html.escape(name)} <span class='{cls}'>[{status}]</span></h2>"
            f"<p><b>{html.escape(r.get('title', ''))}</b></p><pre>{html.escape(r.get('description', ''))}</pre>"
            f"{err}<details{'' if r.get('table') else ' open'}><summary>every recorded number</summary>"
            f"<div class='cols'><div><h3>Measured</h3>{_table(r.get('measured', {}))}</div>"
            f"<div><h3>Predicted</h3>{_table(r.get('predicted', {}))}</div></div></details>{''.join(imgs)}")
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p>Generated {stamp}</p>"
           f"<h2>Summary</h2><table><tr><th>experiment</th><th>title</th><th>status</th><th>ran correctly</th>"
           f"<th>claim shown</th><th>seconds</th></tr>"
           f"{''.join(summary)}</table><h2>Environment</h2>{_table(env)}{''.join(sections)}</body></html>")
    path = out_dir / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path
