"""Harbor and Berth (``harbor``/``berth``): Harbor's API lists projects,
repositories and artifacts with their tags and labels (one page of 100
artifacts per request, instead of a HEAD per tag); content moves over ``/v2``
like any registry."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from replication.adapters.base import Artifact, Info
from replication.adapters.registry import RegistryAdapter, _check

API = "/api/v2.0"
PAGE_SIZE = 100


class HarborAdapter(RegistryAdapter):
    kind = "harbor"

    def info(self) -> Info:
        return Info(
            type=self.kind,
            description="Harbor's API for listing (projects, repositories, artifacts, labels)",
            supported_resource_filters=("name", "tag", "label", "resource"),
            labels=True,
        )

    def ping(self) -> None:
        super().ping()
        # The API accepts the same credentials (a robot may read /v2 only).
        r = self._api("/projects", {"page_size": "1"})
        _check(r, "GET /api/v2.0/projects")

    def _api(self, path: str, params: dict[str, str]) -> requests.Response:
        basic = (self.client.auth.username, self.client.auth.password)
        return self.client.send(
            "GET",
            self.url + API + path,
            headers={"Accept": "application/json"},
            data=None,
            params=params,
            auth=basic if self.client.auth.username else None,
        )

    def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            r = self._api(path, {**params, "page": str(page), "page_size": str(PAGE_SIZE)})
            _check(r, f"GET {API}{path}")
            batch = r.json() or []
            rows.extend(batch)
            if len(batch) < PAGE_SIZE:
                return rows
            page += 1

    def repositories(self, *, named: list[str] | None = None) -> list[str]:
        names: list[str] = []
        for project in self._pages("/projects", {}):
            path = f"/projects/{quote(project['name'], safe='')}/repositories"
            names.extend(repo["name"] for repo in self._pages(path, {}))
        if named is not None:
            wanted = set(named)
            names = [n for n in names if n in wanted]
        return names

    def artifacts(self, repository: str) -> list[Artifact]:
        project, _, rest = repository.partition("/")
        path = (
            f"/projects/{quote(project, safe='')}/repositories/"
            f"{quote(quote(rest, safe=''), safe='')}/artifacts"
        )
        out = []
        for row in self._pages(path, {"with_tag": "true", "with_label": "true"}):
            tags = tuple(sorted(t["name"] for t in row.get("tags") or []))
            labels = tuple(sorted(lb["name"] for lb in row.get("labels") or []))
            if tags:
                out.append(
                    Artifact(repository, row["digest"], tags, labels, row.get("media_type", ""))
                )
        return out


class BerthAdapter(HarborAdapter):
    kind = "berth"
