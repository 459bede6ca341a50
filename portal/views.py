from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from registry.models import Repository


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html", {"repository_count": Repository.objects.count()})
