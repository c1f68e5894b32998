"""The explore page: a browser view over the query API, served by the same server.

``routes`` serves it; ``static/`` holds its assets (plain HTML, CSS and JavaScript, shipped as
package data: no build step, no CDN, works offline).
"""
