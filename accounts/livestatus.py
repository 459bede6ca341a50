"""Live status of long-running jobs in the admin (docs/portal.md, *Live status*).

A job's admin (garbage collection, replication executions, retention runs...)
mixes in :class:`LiveStatusAdmin` and says, for one row, whether it is still
running, a one-line progress, and which of its columns change while it runs.
The mixin then adds a *Progress* column to the changelist and two small JSON
endpoints next to the admin's own pages:

- ``<id>/live/``: one job, with the tail of its log (the change page polls it);
- ``live/?ids=1,2``: the listed jobs (the changelist polls the running rows).

Both go through the admin's own checks: ``admin_view`` (signed in) then the
ModelAdmin's ``get_queryset`` and ``has_view_permission`` — the policy the pages
use. The templates ``admin/live/change_form.html`` and
``admin/live/change_list.html`` carry an ``aria-live`` region and a few lines of
script that poll every two seconds while a job runs and stop when it ends.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import display_for_field, display_for_value, lookup_field
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, strip_tags
from django.utils.translation import gettext_lazy as _

LIVE_LIST_MAX = 100  # a changelist page's rows at most
LOG_TAIL_CHARS = 4000  # what the change page shows of a running job's log


def _json(body: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    return response


def _error(status: int, code: str, message: str) -> JsonResponse:
    # Harbor's error envelope, as the API answers.
    return _json({"errors": [{"code": code, "message": message}]}, status=status)


class LiveStatusAdmin(admin.ModelAdmin):
    """A job's admin whose pages update themselves while the job runs.

    Subclasses set ``live_cells`` (the columns and fields that change while the
    job runs: their text is recomputed exactly as the changelist shows it) and
    implement :meth:`live_active` and :meth:`live_progress`; a log tail comes
    from :meth:`live_log_tail` (annotate it in :meth:`live_queryset` rather
    than loading a whole log)."""

    change_form_template = "admin/live/change_form.html"
    change_list_template = "admin/live/change_list.html"
    live_cells: tuple[str, ...] = ("status",)

    # --- what a subclass says about one job --------------------------------

    def live_active(self, obj: Any) -> bool:
        raise NotImplementedError

    def live_progress(self, obj: Any) -> str:
        raise NotImplementedError

    def live_log_tail(self, obj: Any) -> str:
        return str(getattr(obj, "live_log_tail", "") or "")

    def live_queryset(self, request: HttpRequest, detail: bool) -> QuerySet[Any]:
        """The rows the endpoints read: the admin's own queryset (its scope),
        with a log tail annotated when ``detail``."""
        return self.get_queryset(request)

    # --- the JSON -----------------------------------------------------------

    def _cell(self, name: str, obj: Model) -> str:
        field, attr, value = lookup_field(name, obj, self)
        empty = self.get_empty_value_display()
        if field is not None:
            text = display_for_field(value, field, empty)
        else:
            text = display_for_value(value, empty, getattr(attr, "boolean", False))
        return strip_tags(str(text))

    def live_state(self, obj: Model, detail: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {
            "id": obj.pk,
            "status": str(getattr(obj, "status", "")),
            "active": self.live_active(obj),
            "progress": str(self.live_progress(obj)),
            "cells": {name: self._cell(name, obj) for name in self.live_cells},
        }
        if detail:
            state["log_tail"] = self.live_log_tail(obj)
        return state

    def _live_object(self, request: HttpRequest, object_id: str) -> Model | None:
        try:
            obj = self.live_queryset(request, detail=True).filter(pk=object_id).first()
        except (ValueError, TypeError, ValidationError):
            return None
        if obj is None or not self.has_view_permission(request, obj):
            return None
        return obj

    def live_one_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self._live_object(request, object_id)
        if obj is None:
            raise Http404
        return _json(self.live_state(obj, detail=True))

    def live_list_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        raw = [part for part in request.GET.get("ids", "").split(",") if part.strip()]
        if len(raw) > LIVE_LIST_MAX:
            return _error(400, "BAD_REQUEST", f"at most {LIVE_LIST_MAX} ids")
        try:
            ids = [int(part) for part in raw]
        except ValueError:
            return _error(400, "BAD_REQUEST", "ids: a comma-separated list of integers")
        rows = list(self.live_queryset(request, detail=False).filter(pk__in=ids)) if ids else []
        return _json({"jobs": [self.live_state(obj) for obj in rows]})

    # --- the pages ----------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        info = self.opts.app_label, self.opts.model_name
        # Ahead of the admin's own: its `<path:object_id>/` would take `5/live`.
        return [
            path("live/", wrap(self.live_list_view), name="{}_{}_live_list".format(*info)),
            path(
                "<path:object_id>/live/",
                wrap(self.live_one_view),
                name="{}_{}_live".format(*info),
            ),
            *super().get_urls(),
        ]

    def get_list_display(self, request: HttpRequest) -> Any:
        return (*super().get_list_display(request), "live_column")

    @admin.display(description=_("Progress"))
    def live_column(self, obj: Model) -> str:
        # The row's marker for the script: its id, and whether to keep asking.
        return format_html(
            '<span data-live-id="{}" data-live-status="{}"{}>{}</span>',
            obj.pk,
            str(getattr(obj, "status", "")),
            " data-live-active" if self.live_active(obj) else "",
            self.live_progress(obj),
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        info = self.opts.app_label, self.opts.model_name
        context = {
            "live_url": reverse("admin:{}_{}_live_list".format(*info)),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        info = self.opts.app_label, self.opts.model_name
        context = dict(extra_context or {})
        obj = self._live_object(request, object_id)
        if obj is not None:
            context["live"] = self.live_state(obj, detail=True)
            context["live_url"] = reverse("admin:{}_{}_live".format(*info), args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra_context=context)
