"""Constants of the learning spaces, with units in their names. Tests patch them short."""

# Staff (and parents') passwords: argon2id with the OWASP-style "moderate" cost.
STAFF_KDF_MEMORY_KIB = 64 * 1024
STAFF_KDF_TIME_COST = 2
# Student PINs and picture passwords are a keyed hash (HMAC-SHA256 with the
# device's login key, see login_key.py): a 4-digit PIN has only 10,000 values,
# so no KDF cost protects it against someone holding the database and the key;
# what protects it is the throttle below. These argon2id costs are those of the
# PIN hashes made before; such a hash still verifies and is replaced by a keyed
# hash at that student's next successful login.
STUDENT_KDF_MEMORY_KIB = 19 * 1024
STUDENT_KDF_TIME_COST = 2
PIN_SALT_BYTES = 16

# At most this many argon2 computations at once per process (each holds 64 MiB);
# a login waits this long for one, then gets 503 with Retry-After.
ARGON2_CONCURRENT = 2
ARGON2_WAIT_S = 1.5
ARGON2_BUSY_RETRY_S = 2
# Setting or changing a password (an administrator's act) may wait longer.
ARGON2_HASH_WAIT_S = 30.0

# Throttle (throttle.py): per account and per client address. Each attempt is
# counted before its secret is checked; once the budget of a window is spent,
# the key is locked, for longer each time it is locked again.
ACCOUNT_MAX_FAILURES = 5
ACCOUNT_WINDOW_S = 15 * 60
ACCOUNT_LOCK_S = 5 * 60
CLIENT_MAX_FAILURES = 30
CLIENT_WINDOW_S = 5 * 60
CLIENT_LOCK_S = 5 * 60
LOCK_GROWTH = 2                 # each repeated lock lasts this many times the last one
LOCK_MAX_S = 4 * 3600           # ... but never longer than this
LOCK_FORGET_S = 24 * 3600       # a key with no lock for this long starts again at the first lock time

# Sessions: students for one school day; staff idle 12 h, at most 7 days.
STUDENT_SESSION_S = 8 * 3600
STAFF_IDLE_S = 12 * 3600
STAFF_ABSOLUTE_S = 7 * 24 * 3600
# last_seen is written at most this often (reads stay reads under load)
SESSION_TOUCH_S = 60

SESSION_COOKIE = "se_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_HEADER = "X-Requested-With"

PIN_DIGITS = 4
PICTURES = ("apple", "cat", "sun", "fish", "tree", "star", "car", "bird", "flower")
PICTURE_COUNT = 3
MIN_PASSWORD_CHARS = 8

# Student submissions
SUBMISSION_TEXT_MAX_CHARS = 20_000
SUBMISSION_MAX_FILES = 5
MESSAGE_MAX_CHARS = 5_000
