"""Content sync on the appliance: verified plan and files from ``hub_sync``, then
one transaction that switches the catalogue.

Until that transaction commits, the old catalogue is what teachers see (new
files sit in the store unreferenced, and only catalogued files are served);
after it, the new one, complete. Resources the hub no longer lists are dropped
in the same transaction, and their files are removed once nothing references
them. One sync at a time per data folder (a lock file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TYPE_CHECKING

from hub_sync.core.errors import Problem, SyncError
from hub_sync.core.sqlite_db import transaction
from hub_sync.core.tls import client_tls
from hub_sync.client.sync_client import FetchReport, Plan, SyncClient

from edge_agent.const import PINNED_ROOT_FILE, SYNC_DIR
from edge_agent.library.catalogue import SOURCES, Resource, ResourceFile, validate

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)



@dataclass
class SyncResult:
    catalogue_version: int
    changed: bool
    fetched: FetchReport
    waiting_for_window: bool = False
    missing_bytes: int = 0


def sync_dir(appliance: Appliance) -> Path:
    return appliance.data_dir / SYNC_DIR


def is_provisioned(appliance: Appliance) -> bool:
    return bool(appliance.identity("hub_url")) and (appliance.data_dir / PINNED_ROOT_FILE).is_file()


def client_for(appliance: Appliance) -> SyncClient:
    """The sync client configured by provisioning."""
    if not is_provisioned(appliance):
        raise SyncError("设备尚未配置县级平台：请先运行 school-edge provision apply",
                        "the appliance is not provisioned; run 'school-edge provision apply' first")
    return SyncClient(sync_dir(appliance), appliance.identity("hub_url") or "", appliance.identity("rsync_url") or "",
                      appliance.school_code, (appliance.data_dir / PINNED_ROOT_FILE).read_bytes(), appliance.store,
                      bwlimit_kbps=appliance.config.sync_bwlimit_kbps, timeout_s=appliance.config.sync_timeout_s,
                      clock=appliance.clock)


ENROLL_TIMEOUT_S = 15.0


def enroll_now(appliance: Appliance) -> None:
    """Send the enrollment request to the hub (first contact); remember success."""
    import httpx

    from hub_sync.core.errors import DeviceError, LinkError

    request = appliance.data_dir / "enrollment-request.json"
    if not request.is_file():
        raise SyncError("没有登记请求：请先运行 school-edge provision apply", "no enrollment request; run 'school-edge provision apply' first")
    url = f"{appliance.identity('hub_url')}/api/v1/hub/enroll"
    try:
        resp = httpx.post(url, content=request.read_bytes(), timeout=ENROLL_TIMEOUT_S, verify=client_tls())
    except httpx.HTTPError as exc:
        raise LinkError("无法连接县级平台，稍后重试", f"cannot reach the hub at {url} ({type(exc).__name__}); will retry") from exc
    if resp.status_code != 200:
        try:
            zh, en = resp.json()["error"]["message"], resp.json()["error"]["message_en"]
        except (ValueError, KeyError, TypeError):
            zh = en = f"HTTP {resp.status_code}"
        if resp.status_code >= 500:  # the hub's trouble, not a refusal: the next sync tries again
            raise LinkError(f"县级平台暂时无法登记设备：{zh}", f"the hub could not enroll the device now: {en}; will retry")
        # a refusal (a spent or expired token, another hub's bundle): trying again changes nothing
        raise DeviceError(f"平台拒绝登记：{zh}", f"the hub refused the enrollment: {en}")
    appliance.set_identity(enrolled="yes")


@contextmanager
def sync_lock(appliance: Appliance) -> Iterator[None]:
    """Refuse a second concurrent sync of the same data folder."""
    path = sync_dir(appliance)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SyncError("另一个同步正在进行，请稍后再试", "another sync is running; try again later") from exc
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _set_state(appliance: Appliance, **values: object) -> None:
    with transaction(appliance.db):
        for key, value in values.items():
            appliance.db["sync_state"].upsert({"key": key, "value": str(value)}, pk="key")


def _now_text() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def to_resources(plan: Plan) -> list[Resource]:
    """Catalogue resources of a plan; refuses (before anything is fetched) one the
    catalogue could not hold."""
    fields = set(Resource.__dataclass_fields__) - {"id", "files", "channel"}
    out = []
    for r in plan.resources:
        meta = {k: v for k, v in r.meta.items() if k in fields}
        if meta.get("source") not in SOURCES:
            meta["source"] = "county"
        for k in ("duration_s", "pages"):
            if k in meta and not isinstance(meta[k], int):
                meta.pop(k)
        resource = Resource(id=r.id, channel=r.channel, files=[ResourceFile(**f) for f in r.files],
                            **{k: (str(v) if k not in ("duration_s", "pages") else v) for k, v in meta.items()})
        validate(resource)
        out.append(resource)
    return out


def _digest(resource: Resource) -> str:
    """What the catalogue holds of a resource, as one hash (unchanged = not rewritten)."""
    files = [f.__dict__ for f in resource.files]
    return hashlib.sha256(json.dumps([resource.row(), files], sort_keys=True, default=str).encode()).hexdigest()


def apply_plan(appliance: Appliance, plan: Plan, resources: list[Resource]) -> bool:
    """Switch the catalogue to ``plan`` in one transaction; return True if it changed.

    Only resources whose digest differs from what was catalogued are written: a
    channel of tens of thousands with one new resource is one upsert, not all."""
    db = appliance.db
    current = int(db.execute("select value from sync_state where key = 'catalogue_version'").fetchone()[0]) \
        if db.execute("select 1 from sync_state where key = 'catalogue_version'").fetchone() else 0
    held = dict(db.execute("select resource_id, coalesce(digest, '') from sync_resources").fetchall())
    new = {r.id: (r, _digest(r)) for r in resources}
    with transaction(db):
        for rid in held.keys() - new.keys():
            appliance.catalogue.delete(rid)
            db.execute("delete from sync_resources where resource_id = ?", [rid])
        changed = [(resource, digest) for rid, (resource, digest) in new.items() if held.get(rid) != digest]
        appliance.catalogue.upsert_many(resource for resource, _ in changed)
        db["sync_resources"].upsert_all(({"resource_id": r.id, "channel": r.channel, "digest": digest} for r, digest in changed),
                                        pk="resource_id")
        db.execute("delete from sync_channels")
        db["sync_channels"].insert_all(({"channel": c.get("id"), "title": c.get("title", ""), "mandatory": int(bool(c.get("mandatory"))),
                                         "version": plan.channel_versions.get(c.get("id"), 0)} for c in plan.channels))
        _set_state(appliance, catalogue_version=plan.snapshot_version)
    return plan.snapshot_version != current


def collect_garbage(appliance: Appliance) -> int:
    """Remove blobs that sync brought and nothing references any more."""
    referenced = appliance.catalogue.referenced_hashes()
    removed = 0
    for (sha,) in appliance.db.execute("select sha256 from sync_blobs").fetchall():
        if sha not in referenced:
            appliance.store.remove(sha)
            with transaction(appliance.db):
                appliance.db.execute("delete from sync_blobs where sha256 = ?", [sha])
            removed += 1
    return removed


def sync_content(appliance: Appliance, allow_download: bool = True,
                 progress: Callable[[str], None] | None = None) -> SyncResult:
    """One sync: verify, fetch what is missing (if allowed), switch, clean up."""
    with sync_lock(appliance):
        client = client_for(appliance)
        _set_state(appliance, last_attempt_at=_now_text())
        try:
            if appliance.identity("enrolled") != "yes":
                enroll_now(appliance)
            plan = client.plan()
            resources = to_resources(plan)
            missing = client.missing(plan)
            missing_bytes = sum(plan.targets[s].length for s in missing)
            if missing and not allow_download:
                client.clean_staging(set(missing))
                _set_state(appliance, waiting_for_window=f"{len(missing)} files, {missing_bytes} bytes")
                version = int(appliance.db.execute("select coalesce((select value from sync_state where key='catalogue_version'), 0)").fetchone()[0])
                return SyncResult(version, False, FetchReport(), waiting_for_window=True, missing_bytes=missing_bytes)
            with transaction(appliance.db):
                # recorded before fetching, so a blob of a sync that never switches is still collected
                appliance.db["sync_blobs"].insert_all(({"sha256": s} for s in missing), ignore=True)
            if progress and missing:
                progress(f"下载 fetching {len(missing)} files, {missing_bytes} bytes")
            report = client.fetch(plan, missing, progress)
            changed = apply_plan(appliance, plan, resources)
            removed = collect_garbage(appliance)
            client.clean_staging()
            _set_state(appliance, last_success_at=_now_text(), last_error="", waiting_for_window="")
            log.info("sync done: catalogue version %d, %d files fetched (%s), %d removed", plan.snapshot_version,
                     report.files, report.transport or "-", removed)
            return SyncResult(plan.snapshot_version, changed, report)
        except Problem as exc:
            _set_state(appliance, last_error=f"{_now_text()} {exc.en}")
            log.warning("sync refused or failed: %s", exc.en)
            raise
