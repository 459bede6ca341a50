"""Which of Harbor's API operations Berth serves, found by calling each one on a
live Berth; writes docs/harbor-api-coverage.md.

    python scripts/api_coverage.py                  start a Berth, survey, write the doc
    python scripts/api_coverage.py --url URL [--password PW]   survey a running Berth
    python scripts/api_coverage.py --check [...]    exit 1 (with a diff) if the doc differs

The operations are those of Harbor's swagger as go-client v0.213.1 ships it
(.peers/harbor-swagger.yaml, copied by tests/peers/build-go-peers.sh; --swagger
names another). Each is called once as admin, with plausible parameters
(PLAUSIBLE below), deletes last. An operation is served when a Berth view made
for it answered: the request did not fall through to Berth's JSON 404 for
unknown API paths (accounts.api.system.Unknown), was not caught by a broader
route (a repository route taking ``…/artifacts/x/scan`` as a repository name),
and did not answer 405 or 501. Which route took the request is read from this
checkout's URL configuration, so the Berth surveyed must run this checkout.
Every operation not served needs a reason in REASONS (by operationId, else by
area): the script stops when one has none.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("BERTH_DATA_DIR", tempfile.mkdtemp(prefix="berth-api-coverage-"))

import django  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402

django.setup()

from django.urls import resolve  # noqa: E402

from accounts.api.system import Unknown  # noqa: E402

DOC = ROOT / "docs" / "harbor-api-coverage.md"
SWAGGER = ROOT / ".peers" / "harbor-swagger.yaml"
METHODS = ("get", "head", "post", "put", "patch", "delete")
PROJECT = "coverage"

# Path and required query parameters by name; other integers are 1, other
# strings "coverage".
PLAUSIBLE: dict[str, str] = {
    "project_name": PROJECT,
    "project_name_or_id": PROJECT,
    "repository_name": "app",
    "reference": "latest",
    "tag_name": "latest",
    "meta_name": "auto_scan",
    "addition": "build_history",
    "digest": "sha256:" + "0" * 64,
    "from": f"{PROJECT}/app:latest",
    "q": PROJECT,
    "username": "admin",
    "X-Scan-Data-Type": "application/vnd.security.vulnerability.report; version=1.1",
}
# Bodies that keep the admin an admin (the survey goes on as admin); others are {}.
BODIES: dict[str, Any] = {"sysadmin_flag": {"sysadmin_flag": True}}

# Why an operation is not served: by operationId first, then by area (the
# swagger's first tag).
REASONS: dict[str, str] = {
    # by operationId
    "getInternalconfig": "Harbor's internal configuration for its own components",
    "getScannerOfProject": "scanning: no scanner integration yet",
    "setScannerOfProject": "scanning: no scanner integration yet",
    "listScannerCandidatesOfProject": "scanning: no scanner integration yet",
    "getVulnerabilitiesAddition": "scanning: no scanner integration yet",
    "scanArtifact": "scanning: no scanner integration yet",
    "stopScanArtifact": "scanning: no scanner integration yet",
    "getReportLog": "scanning: no scanner integration yet",
    "getSBOMLog": "scanning: no scanner integration yet",
    # by area
    "scan": "scanning: no scanner integration yet",
    "scanAll": "scanning: no scanner integration yet",
    "scanner": "scanning: no scanner integration yet",
    "scan data export": "scanning: no scanner integration yet",
    "securityhub": "scanning: no scanner integration yet",
    "SystemCVEAllowlist": "scanning: no scanner integration yet",
    "replication": "replication: issue 17",
    "registry": "replication endpoints: issue 17",
    "Retention": "retention: issue 18",
    "schedule": "job schedules: GC/retention, issue 18",
    "jobservice": "Harbor's job service internals: Berth's jobs are Celery tasks",
    "Ldap": "LDAP: SSO, issue 16",
    "oidc": "OIDC: SSO, issue 16",
    "usergroup": "user groups: SSO, issue 16",
    "preheat": "P2P preheat: not planned yet",
    "webhook": "webhooks: not yet",
    "webhookjob": "webhooks: not yet",
    "icon": "artifact type icons: not yet",
}


@dataclass(frozen=True)
class Row:
    area: str
    method: str
    path: str
    operation: str
    served: bool
    why: str  # how Berth answered: for the log, not the doc


def parameters(spec: dict[str, Any], op: dict[str, Any]) -> list[dict[str, Any]]:
    shared = spec.get("parameters", {})
    return [
        shared[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p for p in op.get("parameters", [])
    ]


def plausible(param: dict[str, Any]) -> str:
    default = "1" if param.get("type") == "integer" else PROJECT
    return PLAUSIBLE.get(param["name"], default)


def normalise(route: str) -> str:
    route = re.sub(r"\{[^}]+\}|<[^>]+>", "{}", route)
    return route.removeprefix("/").removeprefix("api/v2.0/").strip("/")


def call(session: requests.Session, url: str, spec: dict[str, Any], method: str, path: str) -> Row:
    op = spec["paths"][path][method]
    concrete, query, headers, body = path, {}, {}, None
    for param in parameters(spec, op):
        where, name = param["in"], param["name"]
        if where == "path":
            concrete = concrete.replace("{" + name + "}", quote(plausible(param), safe=""))
        elif where == "query" and param.get("required"):
            query[name] = plausible(param)
        elif where == "header" and param.get("required"):
            headers[name] = plausible(param)
        elif where == "body":
            body = BODIES.get(name, {})
    full = "/api/v2.0" + concrete
    answer = session.request(
        method.upper(), url + full, params=query, headers=headers, json=body, timeout=60
    )
    match = resolve(full)
    view = getattr(match.func, "view_class", None)
    if view is Unknown:
        served, why = False, "no route"
    elif normalise(match.route) != normalise(path):
        served, why = False, f"caught by {match.route}"
    elif answer.status_code in (405, 501):
        served, why = False, f"answered {answer.status_code}"
    else:
        served, why = True, f"answered {answer.status_code}"
    area = op.get("tags", ["other"])[0]
    return Row(area, method.upper(), path, op.get("operationId", ""), served, why)


def survey(url: str, auth: tuple[str, str], spec: dict[str, Any]) -> list[Row]:
    session = requests.Session()
    session.auth = auth
    made = session.post(
        f"{url}/api/v2.0/projects", json={"project_name": PROJECT, "metadata": {"public": "false"}}
    )
    if made.status_code not in (201, 409):
        raise SystemExit(f"cannot create the project {PROJECT}: {made.status_code} {made.text}")
    calls = [(path, m) for path, ops in spec["paths"].items() for m in ops if m in METHODS]
    # Deletes last, the longest paths first (children before their parents).
    calls.sort(key=lambda c: (c[1] == "delete", -len(c[0]) if c[1] == "delete" else 0))
    return [call(session, url, spec, method, path) for path, method in calls]


def reason(row: Row) -> str:
    found = REASONS.get(row.operation) or REASONS.get(row.area)
    if not found:
        raise SystemExit(f"no reason for {row.operation} ({row.area}): add one to REASONS")
    return found


def no_stale_reasons(rows: list[Row]) -> None:
    """A reason kept by operationId for an operation now served is stale."""
    served = {row.operation for row in rows if row.served}
    stale = sorted(served & REASONS.keys())
    if stale:
        raise SystemExit(f"served now, remove from REASONS: {', '.join(stale)}")


def render(rows: list[Row]) -> str:
    areas: dict[str, list[Row]] = {}
    for row in sorted(
        rows, key=lambda r: (r.area.lower(), r.path, METHODS.index(r.method.lower()))
    ):
        areas.setdefault(row.area, []).append(row)
    served = sum(r.served for r in rows)
    lines = [
        "# Harbor API coverage",
        "",
        "Generated by `python scripts/api_coverage.py` from live calls: each operation",
        "of Harbor's swagger (as `github.com/goharbor/go-client` v0.213.1 ships it) called",
        "once as admin on a Berth. Served means a Berth view made for that operation",
        "answered (not the JSON 404 for unknown paths, not a broader route, not 405/501).",
        "`tests/test_api_coverage.py` fails when this file differs from what the script",
        "writes. Harbor's own clients (go-client, harborapi, a client generated by",
        "openapi-generator) exercise the served ones in `tests/harbor_clients/`",
        '(docs/api.md, "Harbor\'s own clients as judges").',
        "",
        f"Berth serves **{served} of Harbor's {len(rows)} operations**.",
        "",
        "| area | served |",
        "|---|---|",
    ]
    lines += [f"| {a} | {sum(r.served for r in rs)} of {len(rs)} |" for a, rs in areas.items()]
    for area, area_rows in areas.items():
        lines += [
            "",
            f"## {area}",
            "",
            "| method | path | operation | Berth |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r.method} | `{r.path}` | {r.operation} | "
            + ("served" if r.served else f"not served: {reason(r)}")
            + " |"
            for r in area_rows
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def berth(url: str | None) -> Iterator[str]:
    """The Berth at ``url``, or one started from this checkout for the survey's
    length (a temporary data directory; SQLite unless DATABASE_URL names
    PostgreSQL, as for the tests' servers)."""
    if url:
        yield url.rstrip("/")
        return
    from tests.conftest import BerthServer

    with tempfile.TemporaryDirectory(prefix="berth-api-coverage-") as tmp:
        server = BerthServer(Path(tmp) / "data").start()
        try:
            yield server.url
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running Berth of this checkout (default: start one)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default=os.environ.get("BERTH_ADMIN_PASSWORD", "Harbor12345"))
    parser.add_argument("--swagger", type=Path, default=SWAGGER)
    parser.add_argument("--output", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true", help="compare with --output, write nothing")
    args = parser.parse_args()
    if not args.swagger.is_file():
        raise SystemExit(f"{args.swagger} missing: run tests/peers/build-go-peers.sh")
    spec = yaml.safe_load(args.swagger.read_text())
    with berth(args.url) as url:
        rows = survey(url, (args.user, args.password), spec)
    for row in rows:
        print(f"{'yes' if row.served else 'no ':3} {row.method:6} {row.path}  ({row.why})")
    no_stale_reasons(rows)
    text = render(rows)
    if args.check:
        old = args.output.read_text() if args.output.is_file() else ""
        if old != text:
            diff = difflib.unified_diff(
                old.splitlines(), text.splitlines(), str(args.output), "survey", lineterm=""
            )
            print("\n".join(diff))
            raise SystemExit(f"{args.output} is stale: run python scripts/api_coverage.py")
    else:
        args.output.write_text(text)
    print(f"{sum(r.served for r in rows)}/{len(rows)} Harbor operations served")


if __name__ == "__main__":
    main()
