"""What kind of file an upload really is, from its bytes (``filetype``), never
from its name; and the allow-list of what students and teachers may upload."""

from __future__ import annotations

import codecs

import filetype

from edge_agent.const import MIB
from edge_agent.spaces.errors import TooLargeError, UnsupportedTypeError

# sniffed MIME -> catalogue kind
ALLOWED = {
    "image/jpeg": "image", "image/png": "image", "image/gif": "image", "image/webp": "image", "image/heic": "image",
    "application/pdf": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "audio/mpeg": "audio", "audio/x-wav": "audio", "audio/wav": "audio", "audio/mp4": "audio", "audio/x-m4a": "audio",
    "video/mp4": "video", "video/webm": "video",
}
TEXT_MIME = "text/plain; charset=utf-8"


def sniff(data: bytes, allow_text: bool = True, complete: bool = True) -> tuple[str, str]:
    """Return (mime, kind) of ``data``; UnsupportedTypeError if not on the allow-list.

    ``complete=False``: ``data`` is only the start of the file (a spooled upload's
    head), so text may end in the middle of a character."""
    kind = filetype.guess(data)
    if kind is not None and kind.mime in ALLOWED:
        return kind.mime, ALLOWED[kind.mime]
    if kind is None and allow_text and b"\x00" not in data:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
            return TEXT_MIME, "document"
        except UnicodeDecodeError:
            pass
    found = kind.mime if kind else "unknown"
    raise UnsupportedTypeError(
        f"不支持这种文件（{found}）。可以上传图片、PDF、Word/PPT/Excel、音频、视频或文本",
        f"file type not allowed ({found}); upload a picture, PDF, Office document, audio, video or text",
        mime=found)


def check_size(data: bytes | int, max_bytes: int) -> None:
    """Refuse a file (its bytes, or its size) that is empty or over ``max_bytes``."""
    size = data if isinstance(data, int) else len(data)
    if size > max_bytes:
        raise TooLargeError(f"文件太大（超过 {max_bytes // MIB} MB），请压缩后再上传",
                            f"file too large (over {max_bytes // MIB} MB); make it smaller and try again")
    if not size:
        raise UnsupportedTypeError("文件是空的", "the file is empty")
