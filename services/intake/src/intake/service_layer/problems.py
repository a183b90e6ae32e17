"""Problem details (RFC 9457) as intake's service layer states them, before any entry point
renders them: field paths are relative to the request body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from sanalpos_common.http import problem_body


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    code: str | None = None

    def document(self) -> dict[str, str]:
        out = {"field": self.field, "message": self.message}
        if self.code is not None:
            out["code"] = self.code
        return out


@dataclass(frozen=True)
class ProblemDetails:
    status: int
    slug: str
    title: str
    detail: str | None = None
    """None for a validation error: "invalid: <its fields>", prefixed like the fields."""
    errors: tuple[FieldError, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The problem's members (without `instance`, which only HTTP has)."""
        errors = [e.document() for e in self.errors]
        detail = self.detail
        if detail is None:
            detail = "invalid: " + ", ".join(e["field"] for e in errors)
        extra: dict[str, Any] = {"errors": errors} if errors else {}
        return problem_body(self.status, self.slug, self.title, detail, **extra, **self.extra)

    def under(self, prefix: str) -> ProblemDetails:
        """The same problem with its field paths under `prefix` (e.g. Kafka's `body.`)."""
        moved = tuple(replace(e, field=prefix + e.field) for e in self.errors)
        return replace(self, errors=moved)


class Refused(Exception):
    """A refusal that names its problem directly (e.g. a body that failed validation)."""

    def __init__(self, problem: ProblemDetails) -> None:
        super().__init__(problem.title)
        self.problem = problem


def invalid(*errors: FieldError, **extra: Any) -> ProblemDetails:
    return ProblemDetails(422, "validation-error", "Request is invalid", None, errors, extra)


def field_errors(exc: ValidationError, prefix: Sequence[str] = ()) -> tuple[FieldError, ...]:
    """The model's errors, never its input (it may hold card data)."""
    return tuple(
        FieldError(
            ".".join([*prefix, *(str(p) for p in err["loc"])]) or "<value>", err["msg"], err["type"]
        )
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    )


def not_found(what: str, name: str) -> ProblemDetails:
    return ProblemDetails(404, "not-found", f"No such {what}", f"{what} {name} not found")
