"""The central school's publisher: Debian's ffmpeg makes a bitrate ladder for a poor link,
and every finished segment goes to the hub relay with a manifest signed by the publisher key.

Ladder (``LADDER``, scaled by ``--size``): two H.264 + AAC rungs for about 500 and 250 kbit/s
and an audio-only rung, in MPEG-TS segments of ``segment_s`` seconds. Keyframes are forced on
segment boundaries, so segment ``i`` of every rung covers the same seconds and an appliance can
switch rungs between any two segments. A segment is sent once every rung has finished it.

A failed post (the central school's own link) keeps the files for the next round; the
sequence number moves only when the hub accepted an update, so the hub always sees 1, 2, 3...
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
from securesystemslib.signer import Signer
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from hub_sync.core.errors import LinkError, ProcessError
from hub_sync.core.tls import client_tls
from hub_sync.formats.live_manifest import LiveFile, Manifest, Rung, seal_manifest, segment_path

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the publisher looks for finished segments
POST_TIMEOUT_S = 20.0
FINAL_POST_DEADLINE_S = 120.0  # the last update (lesson ended) is retried this long
AUDIO_KBPS = 48
SLIDE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class LadderRung:
    """A video rung (``kbps`` of H.264, ``height`` lines) or the audio rung (``height`` 0)."""

    id: str
    kbps: int
    height: int


LADDER = (LadderRung("v500", 450, 360), LadderRung("v250", 200, 240), LadderRung("a48", 0, 0))


def ladder(height: int = 360, kbps: tuple[int, int] = (450, 200)) -> tuple[LadderRung, ...]:
    """The ladder for a top rung of ``height`` lines: the second rung two thirds as tall."""
    second = max(72, (height * 2 // 3) // 2 * 2)
    return (LadderRung("v500", kbps[0], height), LadderRung("v250", kbps[1], second), LadderRung("a48", 0, 0))


def rungs_of(rungs: tuple[LadderRung, ...]) -> list[Rung]:
    """The rungs as the manifest describes them to players."""
    out = []
    for r in rungs:
        if r.height:
            width = (r.height * 16 // 9) // 2 * 2
            out.append(Rung(r.id, (r.kbps + AUDIO_KBPS) * 1100, "avc1.42c01e,mp4a.40.2", f"{width}x{r.height}"))
        else:
            out.append(Rung(r.id, AUDIO_KBPS * 1100, "mp4a.40.2"))
    return out


def ffmpeg_argv(source: str, out_dir: Path, rungs: tuple[LadderRung, ...], segment_s: float,
                seconds: float | None, fps: int = 25) -> list[str]:
    """The ffmpeg command making the ladder from ``source`` (testsrc, a file, or v4l2[:device])."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ProcessError("找不到 ffmpeg，请运行 scripts/install.sh", "ffmpeg not found; run scripts/install.sh")
    top = max(r.height for r in rungs)
    if source == "testsrc":
        inputs = ["-re", "-f", "lavfi", "-i", f"testsrc2=size={top * 16 // 9 // 2 * 2}x{top}:rate={fps}",
                  "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        audio_input = "1:a"
    elif source.startswith("v4l2"):
        device = source.partition(":")[2] or "/dev/video0"
        inputs = ["-f", "v4l2", "-i", device, "-f", "alsa", "-i", "default"]
        audio_input = "1:a"
    else:
        if not Path(source).is_file():
            raise ProcessError(f"找不到视频源 {source}", f"no such source {source} (testsrc, a file or v4l2[:device])")
        inputs = ["-re", "-i", source]
        audio_input = "0:a"
    video = [r for r in rungs if r.height]
    split = f"[0:v]fps={fps},split={len(video)}" + "".join(f"[s{i}]" for i in range(len(video))) + ";"
    split += ";".join(f"[s{i}]scale=-2:{r.height}[v{i}]" for i, r in enumerate(video))
    argv = [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", *inputs, "-filter_complex", split]
    stream_map = []
    for i in range(len(video)):
        argv += ["-map", f"[v{i}]"]
    for _ in rungs:
        argv += ["-map", audio_input]
    gop = int(round(segment_s * fps))
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline",
             "-level", "3.0", "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
             "-force_key_frames", f"expr:gte(t,n_forced*{segment_s})"]
    for i, r in enumerate(video):
        argv += [f"-b:v:{i}", f"{r.kbps}k", f"-maxrate:v:{i}", f"{r.kbps}k", f"-bufsize:v:{i}", f"{r.kbps}k"]
    argv += ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "1", "-ar", "48000"]
    for i, r in enumerate(rungs):
        stream_map.append((f"v:{i}," if r.height else "") + f"a:{i},name:{r.id}")
    if seconds:
        argv += ["-t", f"{seconds:g}"]
    argv += ["-f", "hls", "-hls_time", f"{segment_s:g}", "-hls_list_size", "0", "-hls_playlist_type", "event",
             "-hls_segment_type", "mpegts", "-hls_flags", "independent_segments+temp_file",
             "-var_stream_map", " ".join(stream_map),
             "-hls_segment_filename", str(out_dir / "%v" / "%05d.ts"), str(out_dir / "%v" / "index.m3u8")]
    return argv


def finished_segments(playlist: Path) -> dict[int, float]:
    """Segment index -> duration of the segments ffmpeg lists (so finished) in ``playlist``."""
    try:
        lines = playlist.read_text("utf-8").splitlines()
    except OSError:
        return {}
    out, duration = {}, None
    for line in lines:
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            out[int(line.rsplit("/", 1)[-1].split(".")[0])] = duration
            duration = None
    return out


class Publisher:
    """Sends one lesson's segments and slides to the hub as signed updates."""

    def __init__(self, hub_url: str, lesson: str, signer: Signer, out_dir: Path,
                 rungs: tuple[LadderRung, ...] = LADDER, segment_s: float = 2.0, slides_dir: Path | None = None) -> None:
        self.hub_url, self.lesson, self.signer = hub_url.rstrip("/"), lesson, signer
        self.out_dir, self.rungs, self.segment_s, self.slides_dir = out_dir, rungs, segment_s, slides_dir
        self.seq = 0
        self.sent_index = -1  # segments up to this index have been accepted
        self.sent_slides: set[str] = set()
        self.client = httpx.Client(timeout=POST_TIMEOUT_S, trust_env=False, verify=client_tls())

    def step(self, final: bool = False) -> bool:
        """Send what is new; True if the hub accepted an update (or there was nothing to send)."""
        ready = [finished_segments(self.out_dir / r.id / "index.m3u8") for r in self.rungs]
        # a segment goes once every rung has it (at the end too: the audio rung's last few
        # milliseconds, which no video rung has, are dropped), in order, never one after a hole
        indices = set(ready[0]).intersection(*ready[1:])
        new = sorted(i for i in indices if i > self.sent_index)
        new = [i for n, i in enumerate(new) if i == self.sent_index + 1 + n]
        files, bodies = [], {}
        for i in new:
            for r, listed in zip(self.rungs, ready):
                if i in listed:
                    path = segment_path(r.id, i)
                    data = (self.out_dir / path).read_bytes()
                    files.append(LiveFile(path, hashlib.sha256(data).hexdigest(), len(data), r.id, i, listed[i]))
                    bodies[path] = data
        for slide in self._new_slides():
            data = slide.read_bytes()
            path = f"slides/{slide.name}"
            files.append(LiveFile(path, hashlib.sha256(data).hexdigest(), len(data), "slides", max(0, self.sent_index + 1)))
            bodies[path] = data
        if not files and not final:
            return True
        manifest = Manifest(self.lesson, self.seq + 1, self.segment_s, rungs_of(self.rungs), files, ended=final)
        signed = seal_manifest(manifest, self.signer)
        parts = [("manifest", ("manifest.json", signed, "application/json"))]
        parts += [(path, (path.rsplit("/", 1)[-1], data, "application/octet-stream")) for path, data in bodies.items()]
        try:
            answer = self.client.post(f"{self.hub_url}/api/v1/hub/live/{self.lesson}/update", files=parts)
        except httpx.TransportError as exc:
            log.warning("hub unreachable, keeping %d files for the next round: %s", len(files), exc)
            if final:
                raise LinkError("无法连接县平台", f"cannot reach the hub: {exc}") from exc
            return False
        if answer.status_code >= 500:
            if final:
                raise LinkError("县平台暂时不可用", f"the hub answered {answer.status_code}")
            return False
        if answer.status_code != 200:
            error = answer.json().get("error", {}) if answer.headers.get("content-type", "").startswith("application/json") else {}
            raise LinkError(f"县平台拒收：{error.get('message', answer.status_code)}",
                            f"the hub refused the update: {error.get('message_en', answer.text[:200])}")
        self.seq += 1
        if new:
            self.sent_index = max(new)
        self.sent_slides.update(f.path for f in files if f.rung == "slides")
        return True

    def _new_slides(self) -> list[Path]:
        if self.slides_dir is None or not self.slides_dir.is_dir():
            return []
        return sorted(p for p in self.slides_dir.iterdir()
                      if p.suffix.lower() in SLIDE_SUFFIXES and p.is_file() and f"slides/{p.name}" not in self.sent_slides)

    def finish(self) -> None:
        """Send the last update (lesson ended), retrying while the hub cannot be reached."""
        for attempt in Retrying(stop=stop_after_delay(FINAL_POST_DEADLINE_S), wait=wait_fixed(1.0), reraise=True,
                                retry=retry_if_exception_type(LinkError)):
            with attempt:
                self.step(final=True)

    def close(self) -> None:
        self.client.close()


def publish(hub_url: str, lesson: str, signer: Signer, work_dir: Path, source: str = "testsrc",
            seconds: float | None = None, segment_s: float = 2.0, slides_dir: Path | None = None,
            rungs: tuple[LadderRung, ...] = LADDER, stop: threading.Event | None = None) -> Publisher:
    """Run ffmpeg on ``source`` and send the lesson to the hub until ffmpeg ends (``seconds``)
    or ``stop`` is set; the last update says the lesson ended. Returns the publisher."""
    stop = stop or threading.Event()
    for r in rungs:
        (work_dir / r.id).mkdir(parents=True, exist_ok=True)
    publisher = Publisher(hub_url, lesson, signer, work_dir, rungs, segment_s, slides_dir)
    log_path = work_dir / "ffmpeg.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(ffmpeg_argv(source, work_dir, rungs, segment_s, seconds), stdout=log_file,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while proc.poll() is None and not stop.wait(POLL_S):
            publisher.step()
        if proc.poll() is None:  # asked to stop: ffmpeg closes the last segment on SIGINT
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        if proc.returncode not in (0, 255, -signal.SIGINT):
            raise ProcessError("ffmpeg 出错退出", f"ffmpeg exited with {proc.returncode}: "
                               f"{log_path.read_text('utf-8', 'replace')[-500:]}")
        publisher.finish()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        publisher.close()
    return publisher
