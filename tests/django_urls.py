"""The URL configuration of the Django project in test_asgi.py (ROOT_URLCONF)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello from django")


urlpatterns = [path("hello/", hello)]
