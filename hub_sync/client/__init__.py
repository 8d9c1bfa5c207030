"""hub_sync.client"""
