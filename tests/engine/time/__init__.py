"""Time ranges and zones."""
