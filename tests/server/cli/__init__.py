"""The command line, run as separate processes as operators run it."""
