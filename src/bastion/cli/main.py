"""`bastion` entry point: the command group and its subcommands."""

from __future__ import annotations

import click

from bastion import __version__
from bastion.cli.alerts import alerts
from bastion.cli.audit import audit
from bastion.cli.dashboard import dashboard
from bastion.cli.keys import keys
from bastion.cli.reconcile import reconcile
from bastion.cli.rollback import rollback
from bastion.cli.samples import samples
from bastion.cli.serve import init, mock, serve
from bastion.cli.spend import spend


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bastion")
def cli() -> None:
    """Bastion: a production gateway and toolkit for the Claude API."""


cli.add_command(serve)
cli.add_command(mock)
cli.add_command(init)
cli.add_command(keys)
cli.add_command(rollback)
cli.add_command(spend)
cli.add_command(reconcile)
cli.add_command(samples)
cli.add_command(alerts)
cli.add_command(dashboard)
cli.add_command(audit)


def main() -> None:
    cli()
