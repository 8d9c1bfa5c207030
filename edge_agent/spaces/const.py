"""Constants of the learning spaces, with units in their names. Tests patch them short."""

# Key derivation (argon2id). Staff passwords get the OWASP-style "moderate" cost;
# student PINs/picture passwords a cheaper one so that a class of 40 logging in
# at the start of a lesson fits in a second on a 2-core board. A 4-digit PIN has
# only 10,000 values, so no KDF cost protects it against someone holding the
# database: what protects it is the lockout below (online guessing) and the
# database never leaving the device unencrypted.
STAFF_KDF_MEMORY_KIB = 64 * 1024
STAFF_KDF_TIME_COST = 2
STUDENT_KDF_MEMORY_KIB = 19 * 1024
STUDENT_KDF_TIME_COST = 2

# Lockout: per account, and per client address (a tablet trying many accounts).
ACCOUNT_MAX_FAILURES = 5
ACCOUNT_LOCK_S = 5 * 60
CLIENT_MAX_FAILURES = 30
CLIENT_WINDOW_S = 5 * 60
CLIENT_LOCK_S = 5 * 60

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
