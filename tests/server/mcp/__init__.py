"""The MCP server through the official MCP client."""
