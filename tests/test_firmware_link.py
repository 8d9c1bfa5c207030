"""A software update over a real cut link: the appliance in its own network
namespace behind a 2 Mbit/s ``tc tbf`` veth (tests/fixtures/link.py); the cable is
pulled in the middle of the release's transfer and the next attempt moves only the
rest (rsync's partial file kept in the firmware staging)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from fixtures.common import REPO
from fixtures.firmware_hub import FirmwareEnv
from fixtures.link import NEEDS_LINK, Link
from hub_sync.core.processes import wait_until

pytestmark = [*NEEDS_LINK, pytest.mark.slow]  # ~20 s: a shaped link, cut once

BIG = 3 * 1024 * 1024  # ~12 s at 2 Mbit/s
SIZES = {"school_edge-{v}-py3-none-any.whl": BIG, "six-1.16-py3-none-any.whl": 20_000}


@pytest.fixture
def linked_fw(tmp_path, link):
    e = FirmwareEnv(tmp_path, host=link.hub_ip)
    settings = e.app.data_dir / "settings.json"
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "sync_bwlimit_kbps": 0, "sync_timeout_s": 3}))
    yield e
    e.close()


def _update(link: Link, env: FirmwareEnv) -> subprocess.Popen:
    """The real ``school-edge edge update --force --no-install`` inside the appliance's namespace."""
    return subprocess.Popen(link.inside(sys.executable, "-m", "edge_agent.cli", "edge", "update", "--data",
                                        str(env.app.data_dir), "--force", "--no-install"),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _staged(env: FirmwareEnv) -> int:
    staging = env.app.data_dir / "sync" / "firmware-staging"
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0


def test_cut_mid_download_resumes_and_moves_only_the_rest(linked_fw, link):
    assert linked_fw.cli("publish", str(linked_fw.release("99.0.0", sizes=SIZES))).exit_code == 0
    proc = _update(link, linked_fw)

    def staged_enough() -> bool:
        assert proc.poll() is None, proc.stdout.read()
        return _staged(linked_fw) >= 1024 * 1024

    wait_until(staged_enough, 60, "1 MiB of the release staged")
    link.down()
    assert proc.wait(60) == 1
    output = proc.stdout.read()
    proc.stdout.close()
    assert "stalled" in output or "interrupted" in output, output
    assert output.strip().splitlines()[-1].startswith("错误 Error:") and "resumes" in output  # one clear line
    assert not (linked_fw.app.data_dir / "sync" / "firmware-releases").exists()  # nothing assembled
    kept = _staged(linked_fw)
    link.up()
    proc = _update(link, linked_fw)
    rc = proc.wait(90)
    output = proc.stdout.read()
    proc.stdout.close()
    assert rc == 0, output
    moved = int(re.search(r"\((\d+) / (\d+) bytes moved\)", output).group(1))
    assert moved < BIG - kept + BIG * 0.05, (output, kept)
    assert (linked_fw.app.data_dir / "sync" / "firmware-releases" / "99.0.0" / "manifest.json").is_file()
    assert _staged(linked_fw) == 0
