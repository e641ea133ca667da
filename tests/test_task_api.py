"""The task API comes from one module: django.tasks on Django 6, the backport on 5.2."""

import re
from pathlib import Path

import django

import wagtail_tasks
from wagtail_tasks import task_api


def test_the_builtin_api_is_used_exactly_when_django_has_it():
    assert task_api.BUILTIN == (django.VERSION >= (6, 0))
    expected = "django.tasks" if task_api.BUILTIN else "django_tasks"
    assert task_api.task.__module__.startswith(expected)


def test_no_other_module_imports_a_task_api_or_a_concrete_backend():
    package = Path(wagtail_tasks.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+(django\.tasks|django_tasks\w*)", re.MULTILINE)
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "task_api.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
