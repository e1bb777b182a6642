"""Bastion: a production gateway and toolkit for the Claude API."""

__version__ = "0.1.0"
