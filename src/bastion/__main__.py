"""`python -m bastion` runs the command line, the same as the `bastion` script."""

from bastion.cli.main import main

main()
