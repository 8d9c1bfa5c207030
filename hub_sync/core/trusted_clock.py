"""A clock an appliance without an RTC battery can rely on: the one home of trusted time.

The appliance may boot at 1970 or years ahead. Expiry checks use the later of
the system clock and the latest time a verified hub message proved (the
``signed_at`` of verified TUF timestamp metadata, the ``hub_time`` of a verified
usage acknowledgement), so a device whose clock fell back to 1970 still refuses
metadata that expired before a moment it has already seen, and never trusts a
clock below it.

The proven time lives in one small JSON file (``{"proven": "<ISO 8601>"}``),
written by rename; on the appliance that is ``sync/clock.json`` in the data folder
(``edge_agent.const.TRUSTED_CLOCK_FILE``), and every reader and writer (content
sync, usage acknowledgements, USB sticks) goes through this class. The time only
rises: ``prove`` holds a lock file while it compares and writes, so two threads
proving at once (a content sync and a usage upload) cannot lower it either.
"""

from __future__ import annotations

import fcntl
import json
import math
from datetime import datetime, timezone
from pathlib import Path

from hub_sync.core.atomic_file import atomic_write


class TrustedClock:
    """max(system clock, latest proven hub time), persisted at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def proven(self) -> datetime | None:
        """The latest hub time seen in a verified message, or None (none yet, or an unreadable file)."""
        try:
            moment = datetime.fromisoformat(json.loads(self.path.read_text())["proven"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return moment if moment.tzinfo is not None else None

    def now(self, system: datetime | None = None) -> datetime:
        """The time to check expiry against: never earlier than the proven time."""
        system = system or datetime.now(timezone.utc)
        proven = self.proven()
        return max(system, proven) if proven else system

    def prove(self, moment: datetime) -> bool:
        """Record ``moment`` (from a verified signature) if it is later than what is
        recorded; True if the clock rose. An earlier moment changes nothing."""
        if moment.tzinfo is None:
            raise ValueError("a proven time must carry its time zone")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # compare and write as one step: concurrent provers never lower it
            current = self.proven()
            if current is not None and moment <= current:
                return False
            atomic_write(self.path, json.dumps({"proven": moment.astimezone(timezone.utc).isoformat()}).encode())
            return True

    def prove_timestamp(self, seconds: float) -> bool:
        """``prove`` for a POSIX time in seconds (a usage acknowledgement's ``hub_time``)."""
        if not math.isfinite(seconds) or seconds <= 0:
            return False
        return self.prove(datetime.fromtimestamp(seconds, timezone.utc))

    def now_timestamp(self) -> float:
        """``now()`` as POSIX seconds."""
        return self.now().timestamp()
