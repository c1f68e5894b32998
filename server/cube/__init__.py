"""Cube's REST API spoken over our model: Cube queries translated to ours, and our answers
shaped the way Cube's API gateway shapes its own (pure: no I/O; ``server.api.cube`` serves it).
"""
