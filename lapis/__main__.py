"""``python -m lapis`` is the ``lapis`` command."""

from lapis.cli.main import main

main()
