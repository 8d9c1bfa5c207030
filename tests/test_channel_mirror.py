"""Province channels mirrored into a county hub as TUF delegations, end to end on
loopback: a province hub under gunicorn, a county hub under ``school-edge hub serve``
(HTTP + rsync), a provisioned appliance syncing from the county with python-tuf's
ngclient. The county delegates each mirrored channel to the province's key and
serves the province's signed role files byte for byte; it never signs them."""

from __future__ import annotations

import signal

import pytest
from click.testing import CliRunner
from tuf.api.metadata import Metadata

from edge_agent.cli import main
from fixtures.servers import GunicornHub, free_port
from fixtures.sync import SyncEnv, seed_catalogue
from hub_sync.hub import Hub
from hub_sync.hub.channels import Channels
from hub_sync.hub.publisher import publish, repo_for

pytestmark = pytest.mark.slow  # two real hubs, an rsync daemon and an appliance: ~10 s

PROV = "prov-shuxue"
BULK = "prov-bulk"  # big enough for hash bins (tuf_bins.BIN_TARGETS)
BULK_SIZE = 300


class World:
    """A served province with two channels, a served county with one of its own, and an
    appliance provisioned from the county."""

    def __init__(self, tmp, db_url) -> None:
        self.tmp = tmp
        self.province = Hub.init(tmp / "province", reserve_mb=1, db_url=db_url)
        chans = Channels(self.province.db)
        chans.put_channel(PROV, "省级 一年级数学", mandatory=True)
        chans.put_channel(BULK, "省级 资源库", mandatory=True)
        for rid in ("p1", "p2", "p3"):
            self.add_province(rid)
        seed_catalogue(self.province, BULK, BULK_SIZE, prefix="pbulk")
        publish(self.province)
        self.root = tmp / "province-root.json"
        self.root.write_bytes(repo_for(self.province).root_bytes())
        self.server = GunicornHub(self.province.data_dir, free_port()).start()
        self.county = SyncEnv(tmp / "county")
        self.county.add("yuwen-1", "c1", {"index.html": b"<h1>county</h1>"})
        self.county.publish()

    def add_province(self, rid: str) -> None:
        data = f"province {rid}".encode()
        blob = self.province.store.put_bytes(data)
        Channels(self.province.db).put_resource(rid, PROV, {"title": f"省级 {rid}", "kind": "document"},
                                                [{"path": f"{rid}.txt", "sha256": blob.sha256, "size": len(data),
                                                  "mime": "text/plain"}])

    def cli(self, *args: str):
        """``school-edge hub ARGS`` on the county as a technician runs it (one process, exit code)."""
        verb, rest = args[0], args[1:]
        if verb == "mirror":
            return CliRunner().invoke(main, ["hub", "mirror", rest[0], "--data", str(self.county.hub.data_dir), *rest[1:]])
        return CliRunner().invoke(main, ["hub", verb, "--data", str(self.county.hub.data_dir), *rest])

    def mirror(self, channel: str):
        result = self.cli("mirror", "add", "--from", self.server.url, "--channel", channel,
                          "--province-root", str(self.root), "--mandatory")
        assert result.exit_code == 0, result.output
        return result

    def ids(self) -> set[str]:
        return {i for i in self.county.ids() if not i.startswith("pbulk-")}

    def county_file(self, name: str) -> bytes:
        return (self.county.hub.repo_dir / "metadata" / name).read_bytes()

    def close(self) -> None:
        self.server.kill(signal.SIGTERM)
        self.county.close()
        self.province.close()


@pytest.fixture
def world(tmp_path, hub_db):
    w = World(tmp_path, hub_db())
    yield w
    w.close()


def _province_role_file(hub: Hub, role: str) -> tuple[int, bytes]:
    state = repo_for(hub).state()
    version = repo_for(hub).snapshot_meta(state.snapshot_version)[f"{role}.json"].version
    return version, (hub.repo_dir / "metadata" / f"{version}.{role}.json").read_bytes()


def test_appliance_gets_county_and_province_channels_verified_through_the_delegation(world):
    world.mirror(PROV)
    world.mirror(BULK)
    listed = world.cli("mirror", "list")
    assert PROV in listed.output and BULK in listed.output and "正常 ok" in listed.output

    # the county's targets delegates the channel to the PROVINCE's key, with the province's file as is
    county_state = repo_for(world.county.hub).state()
    assert county_state.mirrored_versions.keys() == {PROV, BULK}
    top = Metadata.from_bytes(world.county_file(f"{county_state.targets_version}.targets.json")).signed
    province_key = world.province.online_signer.public_key.keyid
    assert top.delegations.roles[PROV].keyids == [province_key]
    assert province_key != world.county.hub.online_signer.public_key.keyid
    version, data = _province_role_file(world.province, PROV)
    assert world.county_file(f"{version}.{PROV}.json") == data
    assert county_state.mirrored_versions[PROV] == version
    bins = [name for name in repo_for(world.county.hub).snapshot_meta(county_state.snapshot_version) if ".bin-" in name]
    assert bins and all(n.startswith(BULK) for n in bins)
    for name in bins:
        v, province_bin = _province_role_file(world.province, name[:-5])
        assert world.county_file(f"{v}.{name}") == province_bin

    world.county.sync()
    assert world.ids() == {"c1", "p1", "p2", "p3"}
    assert sum(1 for i in world.county.ids() if i.startswith("pbulk-")) == BULK_SIZE
    catalogue, blobs, _ = world.county.state()
    assert {r[2] for r in catalogue} == {"yuwen-1", PROV, BULK}
    p1 = next(r for r in catalogue if r[0] == "p1")
    with world.county.app.store.open(p1[3][0][1]) as f:
        assert f.read() == b"province p1"

    # a province update reaches the appliance after the next mirror sync
    world.add_province("p4")
    publish(world.province)
    synced = world.cli("mirror", "sync")
    assert synced.exit_code == 0, synced.output
    world.county.sync()
    assert world.ids() == {"c1", "p1", "p2", "p3", "p4"}

    # the county's own channel keeps working beside the mirrored ones
    world.county.add("yuwen-1", "c2", {"b.html": b"<h1>c2</h1>"})
    world.county.publish()
    world.county.sync()
    assert world.ids() == {"c1", "c2", "p1", "p2", "p3", "p4"}

    # removing the mirror withdraws the channel at the next publish
    removed = world.cli("mirror", "remove", PROV)
    assert removed.exit_code == 0, removed.output
    state = repo_for(world.county.hub).state()
    assert PROV not in state.mirrored_versions and BULK in state.mirrored_versions
    world.county.sync()
    assert world.ids() == {"c1", "c2"}


def test_tampered_province_role_is_refused_and_the_county_unchanged(world):
    world.mirror(PROV)
    world.county.sync()
    before = repo_for(world.county.hub).state()
    files_before = sorted(p.name for p in (world.county.hub.repo_dir / "metadata").iterdir())

    world.add_province("p5")
    publish(world.province)
    version, data = _province_role_file(world.province, PROV)
    path = world.province.repo_dir / "metadata" / f"{version}.{PROV}.json"
    tampered = data.replace(b"p5", b"p6")
    assert tampered != data
    path.write_bytes(tampered)

    result = CliRunner().invoke(main, ["hub", "mirror", "sync", "--data", str(world.county.hub.data_dir)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"省级频道 {PROV}" in lines[0] and f"province channel {PROV}" in lines[0] and "signature" in lines[0]
    assert repo_for(world.county.hub).state() == before
    assert sorted(p.name for p in (world.county.hub.repo_dir / "metadata").iterdir()) == files_before
    assert "signature" in world.cli("mirror", "list").output
    world.county.sync()
    assert "p5" not in world.ids() and "p1" in world.ids()


def test_mirrored_channel_ids_are_reserved(world):
    world.mirror(PROV)
    own = world.cli("channel", PROV, "--title", "县级 冒名")
    assert own.exit_code != 0 and "镜像" in own.output
    assert world.cli("add-resource", str(world.root), "--channel", PROV, "--id", "x", "--title", "x",
                     "--kind", "document").exit_code != 0
    clash = world.cli("mirror", "add", "--from", world.server.url, "--channel", "yuwen-1",
                      "--province-root", str(world.root))
    assert clash.exit_code != 0 and "yuwen-1" in clash.output
    assert [c.id for c in Channels(world.county.hub.db).all()] == ["math-1", PROV, "yuwen-1"]
