"""The rsync daemon ``hub serve`` runs beside its HTTP API: one read-only module,
``content``, that is the hub's content store (files by sha256). The real
``rsync --daemon`` binary runs as a child process and is stopped with the hub.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from hub_sync.core.errors import SyncError

RSYNC_MODULE = "content"
DAEMON_START_TIMEOUT_S = 10.0


def daemon_config(content_dir: Path, host: str, log_file: Path) -> str:
    """The rsyncd.conf text: read-only, no chroot, the hub's own uid (so a root
    daemon does not switch to 'nobody', who could not read the store)."""
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
        "    comment = school-edge content (files by sha256)",
        "    read only = yes",
        "    list = no",
        "    exclude = .incoming/",
        "",
    ])


def _die_with_parent() -> None:
    # a hub killed with SIGKILL must not leave its rsync daemon serving on
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RsyncDaemon:
    """A running ``rsync --daemon --no-detach`` serving the content store."""

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

        deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc.stderr and self.proc.stderr.close()
                raise SyncError(f"rsync 服务无法启动（端口 {self.port}）：{err.strip()}",
                                f"the rsync daemon did not start on port {self.port}: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SyncError("rsync 服务启动超时", "the rsync daemon did not start in time")

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
