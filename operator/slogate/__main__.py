"""``python -m slogate`` is the ``slogate`` command."""

from slogate.cli import main

raise SystemExit(main())
