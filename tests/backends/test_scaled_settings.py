"""The "Scaling out" example settings (sandbox/settings_scaled.py) are valid."""

import importlib

from django.test import override_settings

from wagtail_tasks import conf
from wagtail_tasks.checks import check_routes


def test_the_scaled_out_example_routes_every_group_to_a_configured_queue():
    scaled = importlib.import_module("sandbox.settings_scaled")
    assert "django_rq" in scaled.INSTALLED_APPS
    for group in conf.ROUTE_GROUPS:
        route = scaled.WAGTAIL_TASKS[group]
        assert route["queue"] in scaled.TASKS[route["backend"]]["QUEUES"], group
    for queue in scaled.TASKS["rq"]["QUEUES"]:
        assert queue in scaled.RQ_QUEUES
    assert "default" in scaled.RQ_QUEUES  # django-tasks-rq reads results through it

    with override_settings(TASKS=scaled.TASKS, WAGTAIL_TASKS=scaled.WAGTAIL_TASKS):
        assert check_routes() == []  # RQ can defer: sending retries need no warning
        assert conf.route_for("sending") == conf.Route("rq", "wt-sending", 0)
