"""Sneakernet round trip: content down, usage up (encrypted), acknowledgements back, prune."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures.common import OTHER_SCHOOL, SCHOOL, sha
from fixtures.servers import tmpfs
from fixtures.usb import PASSPHRASE, tree

from edge_agent.cli import main
from hub_sync.core.errors import SignatureError
from hub_sync.core.processes import wait_until
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.publisher import publish
from provisioning import stick
from provisioning.sneakernet import export_usb, import_usb
from provisioning.sneakernet_hub import hub_import_usb
from provisioning.usb_apply import apply_stick
from provisioning.errors import StickTooSmallError, UsbError, WrongSchoolError


def provisioned(usb_world, name="edge", school=SCHOOL):
    app = usb_world.appliance(name)
    apply_stick(app, usb_world.stick, PASSPHRASE, school=school)
    return app


def use(app, n, start=0):
    app.journal.append_many([("person:1", "viewed", f"resource:r{start + i}", {"i": start + i}) for i in range(n)])


def school_dir(usb_world, code=SCHOOL):
    return usb_world.stick / "school-edge" / code


def test_full_round_trip_content_down_usage_up_acknowledgements_back(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 40)
    pending = app.journal.pending_count()
    exported = export_usb(app, usb_world.stick)
    assert exported["events"] == pending and app.journal.pending_count() == pending  # nothing pruned yet

    # at the county: a new resource was published meanwhile
    new_files = usb_world.add("r-math", {"shu.mp4": os.urandom(50_000)}, title="数一数")
    publish(usb_world.hub)
    [report] = hub_import_usb(usb_world.hub, usb_world.stick)
    assert report["enrolled"] == [app.device_id]  # the request provision apply wrote on the stick
    assert report["devices"][0]["stored"] == pending
    assert UsageIngest(usb_world.hub.db).count(app.device_id) == pending
    assert report["pack"]["files"] >= 4

    # back on site
    result = import_usb(app, usb_world.stick)
    assert result["usage"]["acked_seq"] == app.journal.last_seq() and app.journal.pending_count() == 0
    assert result["usage"]["pruned"] == pending
    assert app.catalogue.get("r-math").files[0].sha256 == new_files[0] and app.store.has(new_files[0])
    assert app.identity("enrolled") == "yes"
    assert not (school_dir(usb_world) / "up" / app.device_id).exists() or \
        not any((school_dir(usb_world) / "up" / app.device_id).iterdir())  # acknowledged exports are cleared


def test_usage_on_the_stick_is_encrypted_to_the_hub(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    app.journal.append("person:42", "answered", "resource:secret-quiz", {"answer": "北京"})
    export_usb(app, usb_world.stick)
    [export] = list((school_dir(usb_world) / "up" / app.device_id).iterdir())
    sealed = [p for p in export.iterdir() if p.suffix == ".sealed"]
    assert sealed
    for path in sealed:
        raw = path.read_bytes()
        assert b"person:42" not in raw and "北京".encode() not in raw and app.device_id.encode() not in raw
        with pytest.raises(ValueError):
            json.loads(raw)


def test_same_export_imported_twice_changes_nothing_at_the_hub(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 25)
    export_usb(app, usb_world.stick)
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    count = UsageIngest(usb_world.hub.db).count()
    lines = []
    [again] = hub_import_usb(usb_world.hub, usb_world.stick, packs=False, progress=lines.append)
    assert again["devices"][0]["stored"] == 0 and UsageIngest(usb_world.hub.db).count() == count
    assert any("already imported" in line for line in lines)


def test_one_stick_carries_two_schools(usb_world):
    usb_world.make()
    usb_world.make(OTHER_SCHOOL, "青山小学")
    a = provisioned(usb_world, "edge-a", SCHOOL)
    b = provisioned(usb_world, "edge-b", OTHER_SCHOOL)
    use(a, 10)
    use(b, 7)
    export_usb(a, usb_world.stick)
    export_usb(b, usb_world.stick)
    reports = {r["school_code"]: r for r in hub_import_usb(usb_world.hub, usb_world.stick)}
    assert reports[SCHOOL]["devices"][0]["stored"] == a.journal.last_seq()
    assert reports[OTHER_SCHOOL]["devices"][0]["stored"] == b.journal.last_seq()
    import_usb(a, usb_world.stick)
    import_usb(b, usb_world.stick)
    assert a.journal.pending_count() == 0 and b.journal.pending_count() == 0


def test_half_written_export_is_ignored_with_a_message_and_the_next_export_carries_on(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 30)
    export_usb(app, usb_world.stick)
    [export] = list((school_dir(usb_world) / "up" / app.device_id).iterdir())
    (export / stick.MARKER).unlink()  # the stick was pulled out before the marker
    next(export.glob("*.sealed")).write_bytes(b"half")
    [report] = hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    assert UsageIngest(usb_world.hub.db).count() == 0
    assert any("half-written" in p for p in report["problems"])

    use(app, 5, start=30)
    export_usb(app, usb_world.stick)  # a fresh export replaces the broken one
    assert [p.name for p in (school_dir(usb_world) / "up" / app.device_id).iterdir()] != [export.name]
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    assert UsageIngest(usb_world.hub.db).count() == app.journal.last_seq()


def test_acknowledgements_pulled_out_half_way_are_ignored_then_the_next_run_carries_on(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 12)
    export_usb(app, usb_world.stick)
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    down = school_dir(usb_world) / "down" / app.device_id
    [acks] = list(down.iterdir())
    (acks / stick.MARKER).unlink()
    pending = app.journal.pending_count()
    result = import_usb(app, usb_world.stick)
    assert app.journal.pending_count() == pending and result["usage"]["ignored"]
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)  # the county runs again
    import_usb(app, usb_world.stick)
    assert app.journal.pending_count() == 0


def test_content_pack_half_written_leaves_the_catalogue_alone(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    usb_world.add("r-new", {"x.txt": b"new"}, title="新资源")
    publish(usb_world.hub)
    hub_import_usb(usb_world.hub, usb_world.stick)
    (school_dir(usb_world) / "content" / stick.MARKER).unlink()
    before = app.catalogue.count()
    result = import_usb(app, usb_world.stick)
    assert "ignored" in result["content"] and app.catalogue.count() == before
    hub_import_usb(usb_world.hub, usb_world.stick)
    import_usb(app, usb_world.stick)
    assert app.catalogue.count() == before + 1


def test_stick_pulled_out_during_hub_import_then_run_again(usb_world, tmp_path):
    """A real process killed half-way through writing the content pack."""
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 20)
    export_usb(app, usb_world.stick)
    usb_world.add("r-big", {f"part{i}.mp4": os.urandom(4_000_000) for i in range(6)}, title="大视频")
    publish(usb_world.hub)
    usb_world.hub.close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(["python3", "-m", "edge_agent.cli", "hub", "import-usb", str(usb_world.stick),
                             "--data", str(usb_world.hub.data_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    targets = school_dir(usb_world) / "content" / "targets"
    wait_until(lambda: proc.poll() is not None or (targets.is_dir() and len(list(targets.iterdir())) >= 4), 60,
               "the import to write four of the pack's files", interval_s=0.01)
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    proc.stdout.close()
    assert proc.returncode == -9, "the import finished before it could be interrupted"
    assert not (school_dir(usb_world) / "content" / stick.MARKER).exists()
    result = import_usb(app, usb_world.stick)  # acknowledgements were complete; the pack is not: ignored
    assert "ignored" in result["content"] and not app.catalogue.search("大视频")[0]
    assert app.journal.pending_count() == 0
    from hub_sync.hub import Hub
    usb_world.hub = Hub.open(usb_world.hub.data_dir, reserve_mb=1)
    hub_import_usb(usb_world.hub, usb_world.stick)  # the next run carries on
    import_usb(app, usb_world.stick)
    assert app.catalogue.get("r-big") is not None and app.journal.pending_count() == 0


def test_acknowledgement_not_signed_by_the_hub_is_refused_and_nothing_is_pruned(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 5)
    export_usb(app, usb_world.stick)
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    [acks] = list((school_dir(usb_world) / "down" / app.device_id).iterdir())
    ack = acks / "ack-0001.json"
    env = json.loads(ack.read_bytes())
    env["signatures"][0]["sig"] = "00" * 64
    ack.write_text(json.dumps(env))
    stick.write_marker(acks, [stick.file_entry(acks, "ack-0001.json")])
    pending = app.journal.pending_count()
    with pytest.raises(SignatureError):
        import_usb(app, usb_world.stick)
    assert app.journal.pending_count() == pending


def test_export_on_a_stick_for_another_school_and_unprovisioned_device_are_refused(usb_world):
    usb_world.make(OTHER_SCHOOL, "青山小学")
    fresh = usb_world.appliance("fresh")
    with pytest.raises(UsbError, match="not provisioned"):
        export_usb(fresh, usb_world.stick)
    usb_world.make()
    app = provisioned(usb_world, school=SCHOOL)
    other = usb_world.tmp / "other-stick"
    (other / "school-edge" / OTHER_SCHOOL).mkdir(parents=True)
    with pytest.raises(WrongSchoolError):
        import_usb(app, other)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_full_stick_refuses_the_export_before_writing_and_keeps_the_usage(usb_world, tmp_path):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 10)
    with tmpfs(tmp_path / "full", "size=1m") as mount:
        fd = os.open(mount / "photos.bin", os.O_WRONLY | os.O_CREAT)
        try:  # filled to the last byte
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        before = tree(mount)
        with pytest.raises(StickTooSmallError):
            export_usb(app, mount)
        assert tree(mount) == before and app.journal.pending_count() == app.journal.last_seq()


@pytest.mark.slow  # the real CLI, process by process: ~6-12 s
def test_technician_story_with_the_real_command(tmp_path):
    """Empty hub and empty device to a full round trip, each step a fresh `school-edge` process."""
    import sys

    from fixtures.usb import roster_bytes

    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig
    from hub_sync.hub import Hub

    def run(*args):
        out = subprocess.run([sys.executable, "-m", "edge_agent.cli", *map(str, args)], capture_output=True, text=True,
                             timeout=120, cwd=Path(__file__).resolve().parent.parent)
        assert "Traceback" not in out.stderr, out.stderr
        return out

    hub, data, usb = tmp_path / "hub", tmp_path / "device", tmp_path / "usb"
    usb.mkdir()
    (tmp_path / "lesson.html").write_text("<h1>拼音</h1>")
    (tmp_path / "roster.csv").write_bytes(roster_bytes())
    (tmp_path / "pass.txt").write_text(PASSPHRASE)
    for args in (["hub", "init", "--data", hub],
                 ["hub", "channel", "--data", hub, "yuwen-1", "--title", "一年级语文", "--mandatory"],
                 ["hub", "add-resource", "--data", hub, tmp_path / "lesson.html", "--channel", "yuwen-1", "--id", "r1",
                  "--title", "汉语拼音", "--kind", "html"],
                 ["hub", "publish", "--data", hub],
                 ["provision", "make", "--hub-data", hub, "--school-code", SCHOOL, "--school-name", "红星小学",
                  "--hub-url", "http://127.0.0.1:9", "--out", usb, "--stick", "--roster", tmp_path / "roster.csv",
                  "--passphrase-file", tmp_path / "pass.txt"],
                 ["provision", "apply", usb, "--data", data, "--passphrase-file", tmp_path / "pass.txt"]):
        out = run(*args)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    app = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1}))
    assert app.catalogue.search("拼音")[0] == 1
    use(app, 8)
    events = app.journal.last_seq()
    app.close()
    out = run("edge", "export-usb", usb, "--data", data)
    assert out.returncode == 0, out.stderr
    out = run("hub", "import-usb", usb, "--data", hub)
    assert out.returncode == 0 and f"school {SCHOOL}: 1 devices, {events} new events" in out.stdout, out.stdout + out.stderr
    out = run("edge", "import-usb", usb, "--data", data)
    assert out.returncode == 0 and f"{events} events pruned" in out.stdout, out.stdout + out.stderr
    app = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1}))
    assert app.journal.pending_count() == 0
    app.close()
    h = Hub.open(hub)
    assert UsageIngest(h.db).count() == events
    h.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run("hub", "import-usb", empty, "--data", hub)
    assert out.returncode == 1 and "nothing to import" in out.stderr


def test_offered_teacher_upload_and_enrollment_travel_in_the_export(usb_world):
    from edge_agent.spaces.people import find_by_number
    from edge_agent.spaces.uploads import offer_to_county, upload_resource

    usb_world.make()
    app = provisioned(usb_world)
    for request in school_dir(usb_world).glob("bundle/enrollment-request-*.json"):
        request.unlink()  # the county only sees the export
    teacher = find_by_number(app.db, "T001")
    lesson = "<html><body><h1>我的课件</h1></body></html>".encode()
    res = upload_resource(app.db, app.store, teacher, "课件.html", lesson, {"title": "我的课件", "subject": "语文"}, 10_000_000)
    offer_to_county(app.db, teacher, res["resource_id"])
    exported = export_usb(app, usb_world.stick)
    assert exported["uploads"] == 1
    [report] = hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    assert report["enrolled"] == [app.device_id] and not report["problems"]
    assert usb_world.hub.store.has(sha(lesson))
    row = usb_world.hub.db.execute("select school_code, meta from usb_offered_uploads where resource_id = ?",
                               [res["resource_id"]]).fetchone()
    assert row[0] == SCHOOL and json.loads(row[1])["title"] == "我的课件"


def test_changed_upload_on_the_stick_is_refused(usb_world):
    from edge_agent.spaces.people import find_by_number
    from edge_agent.spaces.uploads import offer_to_county, upload_resource

    usb_world.make()
    app = provisioned(usb_world)
    teacher = find_by_number(app.db, "T001")
    res = upload_resource(app.db, app.store, teacher, "a.html", b"<html>ok</html>", {"title": "T"}, 10_000_000)
    offer_to_county(app.db, teacher, res["resource_id"])
    export_usb(app, usb_world.stick)
    [export] = list((school_dir(usb_world) / "up" / app.device_id).iterdir())
    upload = next(export.glob("upload-*"))
    upload.write_bytes(b"<html>no</html>")  # same size, other bytes
    [report] = hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    assert report["problems"] and not usb_world.hub.store.has(sha(b"<html>no</html>"))
    assert usb_world.hub.db.execute("select count(*) from usb_offered_uploads").fetchone()[0] == 0
    assert UsageIngest(usb_world.hub.db).count() == 0  # nothing of the refused export was ingested


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_hub_import_onto_a_full_stick_loses_nothing_and_carries_on(usb_world, tmp_path):
    with tmpfs(tmp_path / "small", "size=2m") as mount:
        usb_world.make(stick=mount, content=False, roster=b"")
        app = usb_world.appliance()
        apply_stick(app, mount)
        use(app, 50)
        export_usb(app, mount)
        fd = os.open(mount / "photos.bin", os.O_WRONLY | os.O_CREAT)
        try:  # someone filled the stick to the last byte on the way to the county
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        [report] = hub_import_usb(usb_world.hub, mount)
        assert any("full" in p for p in report["problems"])
        assert UsageIngest(usb_world.hub.db).count() == app.journal.last_seq()  # ingested, nothing lost
        assert import_usb(app, mount)["usage"]["acks"] == 0 and app.journal.pending_count() == app.journal.last_seq()
        (mount / "photos.bin").unlink()  # room made; the next run carries on
        [again] = hub_import_usb(usb_world.hub, mount)
        assert not again["problems"] and again["devices"][0]["stored"] == 0
        import_usb(app, mount)
        assert app.journal.pending_count() == 0


def test_cli_lists_a_half_written_export_and_exits_non_zero(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 3)
    export_usb(app, usb_world.stick)
    [export] = list((school_dir(usb_world) / "up" / app.device_id).iterdir())
    (export / stick.MARKER).unlink()
    out = CliRunner().invoke(main, ["hub", "import-usb", str(usb_world.stick), "--data", str(usb_world.hub.data_dir)])
    assert out.exit_code == 1
    assert "half-written" in out.output and "1 problem(s)" in out.output


def test_importing_the_same_stick_twice_on_the_device_changes_nothing(usb_world):
    from fixtures.usb import device_state

    usb_world.make()
    app = provisioned(usb_world)
    use(app, 9)
    export_usb(app, usb_world.stick)
    usb_world.add("r-more", {"m.txt": b"more"}, title="更多")
    publish(usb_world.hub)
    hub_import_usb(usb_world.hub, usb_world.stick)
    import_usb(app, usb_world.stick)
    before = device_state(app)
    again = import_usb(app, usb_world.stick)
    assert again["content"]["resources"] == 0 and again["usage"]["pruned"] == 0
    assert device_state(app) == before


def test_many_batches_chain_across_two_visits(usb_world):
    usb_world.make()
    app = provisioned(usb_world)
    use(app, 30)
    first = export_usb(app, usb_world.stick, max_events=7)
    assert first["batches"] == 5
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    import_usb(app, usb_world.stick)
    assert app.journal.pending_count() == 0
    use(app, 11, start=30)  # the next visit chains on the acknowledged batch
    assert export_usb(app, usb_world.stick, max_events=4)["batches"] == 3
    [report] = hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    assert not report["problems"] and report["devices"][0]["stored"] == 11
    import_usb(app, usb_world.stick)
    assert app.journal.pending_count() == 0 and UsageIngest(usb_world.hub.db).count() == app.journal.last_seq()
