"""Live lessons (专递课堂): the central school's publisher, and the teaching point's puller
that fetches one verified copy over the WAN and serves it on the LAN (docs/live-lessons.md)."""
