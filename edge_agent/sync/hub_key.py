"""The county hub's online public key, as this device trusts it.

It verifies the hub's acknowledgements and downlink messages, and the device seals
boxes for the hub (a transferred learner's space) to it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tuf.api.metadata import Metadata, Root

from hub_sync.core.errors import SignatureError
from hub_sync.core.keys import public_key_from_dict

from edge_agent.const import HUB_ONLINE_KEY_FILE, SYNC_DIR

log = logging.getLogger(__name__)

TRUSTED_ROOT_FILE = Path(SYNC_DIR) / "tuf" / "root.json"  # the newest root ngclient verified


def load_hub_key(data_dir: Path):
    """The hub's online public key (it signs acknowledgements and messages; boxes for the hub are sealed to it).

    The key the device's trusted TUF root lists for the timestamp role: ngclient
    verified that root through the chain from the one pinned at provisioning, so
    when the county rotates its online key the device follows with its next
    metadata refresh. Before the first refresh, the key pinned at provisioning."""
    trusted = Path(data_dir) / TRUSTED_ROOT_FILE
    if trusted.is_file():
        try:
            root: Root = Metadata[Root].from_bytes(trusted.read_bytes()).signed
            return root.keys[root.roles["timestamp"].keyids[0]]
        except (ValueError, KeyError, IndexError) as exc:
            log.warning("trusted root %s unreadable (%s); using the key pinned at provisioning", trusted, exc)
    path = Path(data_dir) / HUB_ONLINE_KEY_FILE
    try:
        return public_key_from_dict(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError) as exc:
        raise SignatureError(f"缺少县平台公钥 {path}，请先完成设备开通（provision apply）",
                             f"hub key {path} missing or unreadable; provision the appliance first") from exc
