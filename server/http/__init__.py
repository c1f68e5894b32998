"""HTTP plumbing shared by the route modules: JSON responses and errors, request ids, body
deadlines, serialization, answer formats, and the uvicorn protocol."""
