"""hub_sync.core"""
