"""hub_sync.formats"""
