"""edge_agent.demo.run"""
