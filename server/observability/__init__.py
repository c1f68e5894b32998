"""What the service tells its operators: logging (configured here and nowhere else),
Prometheus metrics, and the per-request log line with its statistics.

Other modules only call ``logging.getLogger(__name__)``; ``configure_logging`` is called once
by the command line.
"""
