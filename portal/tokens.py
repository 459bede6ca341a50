"""My tokens: a signed-in user's personal access tokens (docs/tokens.md) —
listed with their last use, created with the robots' permission picker (the
secret shown this once, in a page no cache keeps), revoked. An admin view
(the admin's sign-in, header and language switch) calling the same services
as the API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import access, identity
from accounts.access import Actor
from accounts.admin import robot_permissions
from accounts.adminsite import SERVICE_ERRORS, refusal, registry_host, site
from accounts.models import Project
from accounts.services.pats import token_create, token_revoke, tokens_visible
from portal.projects import permission_choices

EVERY_PROJECT = "*"
PROJECT_CHOICES = 200


def project_choices(actor: Actor) -> list[tuple[str, str]]:
    """Every project the user may see (those it is a member of first), or all
    of them: a token on every project is cut to the user's rights when used."""
    names = access.visible_projects(actor).order_by("name").values_list("name", flat=True)
    return [
        (EVERY_PROJECT, gettext("Every project I may use")),
        *((name, name) for name in names[:PROJECT_CHOICES]),
    ]


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    duration = forms.IntegerField(
        label=_("Days until it expires"), initial=90, help_text=_("-1 for never.")
    )
    project = forms.ChoiceField(label=_("Project"))
    access = forms.MultipleChoiceField(
        label=_("Permissions"),
        choices=permission_choices,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, actor: Actor, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = project_choices(actor)  # type: ignore[attr-defined]


class RevokeForm(forms.Form):
    token = forms.IntegerField()


def my_tokens(request: HttpRequest) -> HttpResponseBase:
    if not (request.user.is_authenticated and request.user.is_active):
        return redirect_to_login(request.get_full_path())
    actor = identity.actor_of_user(request.user)
    form = TokenForm(actor)
    shown = None
    refused = ""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "revoke":
            revoke = RevokeForm(request.POST)
            if revoke.is_valid():
                try:
                    token_revoke(actor=actor, token_id=revoke.cleaned_data["token"])
                except SERVICE_ERRORS as exc:
                    refused = refusal(exc)
                else:
                    return redirect(request.path)
        elif action == "create":
            form = TokenForm(actor, request.POST)
            if form.is_valid():
                data = form.cleaned_data
                project = (
                    None
                    if data["project"] == EVERY_PROJECT
                    else Project.objects.filter(name=data["project"]).first()
                )
                try:
                    token, secret = token_create(
                        actor=actor,
                        name=data["name"],
                        permissions=robot_permissions(project, data["access"], []),
                        duration=data["duration"],
                    )
                except SERVICE_ERRORS as exc:
                    form.add_error(None, refusal(exc))
                else:
                    shown = {
                        "name": token.name,
                        "secret": secret,
                        "login": f"docker login {registry_host(request)} -u {actor.name}",
                    }
                    form = TokenForm(actor)
    tokens = tokens_visible(actor=actor, user_id=actor.id).order_by("-created_at", "-id")
    context = {
        **site.each_context(request),
        "title": gettext("My tokens"),
        "tokens": tokens,
        "form": form,
        "shown": shown,
        "refused": refused,
    }
    response: HttpResponse = render(request, "portal/tokens.html", context)
    if shown:
        response["Cache-Control"] = "no-store"  # the secret is not kept by caches
    return response
