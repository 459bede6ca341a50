"""Content negotiation for the API (DRF's DEFAULT_CONTENT_NEGOTIATION_CLASS).
A module of its own: DRF imports it while defining APIView."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class AnyAccept(DefaultContentNegotiation):
    """Harbor answers JSON whatever the client accepts (its Go client sends
    ``Accept: text/plain`` to /ping, a browser ``text/html``): a renderer the
    client asks for is used when there is one, else the view's first."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
