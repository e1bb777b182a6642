"""The `bastion` command line: thin commands over the library."""
