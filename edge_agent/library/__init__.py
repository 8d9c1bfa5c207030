"""edge_agent.library"""
