"""What the content API's views take, declared with the API's fields
(accounts/api/params.py): types are checked here, the rules (patterns,
decorations, limits) by the services."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.params import Flag, Integer, Text

INT32 = 2**31


class ImmutableSelector(serializers.Serializer):
    kind = Text(required=False)
    decoration = Text(required=False)
    pattern = Text(required=False)
    extras = Text(required=False, allow_null=True)


class ImmutableRule(serializers.Serializer):
    """Harbor's ImmutableRule. ``id``, ``template`` and ``params`` are checked
    for their types and not read (a rule sent back as GET gave it is accepted)."""

    id = Integer(required=False, allow_null=True)
    project_id = Integer(required=False, allow_null=True)
    priority = Integer(required=False, minimum=-INT32, maximum=INT32 - 1)
    disabled = Flag(required=False)
    action = Text(required=False)
    template = Text(required=False, allow_null=True)
    params = serializers.DictField(required=False, allow_null=True)
    tag_selectors = serializers.ListField(child=ImmutableSelector(), required=False)
    scope_selectors = serializers.DictField(
        child=serializers.ListField(child=ImmutableSelector()), required=False
    )
