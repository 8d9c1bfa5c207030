"""USB provisioning: bundles made at the county, verified and applied on the device, enrollment requests back to the hub."""
