"""Export the appliance's journal as xAPI statements (a JSON array, as an LRS accepts them).

Only events still on the appliance are exported: those the hub acknowledged have been
pruned here and are held by the hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, TYPE_CHECKING

from hub_sync.core.atomic_file import atomic_open
from hub_sync.formats.xapi import statements

from edge_agent.errors import BadRequestError

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

EXPORT_PAGE_EVENTS = 10_000


def export_xapi(appliance: Appliance, out: IO[str]) -> int:
    """Write every journal event still held as one JSON array of statements; return how many."""
    journal, after, count = appliance.journal, 0, 0
    out.write("[")
    while True:
        page = journal.pending(after, EXPORT_PAGE_EVENTS)
        if not page:
            break
        for st in statements(page, appliance.device_id, appliance.school_code):
            out.write(("," if count else "") + "\n" + json.dumps(st, ensure_ascii=False, separators=(",", ":")))
            count += 1
        after = page[-1].seq
    out.write("\n]\n")
    return count


def export_xapi_file(appliance: Appliance, path: Path) -> int:
    """``export_xapi`` into ``path`` through a temporary file and a rename (never half a file)."""
    path = Path(path)
    try:
        with atomic_open(path, text=True, make_parents=False) as f:
            return export_xapi(appliance, f)
    except OSError as exc:
        raise BadRequestError(f"无法写入 {path}：{exc.strerror}，请换一个位置",
                              f"cannot write {path}: {exc.strerror}; choose another place") from exc
