"""The hub's TUF repository: versions, expiry, delegations, hash bins, custom fields, school indexes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tuf.api.metadata import Metadata, Root

from fixtures.common import SCHOOL
from hub_sync.formats import tuf_bins, tuf_repo
from hub_sync.core.errors import FormatError
from hub_sync.hub import Hub
from hub_sync.hub.channels import Channels
from hub_sync.hub.publisher import publish, repo_for
from hub_sync.hub.registry import Registry
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.tuf_repo import TufRepo, now_utc


def _add(hub: Hub, channel: str, rid: str, data: bytes, **meta) -> str:
    sha = hub.store.put_bytes(data).sha256
    Channels(hub.db).put_resource(rid, channel, {"title": rid, "kind": "document", **meta},
                                  [{"path": "doc.pdf", "sha256": sha, "size": len(data), "mime": "application/pdf"}])
    return sha


def _md(hub: Hub, name: str) -> Metadata:
    return Metadata.from_bytes((hub.repo_dir / "metadata" / name).read_bytes())


def test_init_signs_root_with_root_key_and_lists_online_key_for_other_roles(hub):
    repo = repo_for(hub)
    root: Root = Metadata[Root].from_bytes(repo.root_bytes()).signed
    assert root.roles["root"].keyids == [hub.root_signer.public_key.keyid]
    for role in ("targets", "snapshot", "timestamp"):
        assert root.roles[role].keyids == [hub.online_signer.public_key.keyid]
    assert root.consistent_snapshot
    root.verify_delegate("root", Metadata.from_bytes(repo.root_bytes()).signed_bytes,
                         Metadata.from_bytes(repo.root_bytes()).signatures)


def test_publish_increments_versions_and_keeps_unchanged_channels(hub):
    chans = Channels(hub.db)
    chans.put_channel("yuwen-1", "一年级语文", mandatory=True)
    chans.put_channel("math-1", "一年级数学", mandatory=False)
    _add(hub, "yuwen-1", "r1", b"one")
    _add(hub, "math-1", "m1", b"two")
    first = publish(hub)
    assert first.channel_versions == {"yuwen-1": 1, "math-1": 1}
    _add(hub, "math-1", "m2", b"three")
    second = publish(hub)
    assert second.snapshot_version == first.snapshot_version + 1
    assert second.targets_version == first.targets_version  # same channels, same school indexes: not re-signed
    assert second.channel_versions == {"yuwen-1": 1, "math-1": 2}
    # publishing only one channel leaves another channel's pending change unpublished
    _add(hub, "math-1", "m3", b"four")
    third = publish(hub, {"yuwen-1"})
    assert third.channel_versions == {"yuwen-1": 2, "math-1": 2}
    assert set(repo_for(hub).channel_targets("math-1")) == {"math-1/m1/" + _sha(b"two"), "math-1/m2/" + _sha(b"three")}


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_metadata_expiry_follows_role_lifetimes(hub):
    Channels(hub.db).put_channel("yuwen-1", mandatory=True)
    _add(hub, "yuwen-1", "r1", b"x")
    before = now_utc()
    state = publish(hub)
    ts, snap = _md(hub, "timestamp.json"), _md(hub, f"{state.snapshot_version}.snapshot.json")
    channel = _md(hub, f"{state.channel_versions['yuwen-1']}.yuwen-1.json")
    assert abs(ts.signed.expires - (before + tuf_repo.TIMESTAMP_LIFETIME)) < timedelta(seconds=5)
    assert abs(snap.signed.expires - (before + tuf_repo.SNAPSHOT_LIFETIME)) < timedelta(seconds=5)
    assert abs(channel.signed.expires - (before + tuf_repo.CHANNEL_LIFETIME)) < timedelta(seconds=5)
    assert tuf_repo.signed_at(ts) is not None and abs(tuf_repo.signed_at(ts) - before) < timedelta(seconds=5)


def test_channels_are_delegated_roles_with_curriculum_metadata_in_custom_fields(hub):
    Channels(hub.db).put_channel("yuwen-1", "一年级语文 统编版", mandatory=True)
    sha = _add(hub, "yuwen-1", "r1", b"lesson", grade="一年级", subject="语文", edition="统编版", chapter="第一单元")
    state = publish(hub)
    targets = _md(hub, f"{state.targets_version}.targets.json").signed
    role = targets.delegations.roles["yuwen-1"]
    assert role.paths == ["yuwen-1/*/*"] and role.terminating
    assert role.keyids == [hub.online_signer.public_key.keyid]
    channel = _md(hub, "1.yuwen-1.json").signed
    target = channel.targets[f"yuwen-1/r1/{sha}"]
    assert target.length == 6 and target.hashes == {"sha256": sha}
    assert target.custom["subject"] == "语文" and target.custom["chapter"] == "第一单元"
    assert target.custom["path"] == "doc.pdf" and target.custom["resource_id"] == "r1"
    # the snapshot pins the channel's version
    assert _md(hub, f"{state.snapshot_version}.snapshot.json").signed.meta["yuwen-1.json"].version == 1


def test_school_index_has_mandatory_and_chosen_channels_only(hub):
    chans = Channels(hub.db)
    chans.put_channel("yuwen-1", mandatory=True)
    chans.put_channel("math-1", mandatory=False)
    chans.put_channel("music-1", mandatory=False)
    _add(hub, "yuwen-1", "r1", b"a")
    _add(hub, "math-1", "m1", b"b")
    _add(hub, "music-1", "s1", b"c")
    key = generate_key(hub.data_dir / "dev.pem")
    Registry(hub.db).register("edge-1", SCHOOL, public_key_dict(key))
    chans.subscribe(SCHOOL, "math-1", True)
    state = publish(hub)
    targets = _md(hub, f"{state.targets_version}.targets.json").signed.targets
    info = targets[f"schools/{SCHOOL}.json"]
    index = json.loads(hub.store.path_for(info.hashes["sha256"]).read_bytes())
    assert [c["id"] for c in index["channels"]] == ["math-1", "yuwen-1"]
    assert "targets" not in index  # the channels' roles list them: an added file does not change the index


def test_timestamp_is_resigned_only_when_close_to_expiry(hub):
    repo = repo_for(hub)
    version = _md(hub, "timestamp.json").signed.version
    assert repo.refresh_timestamp() is False
    assert _md(hub, "timestamp.json").signed.version == version
    assert repo.refresh_timestamp(force=True) is True
    assert _md(hub, "timestamp.json").signed.version == version + 1


def test_rotating_the_online_key_makes_a_root_signed_new_root(hub, tmp_path):
    repo = repo_for(hub)
    new_key = generate_key(tmp_path / "new-online.pem")
    repo.rotate_online_key(new_key)
    root2 = _md(hub, "2.root.json")
    old_root = Metadata[Root].from_bytes((hub.repo_dir / "metadata" / "1.root.json").read_bytes()).signed
    old_root.verify_delegate("root", root2.signed_bytes, root2.signatures)  # the old root vouches for the new
    assert root2.signed.roles["timestamp"].keyids == [new_key.public_key.keyid]
    ts = _md(hub, "timestamp.json")
    root2.signed.verify_delegate("timestamp", ts.signed_bytes, ts.signatures)


@pytest.mark.parametrize("bad", ["", "Root", "targets", "a/b", "../x", "x" * 70, "中文"])
def test_invalid_channel_ids_are_refused(hub, bad):
    with pytest.raises(FormatError):
        Channels(hub.db).put_channel(bad)
    assert Channels(hub.db).all() == []


def test_metadata_files_are_written_whole_by_rename(hub):
    repo = TufRepo(hub.repo_dir, hub.root_signer, hub.online_signer)
    repo.init()
    assert not list((hub.repo_dir / "metadata").glob(".tmp-*"))
    names = sorted(p.name for p in (hub.repo_dir / "metadata").iterdir())
    assert names == ["1.root.json", "1.snapshot.json", "1.targets.json", "root.json", "timestamp.json"]


def test_hub_cli_creates_channels_adds_resources_publishes_and_reports(tmp_path):
    from click.testing import CliRunner

    from edge_agent.cli import main

    runner = CliRunner()
    data = str(tmp_path / "H")
    lesson = tmp_path / "index.html"
    lesson.write_text("<h1>a o e</h1>")
    steps = [["hub", "init", "--data", data],
             ["hub", "channel", "--data", data, "yuwen-1", "--title", "一年级语文", "--mandatory"],
             ["hub", "add-resource", "--data", data, "--channel", "yuwen-1", "--id", "yw-1", "--title", "拼音",
              "--kind", "html", "--grade", "一年级", str(lesson)],
             ["hub", "publish", "--data", data]]
    for args in steps:
        out = runner.invoke(main, args)
        assert out.exit_code == 0, out.output
    assert "yuwen-1 v1" in out.output
    status = runner.invoke(main, ["hub", "status", "--data", data]).output
    assert "yuwen-1* v1" in status and "resources            1" in status
    bad = runner.invoke(main, ["hub", "add-resource", "--data", data, "--channel", "nope", "--id", "x", "--title", "x",
                               "--kind", "html", str(lesson)])
    assert bad.exit_code == 1 and "hub channel" in bad.output
    again = runner.invoke(main, ["hub", "publish", "--data", data])
    assert "yuwen-1 v1" in again.output  # nothing changed: the channel keeps its version


def test_old_metadata_versions_are_pruned_but_every_root_and_recent_moment_stays(hub, tmp_path):
    chans = Channels(hub.db)
    chans.put_channel("yuwen-1", "一年级语文", mandatory=True)
    chans.put_channel("math-1", "一年级数学", mandatory=True)
    _add(hub, "math-1", "m0", b"math stays unchanged")
    for i in range(6):
        _add(hub, "yuwen-1", f"r{i}", f"lesson {i}".encode())
        state = publish(hub, {"yuwen-1"} if i else None)
    repo_for(hub).rotate_online_key(generate_key(tmp_path / "new-online.pem"))
    state = repo_for(hub).state()
    names = {p.name for p in (hub.repo_dir / "metadata").iterdir()}
    keep = range(state.snapshot_version - tuf_repo.KEEP_MOMENTS + 1, state.snapshot_version + 1)
    assert {n for n in names if n.endswith(".snapshot.json")} == {f"{v}.snapshot.json" for v in keep}
    assert {n for n in names if n.endswith(".targets.json")} == {
        f"{_md(hub, f'{v}.snapshot.json').signed.meta['targets.json'].version}.targets.json" for v in keep}
    assert {"1.root.json", "2.root.json", "root.json", "timestamp.json"} <= names
    # every role a kept snapshot names is still there, so a client mid-update can finish
    for v in keep:
        for role, meta in _md(hub, f"{v}.snapshot.json").signed.meta.items():
            assert f"{meta.version}.{role}" in names
    assert len(names) <= 2 + 2 + 3 * 4  # roots, root.json + timestamp, three moments of 4 files


def _seed(hub: Hub, channel: str, count: int, start: int = 0) -> None:
    from fixtures.sync import seed_catalogue

    seed_catalogue(hub, channel, count, prefix=f"bulk{start}")


def test_a_channel_of_thousands_is_spread_over_bins_that_the_snapshot_lists(hub):
    Channels(hub.db).put_channel("yuwen-1", mandatory=True)
    _seed(hub, "yuwen-1", 5_000)
    state = publish(hub)
    channel = _md(hub, f"{state.channel_versions['yuwen-1']}.yuwen-1.json").signed
    bins = channel.delegations.succinct_roles
    assert channel.targets == {} and bins.bit_length == tuf_bins.bin_bits(5_000) == 6
    meta = _md(hub, f"{state.snapshot_version}.snapshot.json").signed.meta
    names = [n[:-5] for n in meta if tuf_bins.is_bin_role(n)]
    assert sorted(names) == sorted(bins.get_roles())
    sizes = [len(_md(hub, f"{meta[n + '.json'].version}.{n}.json").signed.targets) for n in names]
    assert sum(sizes) == 5_000 and max(sizes) < 2 * tuf_bins.BIN_TARGETS
    for name in names[:3]:  # each bin is signed by the key its channel delegates to
        md = _md(hub, f"{meta[name + '.json'].version}.{name}.json")
        channel.verify_delegate(name, md.signed_bytes, md.signatures)
        assert all(bins.get_role_for_target(path) == name for path in md.signed.targets)
    assert len(repo_for(hub).channel_targets("yuwen-1")) == 5_000


def test_a_growing_channel_gets_more_bins_and_the_snapshot_keeps_every_role_it_listed(hub):
    Channels(hub.db).put_channel("yuwen-1", mandatory=True)
    _seed(hub, "yuwen-1", 1_000)
    first = publish(hub)
    old = _md(hub, f"{first.snapshot_version}.snapshot.json").signed.meta
    assert sum(tuf_bins.is_bin_role(n) for n in old) == 8
    _seed(hub, "yuwen-1", 3_000, start=1)
    second = publish(hub)
    new = _md(hub, f"{second.snapshot_version}.snapshot.json").signed.meta
    # python-tuf's client refuses a snapshot that drops a role: the 8 old bins stay listed, emptied
    assert all(name in new and new[name].version >= meta.version for name, meta in old.items())
    retired = [n for n in old if tuf_bins.is_bin_role(n)]
    assert all(_md(hub, f"{new[n].version}.{n}").signed.targets == {} for n in retired)
    bins = _md(hub, f"{second.channel_versions['yuwen-1']}.yuwen-1.json").signed.delegations.succinct_roles
    assert bins.bit_length == 5 and len(repo_for(hub).channel_targets("yuwen-1")) == 4_000
    Channels(hub.db).remove_resource("bulk1-00000")
    assert _md(hub, f"{publish(hub).channel_versions['yuwen-1']}.yuwen-1.json").signed.delegations \
        .succinct_roles.bit_length == 5  # fewer files: the bin count stays


def test_a_hub_that_publishes_nothing_for_weeks_keeps_every_role_fresh(hub, monkeypatch):
    """The running hub's timestamp refresh re-signs the same content as a new moment once
    the snapshot is past half its life, and channel roles and bins when they are due."""
    chans = Channels(hub.db)
    chans.put_channel("yuwen-1", mandatory=True)
    _seed(hub, "yuwen-1", 300)
    first = publish(hub)
    repo = repo_for(hub)
    published = {p: t.to_dict() for p, t in repo.channel_targets("yuwen-1").items()}
    start = now_utc()
    for day in range(1, 61):  # two months of a hub nobody publishes on, checked twice a day
        for half in (0, 12):
            moment = start + timedelta(days=day, hours=half)
            monkeypatch.setattr(tuf_repo, "now_utc", lambda moment=moment: moment)
            repo.refresh_timestamp()
            state = repo.state()
            snapshot = _md(hub, f"{state.snapshot_version}.snapshot.json").signed
            assert state.timestamp_expires > moment and snapshot.expires > moment
            assert _md(hub, f"{state.targets_version}.targets.json").signed.expires > moment
            for name, entry in snapshot.meta.items():
                if name.startswith("yuwen-1"):
                    assert _md(hub, f"{entry.version}.{name}").signed.expires > moment, (day, name)
    assert state.snapshot_version > first.snapshot_version
    # the same content, only signed again
    assert {p: t.to_dict() for p, t in repo.channel_targets("yuwen-1").items()} == published and len(published) == 300


def test_a_timestamp_refresh_alone_signs_no_new_moment_while_the_snapshot_is_fresh(hub, monkeypatch):
    chans = Channels(hub.db)
    chans.put_channel("yuwen-1", mandatory=True)
    _add(hub, "yuwen-1", "r1", b"a lesson")
    first = publish(hub)
    soon = now_utc() + timedelta(hours=13)
    monkeypatch.setattr(tuf_repo, "now_utc", lambda: soon)
    assert repo_for(hub).refresh_timestamp() is True
    assert repo_for(hub).state().snapshot_version == first.snapshot_version


def test_bins_nobody_touched_are_re_signed_before_they_expire(hub, monkeypatch):
    chans = Channels(hub.db)
    chans.put_channel("yuwen-1", mandatory=True)
    chans.put_channel("math-1", mandatory=True)
    _seed(hub, "yuwen-1", 1_000)
    first = publish(hub)
    later = now_utc() + tuf_repo.CHANNEL_LIFETIME * 0.6
    monkeypatch.setattr(tuf_repo, "now_utc", lambda: later)
    _add(hub, "math-1", "m1", b"a change elsewhere")
    second = publish(hub)
    meta = _md(hub, f"{second.snapshot_version}.snapshot.json").signed.meta
    for name, entry in meta.items():
        if name.startswith("yuwen-1"):
            assert entry.version == 2 and _md(hub, f"2.{name}").signed.expires > later + tuf_repo.CHANNEL_LIFETIME / 2
    assert second.channel_versions["yuwen-1"] == first.channel_versions["yuwen-1"] + 1


def test_with_bins_expiry_rotation_and_pruning_hold_for_every_bin(hub, tmp_path):
    Channels(hub.db).put_channel("yuwen-1", mandatory=True)
    _seed(hub, "yuwen-1", 1_000)
    before = now_utc()
    publish(hub)
    for i in range(4):  # moments that change one bin each
        _add(hub, "yuwen-1", f"r{i}", f"lesson {i}".encode())
        publish(hub)
    new_key = generate_key(tmp_path / "new-online.pem")
    repo_for(hub).rotate_online_key(new_key)
    state = repo_for(hub).state()
    channel = _md(hub, f"{state.channel_versions['yuwen-1']}.yuwen-1.json").signed
    assert channel.delegations.succinct_roles.keyids == [new_key.public_key.keyid]
    meta = _md(hub, f"{state.snapshot_version}.snapshot.json").signed.meta
    for name in channel.delegations.succinct_roles.get_roles():  # every bin re-signed with the new key
        md = _md(hub, f"{meta[name + '.json'].version}.{name}.json")
        channel.verify_delegate(name, md.signed_bytes, md.signatures)
        assert abs(md.signed.expires - (before + tuf_repo.CHANNEL_LIFETIME)) < timedelta(seconds=30)
    names = {p.name for p in (hub.repo_dir / "metadata").iterdir()}
    keep = range(state.snapshot_version - tuf_repo.KEEP_MOMENTS + 1, state.snapshot_version + 1)
    for v in keep:  # a client mid-update can finish any kept moment
        assert all(f"{m.version}.{role}" in names for role, m in _md(hub, f"{v}.snapshot.json").signed.meta.items())
    assert len([n for n in names if ".bin-" in n]) <= 3 * 8  # older bin versions are pruned
