"""The ``sparsejax`` command line."""

from sparsejax.cli import commands, learn
from sparsejax.cli.commands import main
from sparsejax.cli.learn import add_learn_parser, run_learn

__all__ = ['commands', 'learn', 'main', 'add_learn_parser', 'run_learn']
