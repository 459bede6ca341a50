"""Schemathesis against the API, in-process through the WSGI application: Harbor's
swagger (the contract, for the operations Berth serves) and Berth's own OpenAPI
document, as the system administrator and as a developer of one project, with
schema-valid and schema-breaking input. Zero 5xx and zero response-schema
violations, except the deviations listed in EXCLUDED, each with its reason.

Deterministic (hypothesis derandomized, no example database) and bounded
(EXAMPLES per operation and generation mode). Marked ``fuzz``: ``make test``
runs it, ``make test-fast`` leaves it out."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
import schemathesis
import yaml
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.api.system import Unknown
from tests.conftest import ADMIN, REPO_ROOT, basic
from tests.roles import PASSWORD

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db(transaction=True)]

# Harbor's API definition as its go-client v0.213.1 ships it (Harbor 2.13);
# tests/peers/build-go-peers.sh copies it from the pinned module.
HARBOR_SWAGGER = REPO_ROOT / ".peers" / "harbor-swagger.yaml"
EXAMPLES = 20
PRINCIPALS = {"admin": basic(*ADMIN), "developer": basic("dev", PASSWORD)}

# Where Berth answers differently from Harbor's schema on purpose:
# (method, path in the schema, check name) -> why.
EXCLUDED: dict[tuple[str, str, str], str] = {}


def _served(method: str, path: str) -> bool:
    """Whether Berth routes ``method path`` (a template of the schema, with its
    base path) to a view of its own with the same parameters (not to the JSON 404 for unknown paths,
    nor to a route whose ``<path:…>`` swallowed the rest)."""
    names = re.findall(r"{(\w+)}", path)
    fillers = {name: str(i + 1) for i, name in enumerate(names)}
    try:
        match = resolve(path.format(**fillers))
    except Resolver404:
        return False
    view = getattr(match.func, "view_class", None)
    return (
        view not in (None, Unknown)
        and hasattr(view, method.lower())
        and {str(v) for v in match.kwargs.values()} <= set(fillers.values())
    )


def _harbor_schema() -> Any:
    document = yaml.safe_load(HARBOR_SWAGGER.read_text())
    return schemathesis.openapi.from_dict(document)


def _berth_schema() -> Any:
    from django.test import Client

    response = Client().get("/api/v2.0/openapi.json")
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    return schemathesis.openapi.from_dict(json.loads(response.content))


def _operations(schema: Any) -> list[Any]:
    from portal.wsgi import application

    schema.app = application
    operations = [result.ok() for result in schema.get_all_operations()]
    served = [op for op in operations if _served(op.method, op.full_path)]
    assert served, "no operation of the schema is served"
    return served


def _fuzz(operation: Any, mode: GenerationMode, authorization: str) -> list[str]:
    """Up to EXAMPLES cases of ``operation``; the first failure of each check."""
    method = operation.method.upper()
    checks = [
        check
        for check in (not_a_server_error, response_schema_conformance)
        if (method, operation.path, check.__name__) not in EXCLUDED
    ]
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(headers={"Authorization": authorization})
        for check in list(checks):
            try:
                case.validate_response(response, checks=[check])
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together
                checks.remove(check)
                failures.append(
                    f"{method} {operation.path} [{mode.value}] {check.__name__}:"
                    f" {case.as_curl_command()}\n    {str(exc)[:600]}"
                )

    # Unsatisfiable: nothing to break (no parameter nor body, in negative mode).
    with contextlib.suppress(Unsatisfiable):
        run()
    return failures


@pytest.mark.parametrize("principal", sorted(PRINCIPALS))
@pytest.mark.parametrize("source", ["harbor", "berth"])
def test_no_server_error_and_no_schema_violation(team, source, principal):
    schema = _harbor_schema() if source == "harbor" else _berth_schema()
    failures = [
        failure
        for operation in _operations(schema)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for failure in _fuzz(operation, mode, PRINCIPALS[principal])
    ]
    assert failures == [], "\n".join(failures)
