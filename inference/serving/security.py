"""Request checks of ``dppo serve`` that come before any work: the API key, the ``Origin`` of browser requests and
the ``Content-Type`` of request bodies.

* **Key.** ``Authorization: Bearer <key>``; the scheme is matched case-insensitively (RFC 7235), the key with a
  constant-time compare.
* **Origin.** Without a key the server trusts this machine only (it binds loopback); a web page in a browser on
  this machine could still post to it. Browsers send ``Origin`` with such requests, so a request whose ``Origin``
  is not a loopback address (nor listed in ``allowed_origins``) is refused with 403 (``Origin: null``, sent by
  sandboxed pages and ``file:`` documents, included). With a key set, a page cannot attach the key without a CORS
  pre-flight, which this server never grants.
* **Content-Type.** ``POST`` bodies must be ``application/json`` (415 otherwise): HTML forms and ``fetch`` with a
  "simple" content type (``text/plain``, form encodings) cannot post cross-site without a pre-flight then.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (``0.0.0.0`` and ``::`` are not)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_matches(header: str | None, key: str) -> bool:
    """Whether an ``Authorization`` header carries ``key`` with the ``Bearer`` scheme (any letter case)."""
    scheme, _, token = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


def origin_allowed(origin: str | None, allowed: Collection[str] = ()) -> bool:
    """Whether a request's ``Origin`` header may use a server that has no key: absent, loopback, or listed."""
    if origin is None:
        return True  # not sent by a browser page
    if origin.rstrip("/") in allowed:
        return True
    try:
        host = urlsplit(origin).hostname
    except ValueError:
        return False
    return host is not None and is_loopback(host)


def is_json_content_type(value: str | None) -> bool:
    """Whether a ``Content-Type`` header is ``application/json`` (parameters such as ``charset`` allowed)."""
    return (value or "").split(";", 1)[0].strip().lower() == "application/json"
