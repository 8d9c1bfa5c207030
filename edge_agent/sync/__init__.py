"""edge_agent.sync"""
