"""Constants with their units in the name. Tests patch them short."""

API_VERSION = "1"
SERVICE_TYPE = "_school-edge._tcp.local."

MIB = 1024 * 1024

# The device's own Ed25519 key, in the data folder (private: mode 0600, never leaves the device)
DEVICE_KEY_FILE = "keys/device.pem"
# The hub's online public key as provisioning pinned it (edge_agent.sync.hub_key reads it)
HUB_ONLINE_KEY_FILE = "trust/hub_online_key.json"
# The latest time a verified hub message proved (hub_sync.core.trusted_clock; Appliance.clock)
TRUSTED_CLOCK_FILE = "sync/clock.json"

# HTTP caching: content-addressed URLs never change, so clients may keep them a year.
IMMUTABLE_MAX_AGE_S = 365 * 24 * 3600
CATALOGUE_MAX_AGE_S = 0

# Blob writing
COPY_CHUNK_BYTES = 1 * MIB

# SQLite
SQLITE_BUSY_TIMEOUT_MS = 10_000

# Serving
GRACEFUL_SHUTDOWN_S = 5
SERVER_START_TIMEOUT_S = 15.0
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
