"""Hash bins: how a channel's targets are spread over TUF's succinct hash-bin
delegations (TAP 15; python-tuf's ``SuccinctRoles``), shared by the hub that
signs them and the appliance that reads them.

A channel role whose channel holds at most ``BIN_TARGETS`` files lists them
itself. A bigger channel role lists no file: it delegates to ``2**bits`` bins
named ``<channel>.bin-<hex>`` (a channel id has no ``.``, so a bin name never
meets a channel's), and a file ``<channel>/<resource>/<sha256>`` lives in the
bin chosen by the first ``bits`` bits of sha256 of its path. Adding a resource
re-signs one bin, the channel role (its version is the channel's version), the
snapshot and the timestamp; nothing else.

The bin count follows the channel's size (about ``BIN_TARGETS`` files a bin) up
to ``MAX_BIN_BITS``, and never goes down: python-tuf's client refuses a snapshot
that drops a role it listed before, so a bin the channel outgrew stays listed,
emptied, in the snapshot.
"""

from __future__ import annotations

import math

from tuf.api.metadata import SuccinctRoles, TargetFile

BIN_TARGETS = 128   # files a bin holds, about: one change re-sends one bin (~10 KB gzip'ed)
MAX_BIN_BITS = 8    # at most 256 bins a channel: the snapshot stays in the low hundreds
BIN_INFIX = ".bin"  # bin role names: <channel>.bin-<hex>


def bin_bits(n_targets: int, published_bits: int = 0) -> int:
    """How many hash bits a channel of ``n_targets`` files uses (0 = no bins):
    enough for ``BIN_TARGETS`` files a bin, never fewer than already published."""
    need = 0 if n_targets <= BIN_TARGETS else min(MAX_BIN_BITS, math.ceil(math.log2(n_targets / BIN_TARGETS)))
    return max(need, published_bits)


def succinct_roles(channel: str, bits: int, keyid: str) -> SuccinctRoles:
    """The succinct delegation of ``channel``'s role to its ``2**bits`` bins."""
    return SuccinctRoles(keyids=[keyid], threshold=1, bit_length=bits, name_prefix=f"{channel}{BIN_INFIX}")


def is_bin_role(role: str) -> bool:
    """True for a bin role name (channel ids cannot contain ``.``)."""
    return BIN_INFIX + "-" in role


def split_into_bins(targets: dict[str, TargetFile], succinct: SuccinctRoles) -> dict[str, dict[str, TargetFile]]:
    """Every bin of ``succinct`` (empty ones too) with the targets that hash into it."""
    bins: dict[str, dict[str, TargetFile]] = {name: {} for name in succinct.get_roles()}
    for path, target in targets.items():
        bins[succinct.get_role_for_target(path)][path] = target
    return bins
