"""The ``sparsejax`` command line."""

from sparsejax.cli import commands, encode, launch, learn
from sparsejax.cli.commands import main
from sparsejax.cli.learn import add_learn_parser, run_learn

__all__ = ['commands', 'encode', 'launch', 'learn', 'main', 'add_learn_parser', 'run_learn']
