"""A real, small sample video (WebM: VP8 + Vorbis, which every Chromium plays) made
with ``ffmpeg`` at demo or test time, never committed. Without ffmpeg the demo
simply has no video.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from edge_agent.appliance import Appliance
from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.errors import NotFoundError

VIDEO_ID = "sample-video-00001"
VIDEO_SECONDS = 12
FFMPEG_TIMEOUT_S = 60


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def make_webm(dest: Path, seconds: int = VIDEO_SECONDS) -> Path:
    """Write a test-pattern video with a tone to ``dest``; a key frame every second so seeking is quick."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=10:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libvpx", "-b:v", "120k", "-g", "10", "-c:a", "libvorbis", "-b:a", "48k", "-shortest", str(dest)],
        check=True, timeout=FFMPEG_TIMEOUT_S, stdin=subprocess.DEVNULL, capture_output=True,
    )
    return dest


def add_sample_video(appliance: Appliance, seconds: int = VIDEO_SECONDS) -> Resource | None:
    """Catalogue the sample video (once); ``None`` when ffmpeg is not installed.
    Tests that only need a real video ask for a shorter one (ffmpeg's time grows with it)."""
    if not ffmpeg_available():
        return None
    try:
        return appliance.catalogue.get(VIDEO_ID)
    except NotFoundError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        path = make_webm(Path(tmp) / "video.webm", seconds)
        blob = appliance.store.put_file(path)
    resource = Resource(id=VIDEO_ID, title="种子发芽 微课视频", kind="video", stage="小学", grade="三年级", subject="科学",
                        edition="教科版", chapter="第一单元 植物", description="教科版科学三年级：第一单元 植物",
                        duration_s=seconds, source="county", licence="CC BY-NC 4.0",
                        files=[ResourceFile("video.webm", blob.sha256, blob.size, "video/webm")])
    appliance.catalogue.upsert(resource)
    return resource
