"""The MCP server: the model's members, queries and explanations as tools for LLM agents.

``tools`` defines the tools once, over a ``backends.Backend``: the running app's state (the
Streamable HTTP mount at ``/mcp``, ``http``) or a running server's HTTP API (``semantic mcp``
over stdio, ``stdio``), so both transports answer with the same validation, limits and access
control as ``/v1/query``.
"""
