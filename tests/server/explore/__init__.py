"""The explore page in a real headless browser."""
