"""`python -m clicktrail` runs the command line."""

from clicktrail.cli import main

main()
