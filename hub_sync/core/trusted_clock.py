"""A clock an appliance without an RTC battery can rely on.

The appliance may boot at 1970 or years ahead. Expiry checks use the later of
the system clock and the latest time a verified hub message proved (the
``signed_at`` of the last verified timestamp metadata), so a device whose clock
fell back to 1970 still refuses metadata that expired before a moment it has
already seen; the proven time is kept in a small file, written by rename.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from hub_sync.core.atomic_file import atomic_write


class TrustedClock:
    """max(system clock, latest proven hub time), persisted at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def proven(self) -> datetime | None:
        """The latest hub time seen in a verified message, or None."""
        try:
            raw = json.loads(self.path.read_text())["proven"]
            return datetime.fromisoformat(raw)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def now(self, system: datetime | None = None) -> datetime:
        """The time to check expiry against."""
        system = system or datetime.now(timezone.utc)
        proven = self.proven()
        return max(system, proven) if proven else system

    def prove(self, moment: datetime) -> None:
        """Record ``moment`` (from a verified signature) if it is later than what we had."""
        current = self.proven()
        if current is not None and moment <= current:
            return
        atomic_write(self.path, json.dumps({"proven": moment.isoformat()}).encode())
