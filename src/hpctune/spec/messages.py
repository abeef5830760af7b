"""A pydantic validation error as one line naming the dotted key at fault, for example
``search.cv.splits: must be >= 2; got 1``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import SpecError
from .schema import Job


def spec_error(exc: ValidationError) -> SpecError:
    """The first validation error as one line naming its dotted key."""
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) or "spec"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return SpecError(key, f"unknown key{hint}")
    if kind == "missing":
        return SpecError(key, "is required")
    if kind == "literal_error":
        return SpecError(key, f"must be one of {ctx.get('expected')}; got {value!r}")
    if kind in {"greater_than_equal", "greater_than"}:
        bound = ctx.get("ge", ctx.get("gt"))
        op = ">=" if kind == "greater_than_equal" else ">"
        return SpecError(key, f"must be {op} {bound}; got {value!r}")
    if kind in {"too_short"}:
        return SpecError(key, f"must not be empty; got {value!r}")
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return SpecError(key, f"must be a mapping; got {_short(value)}")
    if kind == "list_type":
        return SpecError(key, f"must be a list; got {_short(value)}")
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return SpecError(key, f"must be a whole number; got {_short(value)}")
    if kind in {"float_type", "float_parsing"}:
        return SpecError(key, f"must be a number; got {_short(value)}")
    if kind in {"bool_type", "bool_parsing"}:
        return SpecError(key, f"must be true or false; got {_short(value)}")
    if kind == "string_type":
        return SpecError(key, f"must be a string; got {_short(value)}")
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return SpecError(key, message[:1].lower() + message[1:])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: list[str]) -> list[str]:
    model: Any = Job
    for part in loc:
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]
