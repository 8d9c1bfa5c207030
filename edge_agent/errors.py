"""Expected failures of the appliance, with messages for people.

Every message is Chinese first with an English translation, and says what to do
next. The CLI prints ``str(error)`` as one line; the HTTP layer turns an error into
``{"error": {"code", "message", "message_en"}}`` with ``error.http_status``.

    EdgeError
     ├── ConfigError          unknown or invalid setting (startup)
     ├── DataDirError         data folder missing or not writable
     ├── StorageError
     │    ├── DiskFullError   an import would eat into the free-space reserve
     │    └── CorruptBlobError a stored file no longer matches its hash
     ├── NotFoundError        unknown resource, file or path (HTTP 404)
     ├── BadRequestError      malformed input (HTTP 400)
     └── PortInUseError       the port to serve on is taken
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every expected failure of the appliance."""

    code = "edge_error"
    http_status = 500

    def __init__(self, zh: str, en: str | None = None, **details: object) -> None:
        self.zh = zh
        self.en = en or zh
        self.details = details
        super().__init__(f"{zh} ({self.en})" if en else zh)

    def to_json(self) -> dict:
        """The JSON error body used by the HTTP API."""
        body = {"code": self.code, "message": self.zh, "message_en": self.en}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class ConfigError(EdgeError):
    code = "config"


class DataDirError(EdgeError):
    code = "data_dir"


class StorageError(EdgeError):
    code = "storage"


class DiskFullError(StorageError):
    code = "disk_full"
    http_status = 507


class CorruptBlobError(StorageError):
    code = "corrupt_blob"
    http_status = 500


class NotFoundError(EdgeError):
    code = "not_found"
    http_status = 404


class BadRequestError(EdgeError):
    code = "bad_request"
    http_status = 400


class PortInUseError(EdgeError):
    code = "port_in_use"
