"""Access control: API keys and signed JWTs, scopes per route, CORS and cross-site request
checks, and each caller's row-level security (``engine.query.security``).

``settings`` reads ``[auth]`` and ``[cors]`` from ``semantic.toml`` and the environment,
``keys`` issues and checks API keys, ``tokens`` checks JWTs, ``middleware`` is the one ASGI
middleware that applies all of it, ``principal`` holds the caller for the request path.
"""
