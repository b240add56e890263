"""``python -m edgekit``: the CLI (how --nproc starts its processes)."""

from edgekit.cli import main

main()
