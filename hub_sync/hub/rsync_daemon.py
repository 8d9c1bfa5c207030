"""The rsync daemon ``hub serve`` runs beside its HTTP API: one read-only module,
``content``, holding the published files by sha256 (``ab/cdef...``, the store's
layout). The real ``rsync --daemon`` binary runs as a child process and is stopped
with the hub.

The module is not the content store itself: the store also holds what nobody may
fetch yet (teachers' uploads waiting for review, files of resources not published),
and anyone who can reach the port can list a module. So the module's folder,
``H/published/``, is a tree of hard links to the store files that the kept TUF
moments list, brought up to date after every publish (``link_published``). Hard
links rather than an rsync filter: the daemon serves a plain folder with nothing
else in it, so no rule (and no rule's bug) decides what is reachable; a link costs
no space and no copy; a file being fetched while a publish unlinks it stays
readable until the transfer ends. A file that is not in the folder does not exist
for a client: not in a listing, not by name.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

from hub_sync.core.blobstore import BlobStore, is_sha256
from hub_sync.core.errors import SyncError
from hub_sync.core.processes import wait_until

log = logging.getLogger(__name__)

RSYNC_MODULE = "content"
PUBLISHED_DIR = "published"  # in the hub's data folder: the module's folder
DAEMON_START_TIMEOUT_S = 10.0
DAEMON_PROBE_TIMEOUT_S = 0.5  # one connection attempt while waiting for it to listen


def link_published(store: BlobStore, hashes: Iterable[str], folder: Path) -> Path:
    """Make ``folder`` hold exactly the store files ``hashes`` names, as hard links
    (``ab/cdef...``); returns ``folder``. The caller serialises calls (the TUF
    repository's lock): two at once could each remove what the other just linked."""
    wanted = {h for h in hashes if is_sha256(h)}
    folder.mkdir(exist_ok=True)
    present = set()
    for sub in list(folder.iterdir()):
        if sub.is_symlink() or not sub.is_dir():
            sub.unlink()  # nothing but ab/ folders belongs here
            continue
        for path in list(sub.iterdir()):
            sha = sub.name + path.name
            if sha in wanted and _same_file(path, store.path_for(sha)):
                present.add(sha)
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:  # withdrawn, or replaced in the store: a client fetching it keeps its open file
                path.unlink()
        if not any(sub.iterdir()):
            sub.rmdir()
    for sha in sorted(wanted - present):
        dest = folder / sha[:2] / sha[2:]
        dest.parent.mkdir(exist_ok=True)
        try:
            os.link(store.path_for(sha), dest)
        except FileNotFoundError:
            log.warning("published file %s is missing from the store; rsync cannot serve it", sha)
    return folder


def _same_file(link: Path, blob: Path) -> bool:
    try:
        return not link.is_symlink() and os.path.samestat(link.stat(), blob.stat())
    except FileNotFoundError:
        return False


def daemon_config(content_dir: Path, host: str, log_file: Path) -> str:
    """The rsyncd.conf text: read-only, no chroot, the hub's own uid (so a root
    daemon does not switch to 'nobody', who could not read the files), not in the
    module list. ``content_dir`` is the published folder (``link_published``)."""
    return "\n".join([
        f"address = {host}",
        "use chroot = no",
        f"uid = {os.getuid()}",
        f"gid = {os.getgid()}",
        "max connections = 32",
        "timeout = 120",
        f"log file = {log_file}",
        "",
        f"[{RSYNC_MODULE}]",
        f"    path = {content_dir}",
        "    comment = school-edge published content (files by sha256)",
        "    read only = yes",
        "    list = no",
        "",
    ])


def _die_with_parent() -> None:
    # a hub killed with SIGKILL must not leave its rsync daemon serving on
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RsyncDaemon:
    """A running ``rsync --daemon --no-detach`` serving ``content_dir`` (the published folder)."""

    def __init__(self, content_dir: Path, run_dir: Path, host: str, port: int) -> None:
        self.host, self.port = host, port
        run_dir.mkdir(parents=True, exist_ok=True)
        conf = run_dir / "rsyncd.conf"
        conf.write_text(daemon_config(content_dir, host, run_dir / "rsyncd.log"))
        self.proc = subprocess.Popen(
            ["rsync", "--daemon", "--no-detach", f"--config={conf}", f"--port={port}", f"--address={host}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        self._wait_listening()

    @property
    def url(self) -> str:
        return f"rsync://{self.host}:{self.port}/{RSYNC_MODULE}"

    def _wait_listening(self) -> None:
        import socket

        def listening() -> bool:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc.stderr and self.proc.stderr.close()
                raise SyncError(f"rsync 服务无法启动（端口 {self.port}）：{err.strip()}",
                                f"the rsync daemon did not start on port {self.port}: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=DAEMON_PROBE_TIMEOUT_S):
                    return True
            except OSError:
                return False

        try:
            wait_until(listening, DAEMON_START_TIMEOUT_S, f"the rsync daemon on port {self.port}")
        except TimeoutError:
            self.stop()
            raise SyncError("rsync 服务启动超时", "the rsync daemon did not start in time") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr and not self.proc.stderr.closed:
            self.proc.stderr.close()
