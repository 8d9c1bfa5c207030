"""Installing a signed release: verify, fill the idle slot, back up, try the new
version on a local port, commit and switch, or go back by itself.

Steps, each recorded in the state file (``firmware.state``) before it starts::

    verify  signature (the ``firmware`` role's key), school, version rule, every
            file, free space: a refusal changes nothing
    unpack  the release into the idle slot (the running one is never written)
    stop    the running version stops; the LAN port answers 503 (``maintenance``)
    backup  SQLite online backup of the databases (``backup``)
    trial   the new version starts on 127.0.0.1 (it migrates the database, takes no
            user writes) and must pass the health check (``health``); a crash is
            retried, ``max_crashes`` crashes fail it
    commit  the state file names the new version and slot (one atomic write)
    switch  ``current`` is pointed at the new slot (one rename); the supervisor
            starts the new version on the LAN port

A failure in ``trial`` or ``commit`` restores the database backup and records a
rollback with its reason; the old version serves again. An install killed at any
step is resolved by ``recover`` the next time the supervisor, an installer or
``firmware rollback`` takes the install lock: before ``trial`` nothing changed,
from ``trial`` to ``commit`` it is rolled back, after ``commit`` it is finished.

Fault injection: ``SCHOOL_EDGE_FIRMWARE_FAULT=installer:<step>`` SIGKILLs the
installer as the step starts, ``service:<step>`` SIGKILLs the process serving at
that moment: the old version up to ``stop``, the new one on trial in ``trial``,
``commit`` and ``switch`` (none runs during ``backup``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from hub_sync.core.errors import SignatureError
from hub_sync.core.processes import SupervisedProcess, free_port, wait_until
from hub_sync.formats.firmware_release import (MANIFEST_NAME, SIGNATURE_NAME, check_school, check_upgrade,
                                               load_manifest, open_release, verify_files)

from firmware.backup import databases, has_backup, restore_backup, take_backup
from firmware.errors import FirmwareError, InstallError, RollbackError
from firmware.health import DEADLINE_S, HealthError, Sample, check_health
from firmware.maintenance import MaintenanceFront
from firmware.service import (SERVICE_ENV, command, kill_group, read_service, signal_group, stop_group,
                              stop_strays)
from firmware.slots import clear_leftovers, current_slot, fill_slot, other_slot, point_current, slot_matches
from firmware.state import RESULT_COMMITTED, RESULT_ROLLED_BACK, load_state, save_state

STEPS = ("verify", "unpack", "stop", "backup", "trial", "commit", "switch")
FAULT_ENV = "SCHOOL_EDGE_FIRMWARE_FAULT"
LOCK_FILE = "install.lock"
MAX_CRASHES = 3          # starts of the new version that may fail before it is rolled back
UNPACK_FACTOR = 5        # installed size / wheel size, about (25 MB of wheels make ~112 MB)
SPACE_MARGIN_BYTES = 32 * 1024 * 1024
PORT_WAIT_S = 20.0
RESULT_FAILED = "failed"
INBOX = "inbox"          # releases handed off by the running service to an installer process
INSTALL_LOG = "install.log"


@dataclass
class InstallResult:
    """How one install ended."""

    result: str            # "committed" or "rolled_back"
    version: str
    previous: str
    reason: str = ""
    reused: int = 0        # wheels hard-linked from the running slot
    installed: int = 0     # wheels installed by pip
    seconds: float = 0.0


def _fault(step: str, serving_pgid: int | None = None) -> None:
    """Fault injection at the start of ``step`` (see the module docstring)."""
    wanted = os.environ.get(FAULT_ENV, "")
    if wanted == f"installer:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
    if wanted == f"service:{step}" and serving_pgid:
        kill_group(serving_pgid)


class InstallLock:
    """An exclusive flock on ``<root>/install.lock``: one install (or recovery) at a
    time; the kernel frees it when its holder dies, however it dies."""

    def __init__(self, root: Path) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        self.fd = os.open(Path(root) / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, wait: bool = True) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self.fd)


def verify_release(root: Path, release_dir: Path, data_dir: Path, trusted_keys: list, school_code: str | None):
    """Every check before anything changes; returns (manifest, manifest sha256, statement)."""
    release_dir = Path(release_dir)
    try:
        manifest_data = (release_dir / MANIFEST_NAME).read_bytes()
        envelope = (release_dir / SIGNATURE_NAME).read_bytes()
    except OSError as exc:
        raise SignatureError(f"{release_dir} 不是签名的软件发布（缺少 {Path(str(exc.filename)).name}）",
                             f"{release_dir} is not a signed release (missing {Path(str(exc.filename)).name})") from exc
    if not trusted_keys:
        raise SignatureError("本机还没有县平台的软件签名密钥：请先同步一次或导入内容包",
                             "this appliance trusts no firmware key yet; sync once or import a content pack first")
    statement = open_release(envelope, trusted_keys, manifest_data)
    check_school(statement, school_code)
    manifest = load_manifest(manifest_data)
    installed = load_state(root).version
    if check_upgrade(installed, manifest, bool(statement.get("downgrade"))) == "same":
        raise InstallError(f"版本 {manifest.version} 已经安装", f"version {manifest.version} is already installed")
    verify_files(release_dir, manifest)
    db_bytes = sum(p.stat().st_size for p in databases(data_dir))
    need = manifest.total_size * UNPACK_FACTOR + db_bytes + SPACE_MARGIN_BYTES
    free = shutil.disk_usage(Path(root) if Path(root).exists() else Path(data_dir)).free
    if free < need:
        raise InstallError(f"空间不足：安装 {manifest.version} 需要约 {need // 2**20} MB，只剩 {free // 2**20} MB，已拒收",
                           f"not enough free space: installing {manifest.version} needs about {need // 2**20} MB, "
                           f"{free // 2**20} MB free; refused")
    return manifest, hashlib.sha256(manifest_data).hexdigest(), statement


def recover(root: Path, data_dir: Path) -> str | None:
    """Resolve an install that did not finish (the caller holds the install lock);
    return what was done, or None when nothing was pending."""
    root = Path(root)
    state = load_state(root)
    clear_leftovers(root)
    outcome = None
    if state.pending is not None:
        pending = state.pending
        kill_group(pending.get("trial_pgid"))  # a version on trial outlives no installer
        step = pending.get("step", "unpack")
        if STEPS.index(step) >= STEPS.index("trial") and has_backup(root):
            restore_backup(root, data_dir)
            state = state.finished(RESULT_ROLLED_BACK, f"install interrupted during {step}; database restored",
                                   rollbacks=state.rollbacks + 1)
            outcome = "rolled_back"
        else:
            state = state.finished(RESULT_FAILED, f"install interrupted during {step}; nothing was changed")
            outcome = "failed"
        save_state(root, state)
    if current_slot(root) != state.slot:
        point_current(root, state.slot)
        outcome = outcome or "switched"
    return outcome


class Installer:
    """One install of one verified release (see the module docstring)."""

    def __init__(self, root: Path, release_dir: Path, data_dir: Path, *, sample: Sample | None = None,
                 deadline_s: float = DEADLINE_S, max_crashes: int = MAX_CRASHES) -> None:
        self.root, self.release_dir, self.data_dir = Path(root), Path(release_dir), Path(data_dir)
        self.sample, self.deadline_s, self.max_crashes = sample, deadline_s, max_crashes
        self.front: MaintenanceFront | None = None
        self.trial: SupervisedProcess | None = None

    def _step(self, step: str, **extra) -> None:
        state = load_state(self.root)
        save_state(self.root, replace(state, pending={**state.pending, "step": step, **extra}))

    def run(self, manifest, manifest_sha256: str) -> InstallResult:
        started = time.monotonic()
        state = load_state(self.root)
        previous, old_slot = state.version, state.slot
        slot = other_slot(old_slot)
        save_state(self.root, replace(state, pending={"version": manifest.version, "slot": slot, "step": "unpack",
                                                     "started_at": time.time(), "previous": previous}))
        service = read_service(self.root)
        serving = service.get("pid") if service else None
        counts = {"reused": 0, "installed": 0}
        try:
            _fault("unpack", serving)
            if not slot_matches(self.root, slot, manifest_sha256):
                counts = fill_slot(self.root, slot, self.release_dir, manifest, manifest_sha256, old_slot)
            self._step("stop")
            _fault("stop", serving)
            self._take_lan(service)
            self._step("backup")
            _fault("backup")
            take_backup(self.root, self.data_dir)
        except FirmwareError as exc:  # nothing changed yet: the old version serves again
            clear_leftovers(self.root)
            state = load_state(self.root)
            save_state(self.root, state.finished(RESULT_FAILED, exc.en))
            self._close_lan()
            raise
        try:
            self._step("trial")
            _fault("trial")
            try:
                self._try(slot, manifest.version)
                self._step("commit")
                _fault("commit", self.trial.pid if self.trial else None)
            except FirmwareError as exc:
                return self._roll_back(manifest.version, previous, exc, started, counts)
            save_state(self.root, load_state(self.root).finished(RESULT_COMMITTED, f"{previous} -> {manifest.version}",
                                                                 version=manifest.version, slot=slot))
            _fault("switch", self.trial.pid if self.trial else None)
            point_current(self.root, slot)
        finally:
            self._stop_trial()
            self._close_lan()
        return InstallResult(RESULT_COMMITTED, manifest.version, previous, "", counts["reused"], counts["installed"],
                             time.monotonic() - started)

    def _close_lan(self) -> None:
        front, self.front = self.front, None
        if front is not None:
            front.stop()

    def _take_lan(self, service: dict | None) -> None:
        """Stop the serving version and answer 503 on its LAN port in its place."""
        if not service:
            return
        pid = service.get("pid")
        # SIGTERM the app first (its master then stops restarting its front), its front next (so no
        # tablet meets a front without an app behind it), then wait for the app's last requests
        signal_group(pid, signal.SIGTERM)
        stop_strays(service.get("strays", []))
        stop_group(pid)
        host, port = service["host"], int(service["port"])

        def bound() -> bool:
            try:
                self.front = MaintenanceFront(host, port)
            except OSError:  # the old version's sockets are still closing
                return False
            return True

        try:
            wait_until(bound, PORT_WAIT_S, f"port {port} to be free")
        except TimeoutError:
            self.front = None  # the LAN stays silent instead of answering 503; the install goes on

    def _try(self, slot: str, version: str) -> None:
        """Start the new version on a local port until it passes the health check;
        HealthError after ``max_crashes`` failed starts."""
        failures = []
        while len(failures) < self.max_crashes:
            port = free_port()
            argv, env, cwd = command(self.root, slot, ["firmware", "trial", "--data", str(self.data_dir),
                                                  "--port", str(port), "--parent", str(os.getpid())])
            self.trial = SupervisedProcess(argv, env=env, cwd=cwd, log=self.root / "trial.log")
            self._step("trial", trial_pgid=self.trial.pid, starts=len(failures) + 1)
            if not failures:
                _fault("trial", self.trial.pid)
            trial = self.trial
            try:
                check_health(f"http://127.0.0.1:{port}", version, self.sample, self.deadline_s, alive=trial.running)
                return
            except HealthError as exc:
                if trial.running():  # it answered, wrongly: no point starting it again
                    raise
                failures.append(exc)
                self._stop_trial()
        tail = self.root.joinpath("trial.log").read_text("utf-8", "replace").strip().splitlines()[-1:]
        raise HealthError(f"新版本启动 {len(failures)} 次都崩溃了：{' '.join(tail)}",
                          f"the new version crashed at start {len(failures)} times: {' '.join(tail)}")

    def _stop_trial(self) -> None:
        trial, self.trial = self.trial, None
        if trial is not None:
            trial.stop(grace_s=10.0)

    def _roll_back(self, version: str, previous: str, exc: FirmwareError, started: float, counts: dict) -> InstallResult:
        self._stop_trial()
        restore_backup(self.root, self.data_dir)
        state = load_state(self.root)
        save_state(self.root, state.finished(RESULT_ROLLED_BACK, exc.en, rollbacks=state.rollbacks + 1))
        return InstallResult(RESULT_ROLLED_BACK, version, previous, exc.en, counts["reused"], counts["installed"],
                             time.monotonic() - started)


def install(root: str | Path, release_dir: str | Path, data_dir: str | Path, trusted_keys: list, *,
            school_code: str | None = None, sample: Sample | None = None, deadline_s: float = DEADLINE_S,
            max_crashes: int = MAX_CRASHES) -> InstallResult:
    """Install the signed release in ``release_dir`` (see the module docstring).

    Refusals (bad signature, unknown key, another school's, a downgrade not signed as
    one, cut short, tampered, too big) raise with one clear line and change nothing;
    a failed health check or a crashing new version is rolled back and returned as
    ``result == "rolled_back"`` with its reason."""
    root, data_dir = Path(root).absolute(), Path(data_dir).absolute()
    service = read_service(root) if root.exists() else None
    _fault("verify", service.get("pid") if service else None)
    manifest, manifest_sha256, _ = verify_release(root, Path(release_dir), data_dir, trusted_keys, school_code)
    if os.environ.get(SERVICE_ENV):  # called inside the service the install will stop: hand it off
        return _hand_off(root, Path(release_dir), data_dir, manifest)
    lock = InstallLock(root)
    try:
        if not lock.acquire(wait=False):
            raise InstallError("另一个安装正在进行", "another install is in progress")
        recover(root, data_dir)
        # verified again under the lock: a recovery may have changed what is installed
        manifest, manifest_sha256, _ = verify_release(root, Path(release_dir), data_dir, trusted_keys, school_code)
        return Installer(root, Path(release_dir), data_dir, sample=sample, deadline_s=deadline_s,
                         max_crashes=max_crashes).run(manifest, manifest_sha256)
    finally:
        lock.close()
        if Path(release_dir).resolve().parent == (root / INBOX).resolve():
            shutil.rmtree(release_dir, ignore_errors=True)


def _hand_off(root: Path, release_dir: Path, data_dir: Path, manifest) -> InstallResult:
    """Copy the verified release into ``<root>/inbox`` and start ``firmware install``
    on it as a process of its own session: it outlives the service it stops."""
    inbox = root / INBOX / manifest.version
    shutil.rmtree(inbox, ignore_errors=True)
    for rel in [MANIFEST_NAME, SIGNATURE_NAME, *manifest.files]:
        (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(release_dir / rel, inbox / rel)
        except OSError:  # another file system (a stick)
            shutil.copy2(release_dir / rel, inbox / rel)
    argv, env, cwd = command(root, current_slot(root), ["firmware", "install", "--data", str(data_dir), str(inbox)])
    with open(root / INSTALL_LOG, "ab") as out:
        subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    return InstallResult("started", manifest.version, load_state(root).version, "handed off to its own process")


def roll_back(root: str | Path, data_dir: str | Path) -> str:
    """``firmware rollback``: undo an install that has not committed (restoring the
    database); RollbackError when there is none or its installer still runs."""
    root = Path(root)
    if load_state(root).pending is None:
        state = load_state(root)
        raise RollbackError(f"没有未提交的更新；{state.version} 已提交，回到旧版本需要县里签发的降级发布",
                            f"no uncommitted update: {state.version} is committed; going back needs a release "
                            "the county signs as a downgrade")
    lock = InstallLock(root)
    try:
        if not lock.acquire(wait=False):
            raise RollbackError("更新正在进行，请等它结束（失败会自动回退）",
                                "an update is running; wait for it to end (a failure rolls back by itself)")
        return recover(root, data_dir) or "nothing"
    finally:
        lock.close()
