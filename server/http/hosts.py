"""Host names and origins: which ``Host`` a server answers and which web ``Origin`` is its own.

A page on any web site can make a visitor's browser call a server on the loopback by pointing
its own host name at 127.0.0.1 (DNS rebinding): the browser then sends ``Host:
evil.example:3000`` and treats the answer as the page's own. A server without access control
answers only host names that cannot be rebound this way (loopback names and addresses) and the
ones its operator configured.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit


def host_name(host: str) -> str:
    """The name in a ``Host`` header, lowercase and without its port.

    >>> host_name("LocalHost:3000"), host_name("[::1]:3000"), host_name("127.0.0.1")
    ('localhost', '::1', '127.0.0.1')
    """
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(name: str) -> bool:
    """A name only this machine answers to: ``localhost`` (and ``*.localhost``, which
    resolvers keep on the loopback) or a loopback address.

    >>> [is_loopback(n) for n in ("localhost", "app.localhost", "127.1.2.3", "::1", "[::1]")]
    [True, True, True, True, True]
    >>> [is_loopback(n) for n in ("0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.evil")]
    [False, False, False, False, False]
    """
    name = name.strip().lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(name: str, allowed: Iterable[str]) -> bool:
    """Whether a host name is one of ``allowed``: ``*`` allows any, ``.example.com`` the name
    and its subdomains, anything else that name exactly (names compared without case and
    port).

    >>> host_allowed("api.example.com", [".example.com"]), host_allowed("x.org", ["x.org:80"])
    (True, True)
    >>> host_allowed("evil.example", ["example"])
    False
    """
    for entry in allowed:
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if entry.startswith("."):
            if name == entry[1:] or name.endswith(entry):
                return True
        elif host_name(entry) == name:
            return True
    return False


def same_origin(origin: str, host: str | None) -> bool:
    """Whether a browser's ``Origin`` is the server's own (its host and port are the ``Host``
    the request was sent to).

    >>> same_origin("http://localhost:3000", "localhost:3000")
    True
    >>> same_origin("http://evil.example:3000", "localhost:3000"), same_origin("null", "x")
    (False, False)
    """
    if host is None:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == host.strip().lower()
