"""Harbor's password policy: 8-128 characters with upper case, lower case and a digit."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

POLICY = (
    "8-128 characters, with at least one upper-case letter, one lower-case letter and one digit"
)


def password_ok(password: str) -> bool:
    return (
        8 <= len(password) <= 128
        and re.search(r"[A-Z]", password) is not None
        and re.search(r"[a-z]", password) is not None
        and re.search(r"[0-9]", password) is not None
    )


class HarborPasswordPolicy:
    def validate(self, password: str, user: Any = None) -> None:
        if not password_ok(password):
            raise ValidationError(f"password must have {POLICY}", code="password_policy")

    def get_help_text(self) -> str:
        return f"Your password must have {POLICY}."
