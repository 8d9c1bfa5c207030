"""``school-edge demo``: an appliance with a sample library, on loopback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from edge_agent.appliance import Appliance
from edge_agent.library.catalogue import ResourceFile
from edge_agent.config import EdgeConfig
from edge_agent.demo.sample_library import sample_resources

DEMO_SCHOOL_CODE = "4112345678"
DEMO_SCHOOL_NAME = "示范县 红星小学（演示）"


def load_sample_library(appliance: Appliance, count: int | None = None) -> int:
    """Store and catalogue the sample library; return how many resources."""
    items = sample_resources(count)
    resources = []
    with click.progressbar(items, label="生成样例资源 Making sample library", file=None) as bar:
        for resource, files in bar:
            resource.files = [ResourceFile(f.name, appliance.store.put_bytes(f.data).sha256, len(f.data), f.mime) for f in files]
            resources.append(resource)
    return appliance.catalogue.upsert_many(resources)


def prepare_demo(data_dir: Path, host: str, port: int) -> Appliance:
    config = EdgeConfig.load(data_dir, {"host": host, "port": port, "free_space_reserve_mb": 64})
    appliance = Appliance.open(config)
    if not appliance.school_code:
        appliance.set_identity(school_code=DEMO_SCHOOL_CODE, school_name=DEMO_SCHOOL_NAME)
    if appliance.catalogue.count() == 0:
        load_sample_library(appliance)
    from edge_agent.demo.sample_video import add_sample_video  # a real WebM when ffmpeg is installed (pages, issue #6)

    add_sample_video(appliance)
    return appliance


def run_demo(data_dir: Path | None, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Prepare the demo data folder and serve until Ctrl-C."""
    from edge_agent.wiring import serve_appliance

    if (EdgeConfig.load(data_dir) if data_dir else EdgeConfig()).front == "nginx":
        from edge_agent.front import nginx_binary

        nginx_binary()  # without nginx, say so in one line before starting the county hub
    data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="school-edge-demo-"))
    click.echo(f"演示数据目录 Demo data folder: {data_dir}")
    appliance = prepare_demo(data_dir, host, port)
    base = f"http://{host}:{port}"
    from edge_agent.demo.sample_roster import demo_lines, load_sample_roster  # learning spaces (issue #5)

    space_lines = demo_lines(load_sample_roster(appliance), base)
    from edge_agent.demo.county_hub import start_demo_hub  # county hub (port+1, rsync port+2), provisioned and synced (issue #4)

    stop_hub, hub_lines = start_demo_hub(appliance, data_dir, host, port)
    # the county hub is the master's child: the master stops it as it exits
    serve_appliance(appliance, stops=[stop_hub], extra_lines=[
        f"  课堂页面 Pages: 学生 students {base}/student/login  教师 teachers {base}/login  "
        f"技术员 technicians {base}/technician",
        f"  资源目录 Catalogue API:   {base}/api/v1/resources?q=拼音",
        f"  设备状态 Status API:      {base}/api/v1/status",
        *space_lines,
        *hub_lines,
    ])
