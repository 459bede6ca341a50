"""Harbor's tag retention API: ``/retentions`` (policies), their executions,
tasks and task logs, and ``/retentions/metadatas``. The rules are in
``registry.services.retention``."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.base import HarborView, body, created
from accounts.api.paging import paginate
from accounts.api.params import Flag, Text, fields
from accounts.api.render import ts
from accounts.errors import Invalid, Unauthenticated
from registry.models import RetentionExecution, RetentionTask
from registry.services import retention as svc

# Harbor's numeric task states (its job service's codes): running, then done.
STATUS_CODES = {"Pending": 0, "Running": 2, "Success": 3, "Error": 3, "Stopped": 3}


def render_execution(execution: RetentionExecution) -> dict[str, Any]:
    """Harbor's RetentionExecution."""
    return {
        "id": execution.pk,
        "policy_id": execution.policy_id,
        "start_time": ts(execution.start_time),
        "end_time": ts(execution.end_time),
        "status": execution.status,
        "trigger": execution.trigger,
        "dry_run": execution.dry_run,
    }


def render_task(task: RetentionTask) -> dict[str, Any]:
    """Harbor's RetentionExecutionTask."""
    return {
        "id": task.pk,
        "execution_id": task.execution_id,
        "repository": task.repository,
        "job_id": f"retention-{task.execution_id}-{task.pk}",
        "status": task.status,
        "status_code": STATUS_CODES.get(task.status, 0),
        "status_revision": 0,
        "start_time": ts(task.start_time),
        "end_time": ts(task.end_time),
        "total": task.total,
        "retained": task.retained,
    }


class Trigger(serializers.Serializer):
    dry_run = Flag(required=False, allow_null=True)


class Operate(serializers.Serializer):
    action = Text(required=False, allow_null=True)


class Metadatas(HarborView):
    def get(self, request: Request) -> Response:
        if not self.actor(request).authenticated:
            raise Unauthenticated()
        return Response(svc.metadata())


class PolicyList(HarborView):
    def post(self, request: Request) -> Response:
        policy = svc.policy_create(actor=self.actor(request), raw=body(request))
        return created(f"/api/v2.0/retentions/{policy.pk}")


class PolicyDetail(HarborView):
    def get(self, request: Request, policy_id: int) -> Response:
        return Response(svc.render(svc.policy_get(actor=self.actor(request), policy_id=policy_id)))

    def put(self, request: Request, policy_id: int) -> Response:
        svc.policy_update(actor=self.actor(request), policy_id=policy_id, raw=body(request))
        return Response(status=200)

    def delete(self, request: Request, policy_id: int) -> Response:
        svc.policy_delete(actor=self.actor(request), policy_id=policy_id)
        return Response(status=200)


class ExecutionList(HarborView):
    def get(self, request: Request, policy_id: int) -> Response:
        policy = svc.policy_get(actor=self.actor(request), policy_id=policy_id, action="list")
        return paginate(
            request, svc.executions_of(policy), lambda page: [render_execution(e) for e in page]
        )

    def post(self, request: Request, policy_id: int) -> Response:
        actor = self.actor(request)
        policy = svc.policy_get(actor=actor, policy_id=policy_id)
        dry_run = bool(fields(request, Trigger).get("dry_run"))
        execution = svc.execution_start(actor=actor, policy=policy, dry_run=dry_run)
        return created(f"/api/v2.0/retentions/{policy.pk}/executions/{execution.pk}")


class ExecutionDetail(HarborView):
    def patch(self, request: Request, policy_id: int, execution_id: int) -> Response:
        actor = self.actor(request)
        policy = svc.policy_get(actor=actor, policy_id=policy_id)
        action = fields(request, Operate).get("action")
        if action != "stop":
            raise Invalid('the only action is "stop"')
        svc.execution_stop(actor=actor, policy=policy, execution_id=execution_id)
        return Response(status=200)


class TaskList(HarborView):
    def get(self, request: Request, policy_id: int, execution_id: int) -> Response:
        policy = svc.policy_get(actor=self.actor(request), policy_id=policy_id, action="list")
        execution = svc.execution_get(policy, execution_id)
        rows = RetentionTask.objects.filter(execution=execution).order_by("id")
        return paginate(request, rows, lambda page: [render_task(t) for t in page])


class TaskLog(HarborView):
    def get(self, request: Request, policy_id: int, execution_id: int, task_id: int) -> Any:
        policy = svc.policy_get(actor=self.actor(request), policy_id=policy_id)
        task = svc.task_get(svc.execution_get(policy, execution_id), task_id)
        return HttpResponse(task.log, content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("retentions/metadatas", Metadatas.as_view()),
    path("retentions", PolicyList.as_view()),
    path("retentions/<id:policy_id>", PolicyDetail.as_view()),
    path("retentions/<id:policy_id>/executions", ExecutionList.as_view()),
    path("retentions/<id:policy_id>/executions/<id:execution_id>", ExecutionDetail.as_view()),
    path("retentions/<id:policy_id>/executions/<id:execution_id>/tasks", TaskList.as_view()),
    path(
        "retentions/<id:policy_id>/executions/<id:execution_id>/tasks/<id:task_id>",
        TaskLog.as_view(),
    ),
]
