"""Search reindexing through the task API.

``policy`` decides, from page signals, what to reindex (after commit, coalesced per page);
``tasks`` does it on a worker, reading each page's current state; ``views`` is the admin's
"rebuild the whole index" action.
"""
