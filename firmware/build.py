"""Building a release folder: the application wheel with its version stamped in,
every runtime dependency as a wheel, and ``manifest.json``.

The application is built from a temporary copy of the source (the checkout is
never written to) whose ``firmware/__init__.py`` carries the release's version;
``patch`` may change that copy further (the tests build broken variants this
way). Dependencies come from ``pip wheel`` into a wheel cache that outlives the
build; which wheels a set of requirements needs is resolved once (``pip install
--dry-run --report`` against the cache, no registry) and remembered in the cache,
so a second build with the same requirements only builds the application wheel.
The release needs no registry to install: ``pip install --no-index`` from its
``wheels/`` folder.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import unquote, urlparse

from hub_sync.core.atomic_file import atomic_write
from hub_sync.formats.firmware_release import (MANIFEST_NAME, WHEELS_DIR, Manifest, build_manifest, manifest_bytes,
                                               parse_version)

from firmware.errors import BuildError

APP_DIST = "school_edge"
# what a source checkout holds that the application wheel is built from
SOURCE_PACKAGES = ("edge_agent", "hub_sync", "provisioning", "firmware", "classroom_ui")
SOURCE_FILES = ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in")
DEFAULT_MIN_FROM = "0.1.0"
VERSION_LINE = re.compile(r'^__version__ = "[^"]*"$', re.M)
PIP_TAIL_CHARS = 2000


def default_source() -> Path:
    """The checkout this code runs from (where ``setup.cfg`` sits next to the packages)."""
    return Path(__file__).resolve().parent.parent


def default_cache() -> Path:
    """Where dependency wheels are kept between builds."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "school-edge" / "wheels"


def _pip(args: Sequence[str], what: str) -> str:
    """Run pip with ``args``; BuildError quoting the end of its output if it fails."""
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-PIP_TAIL_CHARS:].strip().splitlines()
        raise BuildError(f"{what}失败：{tail[-1] if tail else ''}", f"{what} failed: {' | '.join(tail[-3:])}")
    return done.stdout


def copy_source(source: Path, dest: Path, version: str) -> None:
    """Copy the packages of ``source`` to ``dest`` with ``version`` stamped into ``firmware``."""
    if not (source / "setup.cfg").is_file() or not (source / "firmware" / "__init__.py").is_file():
        raise BuildError(f"{source} 不是 school-edge 的源码目录（缺少 setup.cfg）",
                         f"{source} is not a school-edge source checkout (no setup.cfg); pass --source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCE_PACKAGES:
        shutil.copytree(source / name, dest / name, ignore=ignore)
    for name in SOURCE_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    init = dest / "firmware" / "__init__.py"
    text, n = VERSION_LINE.subn(f'__version__ = "{version}"', init.read_text("utf-8"))
    if n != 1:
        raise BuildError("firmware/__init__.py 中找不到版本号", "no __version__ line in firmware/__init__.py")
    init.write_text(text, "utf-8")


def _requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a built wheel (what its dependencies are)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode("utf-8").splitlines()
    return sorted(line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:"))


def _closure(app_wheel: Path, cache: Path) -> list[Path]:
    """The dependency wheels ``app_wheel`` needs, from ``cache`` (filled by pip wheel the first time)."""
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps([_requirements(app_wheel), sys.version_info[:2]]).encode()).hexdigest()[:16]
    remembered = cache / f"closure-{key}.json"
    if remembered.is_file():
        names = json.loads(remembered.read_text("utf-8"))
        if all((cache / n).is_file() for n in names):
            return [cache / n for n in names]
    _pip(["wheel", "-q", "--wheel-dir", str(cache), "--find-links", str(cache), str(app_wheel)],
         "下载依赖 pip wheel ")
    for stale in cache.glob(f"{APP_DIST}-*.whl"):  # pip wheel copies the app in too; it is built per release
        stale.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _pip(["install", "-q", "--dry-run", "--ignore-installed", "--no-index", "--find-links", str(cache),
              "--report", str(report), str(app_wheel)], "解析依赖 dependency resolution ")
        urls = [item["download_info"]["url"] for item in json.loads(report.read_text("utf-8"))["install"]]
    names = sorted(Path(unquote(urlparse(u).path)).name for u in urls)
    names = [n for n in names if not n.startswith(APP_DIST + "-")]
    atomic_write(remembered, json.dumps(names).encode())
    return [cache / n for n in names]


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system
        shutil.copy2(src, dest)


def build_release(version: str, out: str | Path, *, source: str | Path | None = None,
                  cache: str | Path | None = None, migrations: Sequence[str] = (),
                  min_from: str = DEFAULT_MIN_FROM, patch: Callable[[Path], None] | None = None) -> Manifest:
    """Build the release of ``version`` into the empty or new folder ``out``; return its manifest.

    ``migrations`` are the names (``<set>/<step>``) of every database migration the
    release carries; ``patch`` may change the temporary source copy before the build."""
    parse_version(version)
    parse_version(min_from)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BuildError(f"输出目录 {out} 不是空的", f"output folder {out} is not empty")
    source = Path(source) if source else default_source()
    cache = Path(cache) if cache else default_cache()
    wheels = out / WHEELS_DIR
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="school-edge-build-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        copy_source(source, src, version)
        if patch is not None:
            patch(src)
        _pip(["wheel", "-q", "--no-deps", "--no-build-isolation", "--no-cache-dir", "--wheel-dir", str(wheels),
              str(src)], "构建应用 building the application wheel ")
    app_wheels = list(wheels.glob(f"{APP_DIST}-*.whl"))
    if len(app_wheels) != 1:
        raise BuildError("没有构建出应用的 wheel", "the application wheel was not built")
    for dep in _closure(app_wheels[0], cache):
        _link_or_copy(dep, wheels / dep.name)
    built_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = build_manifest(out, version, min_from, list(migrations), built_at,
                              f"{sys.version_info[0]}.{sys.version_info[1]}")
    atomic_write(out / MANIFEST_NAME, manifest_bytes(manifest))
    return manifest
