"""Helpers shared by commands: loading config with errors a person can read."""

from __future__ import annotations

import getpass
import socket

import click

from bastion.config import BastionConfig, ConfigError, load_config

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    default="bastion.yaml",
    show_default=True,
    envvar="BASTION_CONFIG",
    type=click.Path(dir_okay=False),
    help="The Bastion config file (YAML).",
)


def read_config(path: str) -> BastionConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def cli_actor() -> str:
    """Who ran the command, for the audit log: `user@host`."""
    return f"{getpass.getuser()}@{socket.gethostname()}"
