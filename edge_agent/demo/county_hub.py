"""The county hub of ``school-edge demo``: a real ``school-edge hub serve`` process
(HTTP on port+1, rsync daemon on port+2, loopback) that publishes the sample
library in two channels; the demo appliance is provisioned from it and syncs
once before it serves."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import click

from hub_sync.core.errors import ProcessError, Problem
from hub_sync.core.processes import SupervisedProcess

from edge_agent.appliance import Appliance
from edge_agent.demo.sample_library import html_lesson, sample_resources

# a hub that cannot start (port taken) exits at once and is seen at once; this is for a slow machine
HUB_START_TIMEOUT_S = 60.0
HUB_STOP_GRACE_S = 10.0  # then SIGKILL for the hub's whole process group
CORE_SUBJECTS = ("语文", "数学")


def _prepare_hub(hub_dir: Path) -> None:
    from hub_sync.hub import Hub
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.publisher import publish

    if (hub_dir / "keys" / "root.pem").exists():
        return
    hub = Hub.init(hub_dir, reserve_mb=64)
    try:
        chans = Channels(hub.db)
        chans.put_channel("county-core", "县级必选：语文 数学", mandatory=True)
        chans.put_channel("county-extra", "县级自选：英语 科学 艺术", mandatory=False)
        for resource, files in sample_resources():
            channel = "county-core" if resource.subject in CORE_SUBJECTS else "county-extra"
            entries = [{"path": f.name, "sha256": hub.store.put_bytes(f.data).sha256, "size": len(f.data), "mime": f.mime}
                       for f in files]
            meta = {k: v for k, v in resource.row().items() if k not in ("id", "channel", "size")}
            chans.put_resource(resource.id, channel, meta, entries)
        welcome = html_lesson("县级平台 欢迎使用", "综合", "一年级")
        entries = [{"path": f.name, "sha256": hub.store.put_bytes(f.data).sha256, "size": len(f.data), "mime": f.mime}
                   for f in welcome]
        chans.put_resource("county-welcome", "county-core", {"title": "县级平台 欢迎使用", "kind": "html", "stage": "小学",
                                                             "grade": "一年级", "subject": "综合", "source": "county"}, entries)
        publish(hub)
    finally:
        hub.close()


def start_demo_hub(appliance: Appliance, data_dir: Path, host: str, port: int) -> tuple[Callable[[], None], list[str]]:
    """Start the demo hub, provision and sync the appliance; return (stop, lines to print)."""
    from provisioning.apply import apply_bundle
    from provisioning.bundle import make_bundle

    from edge_agent.sync.content_sync import is_provisioned, sync_content

    hub_dir, hub_port, rsync_port = data_dir / "county-hub", port + 1, port + 2
    hub_url = f"http://{host}:{hub_port}"
    click.echo("准备县级平台 Preparing the county hub ...")
    _prepare_hub(hub_dir)
    log = data_dir / "county-hub.log"
    server = SupervisedProcess([sys.executable, "-m", "edge_agent.cli", "hub", "serve", "--data", str(hub_dir), "--host",
                                host, "--port", str(hub_port), "--rsync-port", str(rsync_port)], log=log)
    try:
        server.wait_http(f"{hub_url}/api/v1/hub/status", HUB_START_TIMEOUT_S)  # stops it if it does not answer
    except ProcessError:
        return (lambda: None), [f"  县级平台未能启动，见 {log} The county hub did not start (port taken?), see {log}"]

    def stop() -> None:
        server.stop(grace_s=HUB_STOP_GRACE_S)

    try:
        if not is_provisioned(appliance):
            from hub_sync.hub import Hub

            hub = Hub.open(hub_dir)
            try:
                make_bundle(hub, appliance.school_code, appliance.identity("school_name") or "", hub_url,
                            f"rsync://{host}:{rsync_port}/content", data_dir / "county-hub-bundle")
            finally:
                hub.close()
            apply_bundle(appliance, data_dir / "county-hub-bundle")
        result = sync_content(appliance)
        synced = f"  已同步 Synced: catalogue version {result.catalogue_version}, {result.fetched.files} files fetched ({result.fetched.transport or '-'})"
    except Problem as exc:
        synced = f"  同步失败 Sync failed: {exc}"
    return stop, [f"  县级平台 County hub:      {hub_url}/api/v1/hub/channels", f"  rsync:                    rsync://{host}:{rsync_port}/content", synced]
