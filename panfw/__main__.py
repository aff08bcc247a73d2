"""``python -m panfw``."""

from panfw.cli import main

main()
