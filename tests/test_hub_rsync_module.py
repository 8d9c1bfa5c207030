"""The hub's rsync module holds published files only: not teachers' uploads waiting for
review, not resources added but not published, not a listing of the whole store. Checked
with the real rsync client against the real ``school-edge hub serve``."""

from __future__ import annotations

import subprocess

from tuf.api.metadata import Metadata

from hub_sync.hub.channels import Channels

RSYNC_TIMEOUT_S = 30


def listing(url: str) -> set[str]:
    """The sha256 of every file the module lists (``ab/cdef...`` joined), as anyone may ask."""
    out = subprocess.run(["rsync", "-r", "--list-only", url + "/"], capture_output=True, text=True, timeout=RSYNC_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    rows = [line.split(None, 4) for line in out.stdout.splitlines()]
    return {path.replace("/", "") for perms, *_, path in rows if perms.startswith("-")}


def fetch(url: str, sha: str, dest) -> subprocess.CompletedProcess:
    return subprocess.run(["rsync", f"{url}/{sha[:2]}/{sha[2:]}", str(dest)], capture_output=True, text=True,
                          timeout=RSYNC_TIMEOUT_S)


def published(hub) -> set[str]:
    """Every file some kept TUF moment lists: resource files and school indexes, in every
    targets role on disk (a school mid-update may still fetch from an older moment)."""
    out = set()
    for path in (hub.repo_dir / "metadata").glob("[0-9]*.json"):
        if path.name.split(".")[-2] not in ("root", "snapshot", "timestamp"):
            out |= {t.hashes["sha256"] for t in Metadata.from_file(str(path)).signed.targets.values()}
    return out


def test_the_module_lists_and_serves_published_files_only(env, tmp_path):
    lesson = env.add("yuwen-1", "r1", {"index.html": b"<p>a o e</p>", "picture.svg": b"<svg/>"})
    env.publish()
    draft = env.add("yuwen-1", "r2", {"draft.html": b"<p>not published yet</p>"})
    upload = env.hub.store.put_bytes(b"a teacher's upload waiting for review").sha256
    assert upload in set(env.hub.store)               # in the store: the HTTP side keeps it for review

    listed = listing(env.rsync_url)
    assert listed == published(env.hub) and set(lesson) <= listed
    assert upload not in listed and not set(draft) & listed
    for hidden in (upload, *draft):                   # not by name either
        refused = fetch(env.rsync_url, hidden, tmp_path / hidden)
        assert refused.returncode != 0 and not (tmp_path / hidden).exists()
    assert fetch(env.rsync_url, lesson[0], tmp_path / "got").returncode == 0
    assert (tmp_path / "got").read_bytes() == b"<p>a o e</p>"

    env.publish()                                     # published now: there, without restarting the daemon
    listed = listing(env.rsync_url)
    assert listed == published(env.hub) and set(lesson) | set(draft) <= listed and upload not in listed


def test_a_withdrawn_file_leaves_the_module_once_no_kept_moment_lists_it(env):
    old = env.add("yuwen-1", "r1", {"old.html": b"<p>withdrawn</p>"})
    env.publish()
    Channels(env.hub.db).remove_resource("r1")
    env.publish()
    assert set(old) <= listing(env.rsync_url)         # a school mid-update may still fetch it
    for i in (2, 3):
        env.add("yuwen-1", f"r{i}", {f"new{i}.html": f"<p>{i}</p>".encode()})
        env.publish()
    assert not set(old) & listing(env.rsync_url)
    assert set(old) <= set(env.hub.store)             # the store keeps it; only the module lets it go


def test_the_hub_http_routes_hand_out_published_files_only(env):
    """The HTTP side of the same rule: ``/content/<sha>`` and ``/tuf/targets/...`` answer
    a published file and 404 for an upload waiting for review or an unpublished draft."""
    import httpx

    lesson = env.add("yuwen-1", "r1", {"index.html": b"<p>a o e</p>"})
    env.publish()
    draft = env.add("yuwen-1", "r2", {"draft.html": b"<p>not published yet</p>"})
    upload = env.hub.store.put_bytes(b"a teacher's upload waiting for review").sha256

    got = httpx.get(f"{env.hub_url}/content/{lesson[0]}", timeout=10)
    assert got.status_code == 200 and got.content == b"<p>a o e</p>"
    assert httpx.get(f"{env.hub_url}/tuf/targets/yuwen-1/r1/{lesson[0]}.index.html", timeout=10).status_code == 200
    for hidden in (upload, *draft):
        assert httpx.get(f"{env.hub_url}/content/{hidden}", timeout=10).status_code == 404
        assert httpx.get(f"{env.hub_url}/tuf/targets/x/{hidden}.f", timeout=10).status_code == 404
    assert upload in set(env.hub.store)  # kept for review, just not handed out

    env.publish()
    assert httpx.get(f"{env.hub_url}/content/{draft[0]}", timeout=10).status_code == 200
