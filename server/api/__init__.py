"""The HTTP surfaces, one module each; ``server.app.create_app`` assembles them.

Each module offers ``route_handlers(state) -> list`` of Litestar handlers.
"""
