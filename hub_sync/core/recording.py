"""A recorded lesson: the segments of a live lesson joined into one MP4 by Debian's ffmpeg.

No re-encoding (``-c copy``): joining a 45-minute lesson takes seconds on an appliance. The
segments are MPEG-TS, so they join by concatenation (ffmpeg's ``concat:`` protocol) and the
result is remuxed into an MP4 that browsers play and seek in (``+faststart``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from hub_sync.core.errors import ProcessError

JOIN_TIMEOUT_S = 600.0


def join_segments(segments: list[Path], out: Path) -> Path:
    """Join ``segments`` (MPEG-TS, in order) into the MP4 ``out``; return ``out``."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ProcessError("找不到 ffmpeg，请运行 scripts/install.sh", "ffmpeg not found; run scripts/install.sh")
    if not segments:
        raise ProcessError("没有可合成录播的片段", "no segments to join into a recording")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part.mp4")
    listing = out.with_name(out.name + ".list.txt")
    # the concat demuxer with a file list: no command-line length limit for long lessons
    listing.write_text("".join(f"file '{p.resolve()}'\n" for p in segments), "utf-8")
    try:
        done = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                               "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(partial)],
                              capture_output=True, text=True, timeout=JOIN_TIMEOUT_S)
        if done.returncode != 0:
            raise ProcessError("录播合成失败", f"joining the recording failed: {done.stderr.strip()[-500:]}")
        partial.replace(out)
    finally:
        listing.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return out
