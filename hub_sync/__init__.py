"""Everything that crosses the link: storage primitives shared by hub and edge,
signed formats, transports, the edge-side sync client and the county hub."""
