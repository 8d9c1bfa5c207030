"""The review queue (谁接入谁负责): placeholder until the queue pages land."""

from __future__ import annotations

from hub_sync.hub.console.auth import console_blueprint

bp = console_blueprint("console_review")
