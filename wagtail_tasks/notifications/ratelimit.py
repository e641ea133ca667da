"""Fixed-window counters in Django's cache: how often a client may ask to subscribe, and how
many confirmation emails one address may receive.

The counters live in the cache named by ``WAGTAIL_TASKS_RATE_LIMIT_CACHE``. Use a cache that
all web processes share (Redis, Memcached, the database cache): a per-process local-memory
cache counts each process on its own. Keys hold a hash, never the address itself.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import caches

from wagtail_tasks import conf


def allow(scope: str, key: str, limit: tuple[int, int] | None) -> bool:
    """Count one attempt for ``key`` and say whether it is within ``limit``.

    ``limit`` is ``(attempts, seconds)``, or ``None`` for no limit. Attempts over the limit are
    counted too, so a client that keeps trying stays refused until the window ends.
    """
    if not limit:
        return True
    attempts, seconds = limit
    cache = caches[conf.get("WAGTAIL_TASKS_RATE_LIMIT_CACHE")]
    window = int(time.time() // seconds)
    digest = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()[:32]
    cache_key = f"wagtail_tasks:ratelimit:{scope}:{digest}:{window}"
    # add() then incr(): atomic on the caches that support it (Redis, Memcached, locmem).
    cache.add(cache_key, 0, timeout=seconds + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add() and incr()
        cache.set(cache_key, 1, timeout=seconds + 1)
        count = 1
    return count <= attempts


def client_address(request) -> str:
    """The client's address as the web server gave it. Behind a proxy, set REMOTE_ADDR from
    the proxy's header in a middleware you trust; a header the client sends is not trusted."""
    return request.META.get("REMOTE_ADDR", "")
