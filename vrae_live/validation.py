"""One line from a pydantic ValidationError, in the words of the file that was wrong (TOML or JSON)."""

from __future__ import annotations

import re
from typing import Any, Collection, Mapping, Sequence

from pydantic import ValidationError


def _shown(value: Any, style: str = "toml") -> str:
    """A value as the error message shows it: TOML/JSON words, never a page of text."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str):
        text = f"the string {value!r}"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, (list, tuple)):
        text = "a list"
    elif isinstance(value, Mapping):
        text = "an object" if style == "json" else "a table"
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _name(key: str) -> str:
    """A key as written, or quoted when it holds what would break the one line (a newline, a space)."""
    return key if re.fullmatch(r"[\w.-]+", key) else repr(key)


def field_path(loc: Sequence[str | int], style: str = "toml", sections: Collection[str] = ()) -> str:
    """``("model", "hidden")`` as ``[model] hidden`` (style toml, "model" in ``sections``) or
    ``model.hidden`` (style json)."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{_name(part)}" if path else _name(part))
    if style == "toml" and loc and loc[0] in sections:
        rest = field_path(loc[1:], "json")
        return f"[{loc[0]}] {rest}" if rest else f"[{loc[0]}]"
    return path


_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a table",
    "dataclass_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_LIMITS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def _problem(error: Mapping[str, Any], style: str, known: Mapping[tuple[str, ...], Sequence[str]],
             sections: Collection[str]) -> str:
    kind, loc, value, ctx = error["type"], error["loc"], error.get("input"), error.get("ctx") or {}
    if kind in _EXPECTED:
        expected = _EXPECTED[kind].replace("a table", "an object") if style == "json" else _EXPECTED[kind]
        return f"expected {expected}, got {_shown(value, style)}"
    if kind in ("missing", "missing_argument", "missing_keyword_only_argument"):
        return "missing"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = tuple(p for p in loc[:-1] if not isinstance(p, int))
        noun = "section" if not parent and () in known else "setting" if len(parent) == 1 and parent[0] in sections else "key"
        names = known.get(parent)
        return f"unknown {noun}" + (f"; known: {', '.join(names)}" if names else "")
    if kind in _LIMITS:
        key, words = _LIMITS[kind]
        return f"must be {words} {ctx.get(key)}, not {_shown(value, style)}"
    if kind == "finite_number":
        return f"must be a finite number, not {_shown(value, style)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        if isinstance(value, str):
            return f"unknown {loc[-1] if loc else 'value'} {value!r}; known: {expected}"
        return f"expected one of {expected}, got {_shown(value, style)}"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"has {ctx.get('actual_length')} item(s), expected {'at least' if kind == 'too_short' else 'at most'} {limit}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def error_message(err: ValidationError, style: str = "toml", known: Mapping[tuple[str, ...], Sequence[str]] = {},
                  sections: Collection[str] = ()) -> str:
    """Every problem pydantic found, one line: ``[model] hidden: expected an integer, got ...``.

    ``known``: the names allowed at each path (``()`` for the top level), listed after an unknown one.
    ``sections``: the top-level tables whose entries are settings (``[model] hidden`` in TOML).
    """
    problems = []
    for error in err.errors(include_url=False):
        where = field_path(error["loc"], style, sections)
        problem = _problem(error, style, known, sections)
        problems.append(f"{where}: {problem}" if where else problem)
    return "; ".join(problems)
