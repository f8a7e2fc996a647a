"""Parsing of the query language (SPEC section 4) against a resource's whitelists.

Pure functions over the query's (name, value) pairs: every name is checked against the
`ResourceSpec`, every value is parsed into Python values, and a bad one raises `BadQuery` (400)
or, for paging, `ValidationFailed` (422). Nothing here knows about SQL. The results are the
wire-format-free values of `supportdesk.queries`, which services and repositories take.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from supportdesk import timestamps
from supportdesk.errors import BadQuery, ResourceNotFound, ValidationFailed
from supportdesk.jsonapi.fields import TEXT_BOOLEANS
from supportdesk.jsonapi.spec import FilterKind, ResourceSpec
from supportdesk.queries import (
    DEFAULT_PER_PAGE,
    FEED_LIMIT,
    FeedQuery,
    ListQuery,
    ResourceQuery,
    SortKey,
)

MAX_PER_PAGE = 100
MAX_LIST_VALUES = 100
MAX_ID = 2**63 - 1

_FAMILY = re.compile(r"^(filter|fields)\[([^\[\]]*)\]$")
_RECOGNISED = {"page", "per_page", "sort", "include"}


def parse_id(text: str, type_: str) -> int:
    """A path id: digits only, within BIGINT range; anything else names no resource (404)."""
    if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID:
        return int(text)
    raise ResourceNotFound(type_, text[:40])


def _single(
    pairs: Iterable[tuple[str, str]], names: frozenset[str] | set[str] = _RECOGNISED
) -> dict[str, str]:
    """The recognised parameters, each at most once (a repeated one is ambiguous: 400)."""
    seen: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise BadQuery("The query contains a NUL character.")
        recognised = name in names or _FAMILY.match(name)
        if not recognised:
            if name.startswith(("filter", "fields")):
                raise BadQuery(
                    f"Malformed query parameter `{name}`: use {name.split('[')[0]}[name]=value."
                )
            continue
        if name in seen:
            raise BadQuery(f"The query parameter `{name}` is given more than once.")
        seen[name] = value
    return seen


def _names(value: str, what: str) -> list[str]:
    names = [part.strip() for part in value.split(",")]
    if any(not name for name in names):
        raise BadQuery(f"The {what} parameter must be a comma-separated list of names.")
    return names


def _parse_include(params: Mapping[str, str], spec: ResourceSpec) -> tuple[str, ...]:
    value = params.get("include")
    if value is None or not value.strip():
        return ()
    names = _names(value, "include")
    unknown = [name for name in names if name not in spec.includes]
    if unknown:
        raise BadQuery(
            f"Requested include(s) `{', '.join(unknown)}` are not allowed. "
            f"Allowed include(s) are `{', '.join(spec.includes)}`."
        )
    return tuple(dict.fromkeys(names))


def _parse_fields(
    params: Mapping[str, str], specs: Mapping[str, ResourceSpec]
) -> dict[str, frozenset[str]]:
    fields: dict[str, frozenset[str]] = {}
    for name, value in params.items():
        match = _FAMILY.match(name)
        if not match or match.group(1) != "fields":
            continue
        type_ = match.group(2)
        spec = specs.get(type_)
        if spec is None:
            raise BadQuery(
                f"Unknown resource type `{type_}` in fields[...]. "
                f"Allowed types are `{', '.join(specs)}`."
            )
        wanted = _names(value, f"fields[{type_}]") if value.strip() else []
        known = set(spec.attribute_names) | {rel.name for rel in spec.relationships}
        unknown = [f for f in wanted if f not in known]
        if unknown:
            raise BadQuery(
                f"Requested field(s) `{', '.join(unknown)}` are not allowed for `{type_}`. "
                f"Allowed fields are `{', '.join(sorted(known))}`."
            )
        fields[type_] = frozenset(wanted)
    return fields


def _parse_int(text: str, what: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise BadQuery(f"The {what} filter takes positive integers; `{text}` is not one.")
    return int(text)


_PRESENCE = {"null": False, "notnull": True}


def _parse_choice(name: str, value: str, choices: Mapping[str, bool]) -> tuple[bool, ...]:
    """One of `choices` (case-insensitive); empty means no condition."""
    text = value.strip().lower()
    if not text:
        return ()
    if text not in choices:
        raise BadQuery(
            f"The {name} filter takes `{'` or `'.join(choices)}`; `{value.strip()}` is not one."
        )
    return (choices[text],)


def _parse_filter_value(name: str, kind: FilterKind, value: str) -> Any:
    if kind is FilterKind.TEXT:
        return value.strip()
    if kind is FilterKind.TIMESTAMP:
        if not value.strip():
            return ""  # like every empty filter: no condition
        try:
            return timestamps.parse(value)
        except ValueError:
            raise BadQuery(
                f"The {name} filter takes an ISO 8601 date or timestamp; `{value}` is not one."
            ) from None
    nullable = kind in (FilterKind.INTS_OR_NULL, FilterKind.STRINGS_OR_NULL)
    if nullable and value.strip().lower() in ("", "null"):
        return (None,)
    if kind is FilterKind.BOOLEAN:
        return _parse_choice(name, value, TEXT_BOOLEANS)
    if kind is FilterKind.PRESENCE:
        return _parse_choice(name, value, _PRESENCE)
    parts = value.split(",")
    if len(parts) > MAX_LIST_VALUES:
        raise BadQuery(f"The {name} filter takes at most {MAX_LIST_VALUES} values.")
    if kind is FilterKind.STRINGS:
        return tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))
    if kind is FilterKind.STRINGS_OR_NULL:
        values = (part.strip() for part in parts if part.strip())
        return tuple(dict.fromkeys(None if v.lower() == "null" else v for v in values))
    return tuple(dict.fromkeys(_parse_int(part, name) for part in parts if part.strip()))


def _parse_filters(params: Mapping[str, str], spec: ResourceSpec) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in params.items():
        match = _FAMILY.match(name)
        if not match or match.group(1) != "filter":
            continue
        filter_name = match.group(2)
        declared = spec.filter_named(filter_name)
        if declared is None:
            unknown.append(filter_name)
            continue
        parsed = _parse_filter_value(filter_name, declared.kind, value)
        if parsed not in ((), ""):
            filters[filter_name] = parsed
    if unknown:
        raise BadQuery(
            f"Requested filter(s) `{', '.join(unknown)}` are not allowed. "
            f"Allowed filter(s) are `{', '.join(f.name for f in spec.filters)}`."
        )
    return filters


def _parse_sort(params: Mapping[str, str], spec: ResourceSpec) -> tuple[SortKey, ...]:
    value = params.get("sort")
    if value is None or not value.strip():
        return ()
    keys = [SortKey(name.removeprefix("-"), name.startswith("-")) for name in _names(value, "sort")]
    unknown = [key.name for key in keys if key.name not in spec.sorts]
    if unknown:
        raise BadQuery(
            f"Requested sort(s) `{', '.join(unknown)}` are not allowed. "
            f"Allowed sort(s) are `{', '.join(spec.sorts)}`."
        )
    return tuple({key.name: key for key in keys}.values())


def _parse_paging(params: Mapping[str, str]) -> tuple[int, int]:
    errors: dict[str, list[str]] = {}
    values = {"page": 1, "per_page": DEFAULT_PER_PAGE}
    for name in values:
        text = params.get(name)
        if text is None:
            continue
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            label = name.replace("_", " ")
            errors[name] = [f"The {label} field must be an integer of at least 1."]
        elif int(text) > MAX_ID:
            errors[name] = [f"The {name.replace('_', ' ')} field is too large."]
        else:
            values[name] = int(text)
    if errors:
        raise ValidationFailed(errors)
    return values["page"], min(values["per_page"], MAX_PER_PAGE)


def parse_resource_query(
    pairs: Iterable[tuple[str, str]], spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ResourceQuery:
    """`include` and `fields` of a single-resource request. `specs` maps every type that may
    appear in the document (the primary type and the includable ones) to its spec."""
    params = _single(pairs)
    return ResourceQuery(include=_parse_include(params, spec), fields=_parse_fields(params, specs))


def parse_list_query(
    pairs: Iterable[tuple[str, str]], spec: ResourceSpec, specs: Mapping[str, ResourceSpec]
) -> ListQuery:
    """The whole query of a collection request. Filters are checked before includes and sorts,
    as Paymenter does, so a client sees the same first error."""
    params = _single(pairs)
    filters = _parse_filters(params, spec)
    include = _parse_include(params, spec)
    sort = _parse_sort(params, spec)
    fields = _parse_fields(params, specs)
    page, per_page = _parse_paging(params)
    return ListQuery(
        include=include, fields=fields, page=page, per_page=per_page, filters=filters, sort=sort
    )


MAX_FEED_LIMIT = 1000
MAX_WAIT_S = 30
_FEED_PARAMS = {
    "after": (0, MAX_ID, 0),
    "limit": (1, MAX_FEED_LIMIT, FEED_LIMIT),
    "wait": (0, MAX_WAIT_S, 0),
}


def parse_feed_query(pairs: Iterable[tuple[str, str]], spec: ResourceSpec) -> FeedQuery:
    """`after` (absent: None), `limit` and `wait` within their ranges (422 otherwise), and the
    spec's filters (400 for an unknown one)."""
    params = _single(pairs, set(_FEED_PARAMS))
    filters = _parse_filters(params, spec)
    errors: dict[str, list[str]] = {}
    values: dict[str, int | None] = {}
    for name, (low, high, default) in _FEED_PARAMS.items():
        text = params.get(name, "").strip()
        if not text:
            values[name] = None if name == "after" else default
        elif text.isascii() and text.isdigit() and low <= int(text) <= high:
            values[name] = int(text)
        else:
            errors[name] = [f"The {name} field must be an integer from {low} to {high}."]
    if errors:
        raise ValidationFailed(errors)
    limit, wait = values["limit"], values["wait"]
    assert limit is not None and wait is not None
    return FeedQuery(after=values["after"], limit=limit, wait=wait, filters=filters)
