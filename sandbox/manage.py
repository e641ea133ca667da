#!/usr/bin/env python
"""``python sandbox/manage.py <command>``: Django's manage.py for the sandbox site."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Import from the repository root (sandbox.*, wagtail_tasks), not from sandbox/ itself.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
