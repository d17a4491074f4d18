"""`python -m cadence` is the `cadence` command."""

from cadence.cli.main import main

main()
