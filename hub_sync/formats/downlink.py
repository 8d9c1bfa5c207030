"""The downlink's envelope types: the county's messages down, and a device asking for them.

The hub answers with a ``downlink`` envelope signed by its online key (payload:
``hub_sync.hub.downlink.Downlink.answer``; the appliance checks it in
``edge_agent.sync.downlink``); a device asks with a ``downlink-poll`` envelope
signed by its own key, payload ``{"device": ID, "after": N}``.
"""

from __future__ import annotations

from hub_sync.formats.envelope import content_type

DOWNLINK_KIND = "downlink"
POLL_KIND = "downlink-poll"
DOWNLINK_CONTENT_TYPE = content_type(DOWNLINK_KIND)
POLL_CONTENT_TYPE = content_type(POLL_KIND)
