"""The appliance's own constants, with their units in the name. Tests patch them short.

Constants the hub shares (sizes, SQLite and server timeouts) live in ``hub_sync.core.const``;
``MIB`` is taken from there for the appliance's modules.
"""

from hub_sync.core.const import MIB as MIB

API_VERSION = "1"
SERVICE_TYPE = "_school-edge._tcp.local."

# The device's own Ed25519 key, in the data folder (private: mode 0600, never leaves the device)
DEVICE_KEY_FILE = "keys/device.pem"
# The hub's online public key as provisioning pinned it (edge_agent.sync.hub_key reads it)
HUB_ONLINE_KEY_FILE = "trust/hub_online_key.json"
# Sync state in the data folder: TUF metadata, downloads, and the two files below
SYNC_DIR = "sync"
# The TUF root pinned at provisioning (the first link of the root chain)
PINNED_ROOT_FILE = f"{SYNC_DIR}/pinned-root.json"
# The latest time a verified hub message proved (hub_sync.core.trusted_clock; Appliance.clock)
TRUSTED_CLOCK_FILE = f"{SYNC_DIR}/clock.json"

# HTTP caching: content-addressed URLs never change, so clients may keep them a year.
IMMUTABLE_MAX_AGE_S = 365 * 24 * 3600
CATALOGUE_MAX_AGE_S = 0

# LAN announcement
ZEROCONF_BROWSE_S = 2.0
# How often the announcer re-reads the interfaces' addresses (a DHCP renewal may change them)
ANNOUNCE_ADDRESS_POLL_S = 3.0

# Search results
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Search input: a teacher types a few words; anything longer is refused with a 400
# (each term is a clause of the query, so hundreds of terms would be a huge statement)
SEARCH_MAX_CHARS = 200
SEARCH_MAX_TERMS = 12
SEARCH_FILTER_MAX_CHARS = 100

# Catalogue answers kept in memory per worker (each a page of JSON, ~30 KiB)
RESPONSE_CACHE_ENTRIES = 128
