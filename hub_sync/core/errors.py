"""Expected failures of everything that crosses the link, and the shared root.

``Problem`` is the root of every package's base exception (``EdgeError``,
``SyncError``, ``ProvisionError``, ``FirmwareError``): a message for people,
Chinese first with an English translation, saying what to do next. The CLI
prints ``str(problem)`` as one line; HTTP turns it into
``{"error": {"code", "message", "message_en"}}`` with ``problem.http_status``.

    Problem
     ├── SyncError
     │    ├── StoreError
     │    │    ├── DataDirError      data folder missing or not writable
     │    │    ├── DiskFullError     a write would eat into the free-space reserve
     │    │    ├── CorruptBlobError  bytes do not match their hash or declared size
     │    │    ├── BlobNotFoundError no such stored file
     │    │    └── DatabaseUnavailable the hub's database is down, restarting or busy (503)
     │    ├── SignatureError         bad, missing or unknown-key signature
     │    ├── FormatError            malformed artefact (envelope, batch, manifest)
     │    ├── ReplayError            an artefact older than one already seen
     │    ├── DeviceError            unknown or revoked device
     │    ├── LinkError              the hub cannot be reached or answered garbage
     │    └── PortInUseError         the port to serve on is taken (hub or appliance)
     └── ProcessError                a helper process (a server) exited early or never answered
"""

from __future__ import annotations


class Problem(Exception):
    """Root of every expected failure in school-edge."""

    code = "error"
    http_status = 500

    def __init__(self, zh: str, en: str | None = None, **details: object) -> None:
        self.zh = zh
        self.en = en or zh
        self.details = details
        super().__init__(f"{zh} ({self.en})" if en else zh)

    def to_json(self) -> dict:
        """The JSON error body used by every HTTP API."""
        body: dict = {"code": self.code, "message": self.zh, "message_en": self.en}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class SyncError(Problem):
    """Base of hub_sync's expected failures."""

    code = "sync_error"


class StoreError(SyncError):
    code = "storage"


class DataDirError(StoreError):
    code = "data_dir"


class DiskFullError(StoreError):
    code = "disk_full"
    http_status = 507


class CorruptBlobError(StoreError):
    code = "corrupt_blob"


class BlobNotFoundError(StoreError):
    code = "not_found"
    http_status = 404


class SignatureError(SyncError):
    code = "bad_signature"
    http_status = 403


class FormatError(SyncError):
    code = "bad_format"
    http_status = 400


class ReplayError(SyncError):
    code = "replay"
    http_status = 409


class DeviceError(SyncError):
    code = "device"
    http_status = 403


class LinkError(SyncError):
    code = "link"
    http_status = 502


class PortInUseError(SyncError):
    code = "port_in_use"


class DatabaseUnavailable(StoreError):
    """The hub's database cannot be reached or is busy; try again soon (503, Retry-After)."""

    code = "database_unavailable"
    http_status = 503
    retry_after_s = 10


class ProcessError(Problem):
    """A process started by ``hub_sync.core.processes`` exited early or never answered;
    ``details["output"]`` holds the end of what it printed."""

    code = "process"
