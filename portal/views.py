from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from kit import health
from registry.models import Repository


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html", {"repository_count": Repository.objects.count()})


def livez(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers; no dependency is checked."""
    return JsonResponse({"status": "healthy"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 503 naming the failing components, or while draining."""
    ready, body = health.readiness()
    return JsonResponse(body, status=200 if ready else 503)
