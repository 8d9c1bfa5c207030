"""Running one installed version of the appliance's software as a process.

A slot's version runs as ``python -S -m edge_agent.cli ...`` with ``PYTHONPATH``
set to the slot: ``-S`` leaves the machine's site-packages out, so the slot's
own wheels are all it can import (a release missing a dependency fails its
health check instead of borrowing the machine's copy). The factory install
runs with the interpreter's normal path.

``service.json`` in the firmware root says which process serves the LAN
(``{"pid", "host", "port", "slot"}``): the supervisor writes it, the installer
reads it to stop the old version and to take the LAN port for the maintenance
answer.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Sequence

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.processes import group_members, wait_until
from hub_sync.formats.envelope import canonical_json

from firmware.slots import slot_path

SERVICE_FILE = "service.json"
SLOT_ENV = "SCHOOL_EDGE_FIRMWARE_SLOT"        # set for a slot's processes: which slot they run from
SERVICE_ENV = "SCHOOL_EDGE_FIRMWARE_SERVICE"  # set for the supervised service: installs hand off (see installer)
STOP_GRACE_S = 15.0


def command(root: Path, slot: str | None, args: Sequence[str]) -> tuple[list[str], dict[str, str], str | None]:
    """(argv, environment, working folder) to run ``school-edge <args>`` from ``slot``
    (None: the factory install). A slot's process works in the slot: ``-m`` puts the
    working folder first on the path, and a checkout there must not shadow the slot."""
    env = dict(os.environ)
    env.pop(SERVICE_ENV, None)
    env.pop("PYTHONPATH", None)
    if slot is None:
        env.pop(SLOT_ENV, None)
        return [sys.executable, "-m", "edge_agent.cli", *args], env, None
    folder = str(slot_path(root, slot).resolve())
    env["PYTHONPATH"] = folder
    env[SLOT_ENV] = slot
    return [sys.executable, "-S", "-m", "edge_agent.cli", *args], env, folder


def read_service(root: Path) -> dict | None:
    """What ``service.json`` says serves (None when nothing was started)."""
    try:
        return json.loads((Path(root) / SERVICE_FILE).read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def write_service(root: Path, pid: int, host: str, port: int, slot: str | None, strays: Sequence[str] = ()) -> None:
    atomic_write(Path(root) / SERVICE_FILE, canonical_json({"pid": pid, "host": host, "port": port, "slot": slot,
                                                           "strays": list(strays)}))


def stop_strays(marks: Sequence[str], grace_s: float = 5.0) -> int:
    """Stop the process groups of processes that have one of ``marks`` as an argument:
    the LAN front (nginx, in a session of its own) of a service that was SIGKILLed,
    marked by the exact path of its data folder's configuration. Returns how many."""
    marks = set(marks)
    groups = set()
    for entry in os.scandir("/proc") if marks else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                # nginx rewrites its title into one string ("nginx: master process ... -c <conf> ...")
                words = f.read().decode("utf-8", "replace").replace("\0", " ").split()
            if marks.intersection(words):
                groups.add(os.getpgid(int(entry.name)))
        except (OSError, ProcessLookupError):
            continue
    for pgid in groups:
        stop_group(pgid, grace_s)
    return len(groups)


def clear_service(root: Path) -> None:
    (Path(root) / SERVICE_FILE).unlink(missing_ok=True)


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` lives (zombies not counted)."""
    return bool(group_members(pgid))


def signal_group(pgid: int | None, sig: int) -> None:
    """Send ``sig`` to process group ``pgid`` if it still exists."""
    if pgid:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass


def stop_group(pgid: int | None, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM process group ``pgid`` (a server started in its own session), SIGKILL
    what is left after ``grace_s``; returns once none of it runs."""
    if not pgid or not group_alive(pgid):
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
        try:
            wait_until(lambda: not group_alive(pgid), grace_s, f"process group {pgid} to stop")
        except TimeoutError:
            os.killpg(pgid, signal.SIGKILL)
            wait_until(lambda: not group_alive(pgid), 5.0, f"process group {pgid} to die")
    except ProcessLookupError:
        pass


def kill_group(pgid: int | None) -> None:
    """SIGKILL process group ``pgid`` now (fault injection, leftovers of a killed installer)."""
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not group_alive(pgid), 5.0, f"process group {pgid} to die")


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when ``parent`` (the installer) dies, and
    exit at once if it is already gone: a version on trial never outlives its check."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux/glibc: the installer's recovery kills the group instead
        pass
    if os.getppid() != parent:
        os._exit(1)
