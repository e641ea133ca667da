"""The Wagtail admin's views over tracking rows: the Background tasks area and the dashboard panel.

Registered by ``wagtail_tasks.wagtail_hooks``; nothing here runs work, it only reads tracking
rows (and asks :func:`wagtail_tasks.tracking.requeue` to retry failed ones).
"""
