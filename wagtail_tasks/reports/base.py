"""The report API: a base class, the registry, and the adapter for Wagtail's own reports.

A report is a class that says who may run it, which filters it takes and which columns it
writes, in the vocabulary of Wagtail's ``ReportView`` and ``ModelViewSet`` exports
(``list_export``, ``export_headings``, ``custom_field_preprocess``)::

    from wagtail_tasks.reports import Report, register_report

    @register_report
    class EventsReport(Report):
        name = "events"
        title = "Events"
        permission = "events.view_event"
        filterset_class = EventFilterSet  # or form_class with filter_queryset()
        list_export = ["title", "start", "venue.name"]
        export_headings = {"venue.name": "Venue"}

        def get_queryset(self):
            return Event.objects.order_by("start")

A report instance is bound to one user and one set of filter values (:meth:`Report.bind`);
the admin view and the worker bind it the same way, so the worker writes exactly what the
form was validated for. Rows are read in chunks (``chunk_size``), never all at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, ClassVar

from django import forms
from django.db.models import Model, QuerySet
from django.http import QueryDict
from django.test import RequestFactory
from django.utils.choices import flatten_choices
from django.utils.encoding import force_str
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from wagtail.admin.views.mixins import SpreadsheetExportMixin

FORMAT_CSV = SpreadsheetExportMixin.FORMAT_CSV
FORMAT_XLSX = SpreadsheetExportMixin.FORMAT_XLSX
FORMAT_CHOICES = [(FORMAT_CSV, "CSV"), (FORMAT_XLSX, "Excel (XLSX)")]


class ReportNotFound(LookupError):
    pass


def yes_no(value: Any) -> str:
    return str(_("Yes") if value else _("No"))


def readable(field: forms.Field, value: Any) -> Any:
    """A cleaned value as the form showed it: a choice's label (not its code), Yes or No."""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(field, forms.ModelChoiceField):
        return field.label_from_instance(value) if isinstance(value, Model) else value
    if isinstance(field, forms.ChoiceField):
        labels = {str(key): label for key, label in flatten_choices(field.choices)}
        return labels.get(str(value), value)
    return value


class Report(SpreadsheetExportMixin):
    """One kind of report. Subclass, set the attributes, override what differs."""

    #: Registry key and URL part: letters, digits, "-" and "_".
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    icon: ClassVar[str] = "table"
    #: A Django permission ("app_label.codename") the user needs; None: superusers only.
    permission: ClassVar[str | None] = None
    #: Filters: a django-filter ``FilterSet`` (a ``WagtailFilterSet`` is given the request) ...
    filterset_class: ClassVar[Any] = None
    #: ... or a plain Django form, applied by :meth:`filter_queryset`.
    form_class: ClassVar[type[forms.Form] | None] = None
    #: Rows read from the database at a time.
    chunk_size: ClassVar[int] = 2000

    def __init__(self, user: Any) -> None:
        self.user = user
        self.data = QueryDict()
        self._form: forms.Form | None = None
        self._filterset: Any = None

    # Who may run it -------------------------------------------------------------------

    def has_permission(self) -> bool:
        user = self.user
        if not getattr(user, "is_active", False):
            return False
        if user.is_superuser:
            return True
        return self.permission is not None and user.has_perm(self.permission)

    # Filters ----------------------------------------------------------------------------

    def bind(self, data: QueryDict | None = None) -> Report:
        """Bind the filter values (a GET-style ``QueryDict``); returns ``self``."""
        self.data = data if data is not None else QueryDict()
        self._form = self._filterset = None
        return self

    def request_for_filters(self) -> Any:
        """A GET request carrying the filters and the user, for code that wants a request
        (``WagtailFilterSet`` choices, Wagtail's report views); also used in the worker."""
        request = RequestFactory().get("/", data=self.data)
        request.user = self.user
        return request

    @property
    def filterset(self) -> Any:
        if self._filterset is None and self.filterset_class is not None:
            self._filterset = self.filterset_class(
                data=self.data, queryset=self.get_queryset(), request=self.request_for_filters()
            )
        return self._filterset

    @property
    def form(self) -> forms.Form | None:
        """The filter form (a filterset's form), or None when the report has no filters."""
        if self._form is None:
            if self.filterset is not None:
                self._form = self.filterset.form
            elif self.form_class is not None:
                self._form = self.form_class(data=self.data)
        return self._form

    def is_valid(self) -> bool:
        form = self.form
        return form is None or form.is_valid()

    def filters_display(self) -> list[list[str]]:
        """[label, value] for each filter that is set, to show beside the file later."""
        form = self.form
        if form is None or not form.is_valid():
            return []
        shown = []
        for name in form.changed_data:
            value = form.cleaned_data.get(name)
            if value in (None, "", [], ()):
                continue
            field = form.fields[name]
            if isinstance(value, QuerySet | list | tuple | set):
                value = ", ".join(force_str(readable(field, item)) for item in value)
            elif hasattr(value, "start") and hasattr(value, "stop"):  # a date range
                # As typed ("2026-11-01"), not as cleaned (midnight, end of day, UTC).
                typed = form[name].value()
                ends = typed if isinstance(typed, list | tuple) else (value.start, value.stop)
                value = " – ".join(force_str(v) if v else "…" for v in ends)  # "… – 2026-11-30"
            else:
                value = readable(field, value)
            label = field.label or name
            shown.append([force_str(capfirst(label)), force_str(value)])
        return shown

    # Rows -------------------------------------------------------------------------------

    def get_queryset(self) -> QuerySet | Iterable[Any]:
        """Every row of the report before filters, in order. A queryset is best: it is
        counted for the progress bar and read in chunks."""
        raise NotImplementedError(f"{type(self).__name__} must define get_queryset()")

    def filter_queryset(self, queryset: Any, cleaned_data: dict[str, Any]) -> Any:
        """Apply a ``form_class``'s cleaned values (filtersets apply themselves)."""
        return queryset

    def get_filtered_queryset(self) -> Any:
        if self.filterset is not None:
            return self.filterset.qs
        queryset = self.get_queryset()
        if self.form is not None:
            queryset = self.filter_queryset(queryset, self.form.cleaned_data)
        return queryset

    def count(self, rows: Any) -> int | None:
        if isinstance(rows, QuerySet):
            return rows.count()
        try:
            return len(rows)
        except TypeError:
            return None  # a generator: progress without a total

    def chunks(self, rows: Any) -> Iterator[list[Any]]:
        """The rows in lists of ``chunk_size``, each passed through :meth:`decorate_chunk`."""
        if isinstance(rows, QuerySet):
            rows = rows.iterator(chunk_size=self.chunk_size)
        rows = iter(rows)
        while chunk := list(islice(rows, self.chunk_size)):
            yield list(self.decorate_chunk(chunk))

    def decorate_chunk(self, objects: list[Any]) -> Iterable[Any]:
        """Per-chunk lookups (user names, counts ...) before the rows are written, like
        Wagtail's ``decorate_paginated_queryset``."""
        return objects

    # Writing ----------------------------------------------------------------------------

    @property
    def spreadsheet(self) -> SpreadsheetExportMixin:
        """What turns an object into a row: ``to_row_dict``, headings and cell values."""
        return self

    def headings(self, rows: Any) -> list[str]:
        return [self.spreadsheet.get_heading(rows, field) for field in self.spreadsheet.list_export]

    def get_heading(self, queryset: Any, field: str) -> str:
        if field in self.export_headings:
            return force_str(self.export_headings[field])
        if isinstance(queryset, QuerySet):
            return super().get_heading(queryset, field)
        return force_str(capfirst(field.replace("_", " ")))

    def get_filename(self) -> str:
        return self.name


class WagtailReport(Report):
    """One of Wagtail's own ``ReportView`` reports, generated in the background.

    Wagtail's view is set up with a GET request that carries the filters and the user, so
    its own queryset, permission filtering, filterset, ``decorate_paginated_queryset`` and
    export columns are used as they are: the file has what its "Download XLSX" would have.
    """

    view_class: ClassVar[type] = None  # type: ignore[assignment]

    def bind(self, data: QueryDict | None = None) -> Report:
        super().bind(data)
        self._view = None
        return self

    @property
    def view(self) -> Any:
        if getattr(self, "_view", None) is None:
            view = self.view_class()
            view.setup(self.request_for_filters())
            view.is_export = True
            self._view = view
        return self._view

    def has_permission(self) -> bool:
        if not getattr(self.user, "is_active", False):
            return False
        view = self.view_class()
        view.request = self.request_for_filters()
        if view.permission_required is not None and not view.user_has_permission(
            view.permission_required
        ):
            return False
        if view.any_permission_required is not None and not view.user_has_any_permission(
            view.any_permission_required
        ):
            return False
        return True

    @property
    def filterset(self) -> Any:
        return self.view.filters

    def get_filtered_queryset(self) -> Any:
        return self.view.get_filtered_queryset()

    def decorate_chunk(self, objects: list[Any]) -> Iterable[Any]:
        if objects and isinstance(objects[0], Model):
            # Wagtail decorates a page of its paginator, a QuerySet (Aging pages reads it
            # with .values_list()): give it this chunk as one, in the report's order.
            objects = self.get_filtered_queryset().filter(pk__in=[obj.pk for obj in objects])
        return self.view.decorate_paginated_queryset(objects)

    @property
    def spreadsheet(self) -> SpreadsheetExportMixin:
        return self.view


# The registry ---------------------------------------------------------------------------

_registry: dict[str, type[Report]] = {}


# A URL part (the admin's report URLs take a slug) that fits ReportFile.report_name.
NAME_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,64}")


def register_report(report_class: type[Report]) -> type[Report]:
    """Class decorator: make a report available in the admin (under Reports)."""
    if not report_class.name:
        raise ValueError(f"{report_class.__name__} needs a name")
    if not NAME_PATTERN.fullmatch(report_class.name):
        # Else its menu item cannot be reversed, and every admin page fails with it.
        raise ValueError(
            f"{report_class.__name__}.name must be 1 to 64 letters, digits, '-' or '_': "
            f"{report_class.name!r}"
        )
    registered = _registry.get(report_class.name)
    if registered is not None and registered is not report_class:
        # Silently replacing would hide one of the two; replacing a built-in is deliberate.
        raise ValueError(
            f"A report named {report_class.name!r} is already registered "
            f"({registered.__module__}.{registered.__qualname__}): call "
            f"unregister_report({report_class.name!r}) first to replace it"
        )
    _registry[report_class.name] = report_class
    return report_class


def unregister_report(name: str) -> None:
    _registry.pop(name, None)


def get_report_class(name: str) -> type[Report]:
    try:
        return _registry[name]
    except KeyError:
        raise ReportNotFound(f"No report is registered as {name!r}") from None


def report_classes() -> list[type[Report]]:
    return list(_registry.values())


def reports_for(user: Any) -> list[Report]:
    """The reports ``user`` may run, in registration order."""
    return [report for cls in _registry.values() if (report := cls(user)).has_permission()]
