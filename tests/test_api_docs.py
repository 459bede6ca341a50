"""Swagger UI at /devcenter-api-2.0 (Harbor's path) on Berth's own OpenAPI
document, with every file it needs served by Berth: no CDN, no inline script.
(tests/test_browser.py loads it in a real browser.)"""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

PAGE = "/devcenter-api-2.0"
ABSOLUTE = re.compile(r"""(?:https?:)?//[\w.-]""")


@pytest.fixture
def page(client: Client) -> str:
    answer = client.get(PAGE)
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/html")
    return answer.content.decode()


def test_every_asset_of_the_page_is_berths_own(page: str) -> None:
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", page)
    scripts = re.findall(r"""<script src="([^"]+)\"""", page)

    assert not ABSOLUTE.search(page), "a URL that leaves Berth"
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
    assert "<script>" not in page  # no inline script: the start-up script is a file
    for asset in assets:
        if asset.startswith("/static/"):
            # What `serve` collects and granian serves.
            assert finders.find(asset.removeprefix("/static/")), asset
        else:
            assert asset == f"{PAGE}?script=", asset
    assert len(scripts) == 3


def test_the_start_up_script_loads_berths_document(client: Client) -> None:
    script = client.get(PAGE, {"script": ""})

    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    text = script.content.decode()
    assert 'url: "/api/v2.0/openapi.json"' in text
    assert '"validatorUrl": null' in text  # no badge fetched from validator.swagger.io
    assert not ABSOLUTE.search(text)
    document = client.get("/api/v2.0/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == "Berth API"
    assert "/api/v2.0/projects" in document.json()["paths"]
