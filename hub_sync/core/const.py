"""Constants the appliance and the hub share, with their units in the names.

Tests patch them short. Appliance-only constants live in ``edge_agent/const.py``
(which takes the shared ones from here), the hub's beside the module that uses them.
"""

KIB = 1024
MIB = 1024 * KIB

# Copying into the content store: big enough for few system calls, small enough for a cheap board
COPY_CHUNK_BYTES = 1 * MIB

# SQLite: how long a writer waits for another's lock before "database is locked"
SQLITE_BUSY_TIMEOUT_MS = 10_000

# Serving: how long gunicorn lets requests in flight finish on a stop
GRACEFUL_SHUTDOWN_S = 5
