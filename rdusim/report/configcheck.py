"""Validate a pipeline configuration against its JSON schema with one readable line per problem."""
from __future__ import annotations

import jsonschema
import yaml

from rdusim.core.errors import ConfigError


def _path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _allowed(error) -> str:
    schema = error.schema
    if "enum" in schema:
        return ", ".join(map(str, schema["enum"]))
    if error.validator == "additionalProperties":
        return "the keys " + ", ".join(sorted(schema.get("properties", {})))
    bits = [f"{k} {schema[k]}" for k in ("type", "minimum", "maximum", "exclusiveMaximum", "minItems") if k in schema]
    return ", ".join(bits) or schema.get("description", "see the schema")


def check_config(config: dict, schema_file: str) -> None:
    """Raise :class:`ConfigError` naming the first invalid field, its value and the allowed values."""

    with open(schema_file) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    first = errors[0]
    given = first.instance
    if first.validator == "additionalProperties":
        given = sorted(set(first.instance) - set(first.schema.get("properties", {})))
    elif first.validator == "required":
        given = "missing: " + first.message.split("'")[1]
    raise ConfigError(f"config {_path(first)}", given, _allowed(first))
