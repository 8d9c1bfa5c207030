"""The firmware state file: which version runs from which slot, whether it is
committed, the install in progress and how the last update ended.

``<firmware root>/state.json`` (the root defaults to ``<data_dir>/firmware``) is
written only through ``hub_sync.core.atomic_file``, so a kill at any instant
leaves the old state or the new one, never half of either. It is the truth the
recovery at the next start works from; the ``current`` slot link follows it.
An appliance that never updated has no state file: it runs the software it was
installed with ("factory", no slot).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from hub_sync.core.atomic_file import atomic_write
from hub_sync.formats.envelope import canonical_json

from firmware import __version__

ROOT_NAME = "firmware"
STATE_FILE = "state.json"
NO_UPDATE = "no update yet"
HISTORY_KEPT = 20
# last_result values
RESULT_NONE = "none"
RESULT_COMMITTED = "committed"
RESULT_ROLLED_BACK = "rolled_back"
RESULT_REFUSED = "refused"


def firmware_root(data_dir: str | Path) -> Path:
    """Where an appliance's slots and state live."""
    return Path(data_dir) / ROOT_NAME


@dataclass(frozen=True)
class State:
    """The state file's content (see the module docstring)."""

    version: str = __version__
    slot: str | None = None          # None: the factory-installed software, no slot
    pending: dict | None = None      # {"version", "slot", "step", "started_at", "crashes"} while installing
    last_result: str = RESULT_NONE
    last_reason: str = NO_UPDATE
    last_update_at: float | None = None
    rollbacks: int = 0
    history: list = field(default_factory=list)

    def finished(self, result: str, reason: str, **changes) -> "State":
        """This state with the install over: ``result`` and ``reason`` recorded, no pending."""
        entry = {"at": time.time(), "result": result, "reason": reason,
                 "version": (self.pending or {}).get("version", changes.get("version", self.version))}
        return replace(self, pending=None, last_result=result, last_reason=reason,
                       last_update_at=entry["at"], history=[*self.history, entry][-HISTORY_KEPT:], **changes)


def load_state(root: str | Path) -> State:
    """The state under ``root`` (the factory state when there is no file)."""
    path = Path(root) / STATE_FILE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return State()
    known = {k: v for k, v in raw.items() if k in State.__dataclass_fields__}
    return State(**known)


def save_state(root: str | Path, state: State) -> None:
    """Write ``state`` under ``root`` atomically and durably."""
    Path(root).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(root) / STATE_FILE, canonical_json(asdict(state)))


def summary(data_dir: str | Path) -> dict:
    """What the appliance reports about its software (to ``firmware status`` and to
    the hub): {"version", "slot", "committed", "last_result", "last_reason",
    "last_update_at", "rollbacks", "pending_version"}. Works on an appliance that
    never updated (the installed version, ``last_result`` "none", "no update yet")."""
    state = load_state(firmware_root(data_dir))
    return {"version": state.version, "slot": state.slot or "factory", "committed": state.pending is None,
            "last_result": state.last_result, "last_reason": state.last_reason,
            "last_update_at": state.last_update_at, "rollbacks": state.rollbacks,
            "pending_version": (state.pending or {}).get("version")}
