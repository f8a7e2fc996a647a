"""Declarations of resources: what a type's attributes, relationships, filters, sorts and
includes are. Each resource package declares one `ResourceSpec`; parsing, rendering and the
OpenAPI document all read it, so a name is whitelisted in exactly one place."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class FilterKind(enum.Enum):
    INTS = "comma-separated integers; any of them matches"
    INTS_OR_NULL = "comma-separated integers, or `null` (or empty) for none"
    STRINGS = "comma-separated values; any of them matches"
    STRINGS_OR_NULL = "comma-separated values, `null` among them for none; empty means `null`"
    TEXT = "free text"
    TIMESTAMP = "ISO 8601 date or timestamp (UTC if no offset)"
    BOOLEAN = "`true` or `false` (also `1` or `0`)"
    PRESENCE = "`null` for rows without a value, `notnull` for rows with one"


@dataclass(frozen=True)
class Filter:
    name: str
    kind: FilterKind
    description: str


@dataclass(frozen=True)
class Relationship:
    name: str
    type: str
    many: bool
    # For a to-one relationship: the attribute holding the related id.
    key: str | None
    # The permission a key needs to `include` it.
    permission: str


@dataclass(frozen=True)
class ResourceSpec:
    type: str
    # attribute name -> JSON schema of its value (for the OpenAPI document)
    attributes: dict[str, dict[str, Any]]
    relationships: tuple[Relationship, ...] = ()
    filters: tuple[Filter, ...] = ()
    sorts: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    # read-only attributes the server derives from other rows (ticket metrics): in `data`,
    # never in an event's `changes`
    derived: frozenset[str] = frozenset()
    attribute_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attribute_names", tuple(self.attributes))

    def relationship(self, name: str) -> Relationship:
        return next(rel for rel in self.relationships if rel.name == name)

    def relationship_by_key(self, key: str) -> Relationship:
        return next(rel for rel in self.relationships if rel.key == key)

    def filter_named(self, name: str) -> Filter | None:
        return next((f for f in self.filters if f.name == name), None)


def id_schema(nullable: bool = False) -> dict[str, Any]:
    return {"type": ["integer", "null"] if nullable else "integer", "minimum": 1}


def string_schema(nullable: bool = False, max_length: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"] if nullable else "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def boolean_schema() -> dict[str, Any]:
    return {"type": "boolean"}


def count_schema() -> dict[str, Any]:
    return {"type": "integer", "minimum": 0}


def timestamp_schema(nullable: bool = False) -> dict[str, Any]:
    return {
        "type": ["string", "null"] if nullable else "string",
        "format": "date-time",
        "example": "2024-01-15T10:30:00.000000Z",
    }
