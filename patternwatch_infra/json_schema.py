"""API Gateway request models generated from the handlers' pydantic types, in JSON Schema draft-04.

API Gateway validates bodies against JSON Schema draft-04; pydantic writes draft 2020-12. `draft4`
converts one to the other, so the schema at the edge is derived from the type the handler parses
with and the two cannot drift:

- `$ref`s into `$defs` are inlined (API Gateway models cannot reference local definitions);
- numeric `exclusiveMinimum: x` / `exclusiveMaximum: x` become `minimum: x, exclusiveMinimum: true`;
- `const: x` becomes `enum: [x]`;
- optional fields are simply absent from `required` (pydantic already does that); a field that may be
  null keeps its `{"type": "null"}` alternative, which draft-04 has;
- titles and descriptions below the root are dropped (the root title names the model).

Anything else draft-04 does not know (a newer keyword in a future model) stops synthesis with the
keyword's name, rather than giving API Gateway a schema it would read differently.
"""
from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

DRAFT_04 = "http://json-schema.org/draft-04/schema#"
# Draft-04 validation and annotation keywords this converter may hand to API Gateway.
DRAFT_04_KEYWORDS = frozenset(
    {
        "$schema", "title", "description", "default", "type", "enum",
        "properties", "required", "additionalProperties", "minProperties", "maxProperties", "patternProperties",
        "items", "additionalItems", "minItems", "maxItems", "uniqueItems",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "minLength", "maxLength", "pattern", "format",
        "anyOf", "oneOf", "allOf", "not",
    }
)
# Keywords whose value is a map of names to schemas, or a list of schemas.
_SCHEMA_MAPS = ("properties", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")


def draft4(python_type: Any, *, title: str) -> dict[str, Any]:
    """The draft-04 schema of `python_type` (a pydantic model or any type TypeAdapter takes), named `title`."""
    generated = TypeAdapter(python_type).json_schema(mode="validation")
    definitions = generated.pop("$defs", {})
    converted = _convert(generated, definitions, root=True)
    converted.pop("title", None)
    return {"$schema": DRAFT_04, "title": title, **converted}


def _convert(schema: dict[str, Any], definitions: dict[str, Any], *, root: bool = False) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        merged = {**definitions[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return _convert(merged, definitions)
    out: dict[str, Any] = {}
    for keyword, value in schema.items():
        if keyword in ("title", "description") and not root:
            continue
        if keyword == "const":
            out["enum"] = [value]
        elif keyword in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if keyword == "exclusiveMinimum" else "maximum"] = value
            out[keyword] = True
        elif keyword in _SCHEMA_MAPS:
            out[keyword] = {name: _convert(sub, definitions) for name, sub in value.items()}
        elif keyword in _SCHEMA_LISTS:
            out[keyword] = [_convert(sub, definitions) for sub in value]
        elif keyword in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[keyword] = _convert(value, definitions)
        elif keyword in DRAFT_04_KEYWORDS:
            out[keyword] = value
        else:
            raise ValueError(f"JSON Schema keyword {keyword!r} has no draft-04 equivalent for API Gateway models")
    return out
