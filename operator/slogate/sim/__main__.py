"""``python -m slogate.sim``: serve one simulated model server (see ``slogate.sim.server.main``).

Only the entry point lives here; argument parsing and serving are in ``slogate.sim.server`` so the
``slogate`` CLI can reuse them.
"""

from __future__ import annotations

from slogate.sim.server import main

if __name__ == "__main__":
    raise SystemExit(main())
