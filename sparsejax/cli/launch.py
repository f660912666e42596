"""The ``sparsejax launch`` subcommand: run one program on N processes of this machine (JAX's multi-controller
runtime; ``docs/distributed.md``).

    sparsejax launch -n N [--port P] [--cpus-per-process K] [--timeout S] [--log-dir DIR] -- SCRIPT.py [ARGS...]
    sparsejax launch -n N ... -- python -m MODULE [ARGS...]
    sparsejax launch -n N ... -- SUBCOMMAND [ARGS...]          (a sparsejax subcommand, e.g. info)

Starts N copies of the program with ``SPARSEJAX_COORDINATOR=127.0.0.1:P`` (a free port unless ``--port``),
``SPARSEJAX_NUM_PROCESSES=N`` and ``SPARSEJAX_PROCESS_ID=i``; the program calls
``sparsejax.distributed.initialize()``, which reads them (a sparsejax subcommand is run after that call). On
CPU each process gets one device; ``--cpus-per-process K`` pins process i to cores [i K, (i + 1) K) (the cores
split between the processes; XLA sizes its thread pool by the cores a process may use).

The launcher waits for every process. When one fails, the others -- which would wait for it in a collective --
are stopped after ``--grace`` seconds; a run past ``--timeout`` is stopped. Exit status: 0 all processes
succeeded; the first non-zero status of a process; 124 timeout; 2 bad arguments.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["add_launch_parser", "free_port", "process_command", "process_env", "run_launch"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def process_command(command: list) -> list:
    """The argv of one process: ``SCRIPT.py ...`` -> this Python on the script; ``python ...`` -> this Python;
    anything else is a sparsejax subcommand, run after ``sparsejax.distributed.initialize()``.

    Example:
      >>> import sys
      >>> from sparsejax.cli.launch import process_command
      >>> process_command(["train.py", "--steps", "3"])[1:]
      ['train.py', '--steps', '3']
      >>> process_command(["info"])[-1]
      'info'
    """
    if not command:
        raise ValueError("give the program to launch after --: a script (train.py ...), python ..., or a sparsejax "
                         "subcommand")
    first = command[0]
    if first.endswith(".py"):
        return [sys.executable] + list(command)
    if Path(first).name.startswith("python"):
        return [sys.executable] + list(command[1:])
    boot = ("import sys; import sparsejax.distributed as d; d.initialize(); "
            "from sparsejax.cli.commands import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-c", boot] + list(command)


def process_env(i: int, n: int, coordinator: str, cpus_per_process=None, base=None) -> dict:
    """The environment of process ``i`` of ``n``: the ``SPARSEJAX_*`` settings, one CPU device (a forced host
    device count is dropped), and with ``cpus_per_process=1`` single-threaded XLA kernels (the pinning itself,
    ``os.sched_setaffinity``, sets how many cores XLA's thread pool sees).

    Example:
      >>> from sparsejax.cli.launch import process_env
      >>> env = process_env(1, 2, "127.0.0.1:5000", base={})
      >>> env["SPARSEJAX_PROCESS_ID"], env["SPARSEJAX_NUM_PROCESSES"], env["SPARSEJAX_COORDINATOR"]
      ('1', '2', '127.0.0.1:5000')
    """
    env = dict(os.environ if base is None else base)
    env.update(SPARSEJAX_COORDINATOR=coordinator, SPARSEJAX_NUM_PROCESSES=str(n), SPARSEJAX_PROCESS_ID=str(i))
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
    if cpus_per_process == 1:
        flags.append("--xla_cpu_multi_thread_eigen=false")
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def add_launch_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``launch`` subcommand to an ``argparse`` subparsers object; it sets ``func=run_launch``.

    Example:
      >>> import argparse
      >>> from sparsejax.cli.launch import add_launch_parser
      >>> ap = argparse.ArgumentParser(prog="sparsejax"); sub = ap.add_subparsers(dest="command")
      >>> _ = add_launch_parser(sub)
      >>> args = ap.parse_args(["launch", "-n", "2", "--", "train.py", "--steps", "3"])
      >>> args.num_processes, args.program[-3:]
      (2, ['train.py', '--steps', '3'])
    """
    p = subparsers.add_parser("launch", help="run a script or subcommand on N processes of this machine "
                              "(JAX's distributed runtime)", description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--num-processes", type=int, required=True, help="number of processes")
    p.add_argument("--port", type=int, default=0, help="coordinator port on 127.0.0.1 (default: a free one)")
    p.add_argument("--cpus-per-process", type=int, default=None,
                   help="pin process i to cores [i K, (i+1) K) (default: no pinning)")
    p.add_argument("--timeout", type=float, default=None, help="stop every process after this many seconds")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds the others get to finish after one process fails (default 10)")
    p.add_argument("--log-dir", default=None, help="write process i's output to DIR/process_<i>.log "
                   "(default: the terminal)")
    p.add_argument("program", nargs=argparse.REMAINDER,
                   help="after --: SCRIPT.py [ARGS], python [ARGS], or a sparsejax subcommand")
    p.set_defaults(func=run_launch)
    return p


def _pin(cores):
    def pre():
        if cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cores)
    return pre


def _stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_launch(args) -> int:
    """Run ``args.program`` on ``args.num_processes`` processes (module docstring); returns the exit status."""
    program = list(args.program)
    if program and program[0] == "--":
        program = program[1:]
    n = args.num_processes
    if n < 1:
        print(f"sparsejax launch: -n must be >= 1, got {n}", file=sys.stderr)
        return 2
    try:
        argv = process_command(program)
    except ValueError as e:
        print(f"sparsejax launch: {e}", file=sys.stderr)
        return 2
    cpus = getattr(args, "cpus_per_process", None)
    ncores = os.cpu_count() or 1
    if cpus is not None and cpus < 1:
        print(f"sparsejax launch: --cpus-per-process must be >= 1, got {cpus}", file=sys.stderr)
        return 2
    port = args.port or free_port()
    coordinator = f"127.0.0.1:{port}"
    log_dir = Path(args.log_dir) if getattr(args, "log_dir", None) else None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    procs, logs = [], []
    for i in range(n):
        cores = sorted({(i * cpus + c) % ncores for c in range(cpus)}) if cpus else None
        out = None
        if log_dir is not None:
            out = open(log_dir / f"process_{i}.log", "w")
            logs.append(out)
        procs.append(subprocess.Popen(argv, env=process_env(i, n, coordinator, cpus), stdout=out,
                                      stderr=subprocess.STDOUT if out else None, preexec_fn=_pin(cores)))
    start = time.monotonic()
    timeout = getattr(args, "timeout", None)
    grace = getattr(args, "grace", 10.0)
    status, failed_at = 0, None
    try:
        while True:
            codes = [p.poll() for p in procs]
            bad = [c for c in codes if c not in (None, 0)]
            if bad and failed_at is None:
                status, failed_at = bad[0], time.monotonic()
            if all(c is not None for c in codes):
                break
            if failed_at is not None and time.monotonic() - failed_at > grace:
                _stop(procs)
                break
            if timeout is not None and time.monotonic() - start > timeout:
                print(f"sparsejax launch: timeout after {timeout:g} s; stopping {n} processes "
                      f"({shlex.join(program)})", file=sys.stderr)
                _stop(procs)
                status = 124
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(procs)
        raise
    finally:
        for f in logs:
            f.close()
    if status not in (0, 124):
        print(f"sparsejax launch: a process exited with status {status}", file=sys.stderr)
    return status
