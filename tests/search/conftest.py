import pytest
from django.db import connection

from tests.search import backends
from wagtail_tasks.search.policy import AfterCommit


@pytest.fixture(autouse=True)
def counting_search_backend(settings):
    """Wagtail's database search backend, with index writes counted and a "down" switch."""
    settings.WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "tests.search.backends"}}
    backends.WRITES.clear()
    backends.STATE["down"] = False
    yield backends
    backends.STATE["down"] = False


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """One transaction that commits: what it enqueued on commit runs in-process.

    A test runs inside one transaction that never commits, so search work that fixtures
    registered before the block would stay pending and absorb the block's work (one reindex
    per page per transaction): it is dropped first, as if its transaction had committed.
    """

    def block():
        connection.run_on_commit[:] = [
            entry for entry in connection.run_on_commit if not isinstance(entry[1], AfterCommit)
        ]
        return django_capture_on_commit_callbacks(execute=True)

    return block


@pytest.fixture
def parked(settings):
    """Search work waits in the dummy backend (a queue no worker serves)."""
    settings.WAGTAIL_TASKS = {"search": {"backend": "dummy"}}
