"""The admin's report pages, under /admin/reports/background/.

- ``index``: the reports the user may run, and their recent files;
- ``report``: one report's filters and format; POST asks for a file and answers at once;
- ``file`` / ``file_status``: one file's progress, live (the panel's polling controller);
- ``download``: the file itself, streamed, for the person who asked (or a superuser) while
  they may still run the report; an expired or deleted file gets an "expired" page (410);
- ``cancel``: POST, stops a report that has not finished.

Every view answers 403 (plain, not Wagtail's redirect) to whoever may not see it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from wagtail.models import Site

from wagtail_tasks.reports.base import (
    FORMAT_CHOICES,
    FORMAT_XLSX,
    ReportNotFound,
    get_report_class,
    reports_for,
)
from wagtail_tasks.reports.files import report_storage
from wagtail_tasks.reports.models import ReportFile
from wagtail_tasks.reports.tasks import cancel_report, request_report

app_name = "wagtail_tasks_reports"

RECENT_FILES = 20
FORBIDDEN = gettext_lazy("You may not see this report.")


class FormatForm(forms.Form):
    format = forms.ChoiceField(
        label=gettext_lazy("Format"),
        choices=FORMAT_CHOICES,
        initial=FORMAT_XLSX,
        widget=forms.RadioSelect,
    )


def may_see_file(user: Any, report_file: ReportFile) -> bool:
    """The person who asked, while they may still run the report; or a superuser."""
    if not getattr(user, "is_active", False):
        return False
    if user.is_superuser:
        return True
    if report_file.record.requested_by_id != user.pk:
        return False
    try:
        return get_report_class(report_file.report_name)(user).has_permission()
    except ReportNotFound:
        return False


def with_report_file(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, pk: int) -> HttpResponse:
        report_file = get_object_or_404(
            ReportFile.objects.select_related("record", "record__requested_by"), pk=pk
        )
        if not may_see_file(request.user, report_file):
            return HttpResponseForbidden(FORBIDDEN)
        return view(request, report_file)

    return wrapper


def recent_files(user: Any, report_name: str | None = None):
    files = ReportFile.objects.for_user(user).select_related("record", "record__requested_by")
    if report_name:
        files = files.filter(report_name=report_name)
    return files.order_by("-pk")[:RECENT_FILES]


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    reports = reports_for(request.user)
    if not reports:
        return HttpResponseForbidden(FORBIDDEN)
    return TemplateResponse(
        request,
        "wagtail_tasks/reports/index.html",
        {"reports": reports, "files": recent_files(request.user)},
    )


@require_http_methods(["GET", "POST"])
def report(request: HttpRequest, name: str) -> HttpResponse:
    try:
        report = get_report_class(name)(request.user)
    except ReportNotFound:
        raise Http404(f"No report is registered as {name!r}") from None
    if not report.has_permission():
        return HttpResponseForbidden(FORBIDDEN)
    if request.method == "POST":
        report.bind(request.POST)
        format_form = FormatForm(request.POST)
        # Both forms, so that every error shows at once.
        if format_form.is_valid() & report.is_valid():
            report_file = request_report(
                report, format_form.cleaned_data["format"], site=Site.find_for_request(request)
            )
            return redirect("wagtail_tasks_reports:file", report_file.pk)
        status = 400
    else:
        # GET values fill the filters in: a link from Wagtail's own report keeps its filters.
        report.bind(request.GET)
        format_form = FormatForm()
        status = 200
    return TemplateResponse(
        request,
        "wagtail_tasks/reports/report.html",
        {
            "report": report,
            "filter_form": report.form,
            "format_form": format_form,
            "media": media_of(report.form, format_form),
            "files": recent_files(request.user, report.name),
        },
        status=status,
    )


def media_of(*forms_: forms.Form | None) -> forms.Media:
    media = forms.Media()
    for form in forms_:
        if form is not None:
            media += form.media
    return media


def render_file_body(request: HttpRequest, report_file: ReportFile) -> str:
    return render_to_string(
        "wagtail_tasks/reports/file_body.html", {"report_file": report_file}, request=request
    )


@require_GET
@with_report_file
def file(request: HttpRequest, report_file: ReportFile) -> HttpResponse:
    return TemplateResponse(
        request,
        "wagtail_tasks/reports/file.html",
        {
            "report_file": report_file,
            "body": render_file_body(request, report_file),
            "active": not report_file.record.is_finished,
        },
    )


@require_GET
@with_report_file
def file_status(request: HttpRequest, report_file: ReportFile) -> JsonResponse:
    """``{"html": <the file's progress>, "active": <not finished yet>}`` for the controller."""
    response = JsonResponse(
        {
            "html": render_file_body(request, report_file),
            "active": not report_file.record.is_finished,
        }
    )
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@with_report_file
def download(request: HttpRequest, report_file: ReportFile) -> HttpResponse:
    storage = report_storage()
    if not (report_file.is_expired or report_file.is_ready):
        return redirect("wagtail_tasks_reports:file", report_file.pk)  # not (yet) a file
    stored = None
    if not report_file.is_expired:
        try:  # opened, not checked with exists(): pruning may delete it between the two
            stored = storage.open(report_file.stored_name, "rb")
        except FileNotFoundError:
            pass
    if stored is None:
        return TemplateResponse(
            request, "wagtail_tasks/reports/expired.html", {"report_file": report_file}, status=410
        )
    response = FileResponse(
        stored,
        as_attachment=True,
        filename=report_file.filename,
        content_type=report_file.content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@with_report_file
def cancel(request: HttpRequest, report_file: ReportFile) -> HttpResponse:
    if cancel_report(report_file, request.user):
        messages.success(request, _("The report was cancelled."))
    else:
        messages.warning(request, _("The report had already finished."))
    return redirect("wagtail_tasks_reports:file", report_file.pk)


urlpatterns = [
    path("", index, name="index"),
    path("files/<int:pk>/", file, name="file"),
    path("files/<int:pk>/status/", file_status, name="file_status"),
    path("files/<int:pk>/download/", download, name="download"),
    path("files/<int:pk>/cancel/", cancel, name="cancel"),
    path("<slug:name>/", report, name="report"),
]
