"""Validate a pipeline configuration: finite numbers, its JSON schema, then the bounds that follow from
the models and the simulators (context window, request and time limits), one readable line per problem."""
from __future__ import annotations

import math

import jsonschema

from benchmarks.models import get_model
from rdusim.core.loader import load_yaml, mapping
from rdusim.core.errors import ConfigError
from rdusim.scenarios.footprint import CoEDeployment
from rdusim.scenarios.serve import MAX_TIME_S


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


def check_config_file(path) -> dict:
    """Read a pipeline config file through the strict loader (size, aliases, duplicate keys, depth) and
    return it; :class:`ConfigError` names the file, the line and the key."""
    return mapping(f"config file {path}", load_yaml(path, f"config file {path}"), "a mapping of config sections",
                   optional=False)


def check_config(config: dict, schema_file: str) -> None:
    """Raise :class:`ConfigError` naming the first invalid field, its value and the allowed values."""
    _check_finite(config, "")
    schema = load_yaml(schema_file, "config schema")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        check_semantics(config)
        return
    first = errors[0]
    given = first.instance
    if first.validator == "additionalProperties":
        given = sorted(set(first.instance) - set(first.schema.get("properties", {})))
    elif first.validator == "required":
        given = "missing: " + first.message.split("'")[1]
    raise ConfigError(f"config {_path(first)}", given, _allowed(first))


def _check_finite(value, path: str) -> None:
    """NaN and infinities pass JSON-schema bounds (every comparison with NaN is false): refuse them first."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}.{i}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config {path or '(top level)'}", value, "a finite number")


def check_semantics(config: dict) -> None:
    """Bounds the schema cannot state: prompt + output tokens within the expert model's context window,
    and simulated arrivals within the serving simulator's time range. Also builds the CoE deployment,
    which checks the ``coe`` overrides."""
    coe = config.get("coe", {})
    dep = CoEDeployment.from_config(coe)
    window = get_model(dep.expert_model).context_window
    if window:
        room = window - dep.prompt_tokens
        lists = [("coe.output_tokens", coe.get("output_tokens", [])),
                 ("serving.gen", [config.get("serving", {}).get("gen", 1)])]
        lists += [(f"sweeps.{name}.gen", spec.get("gen", [])) for name, spec in config.get("sweeps", {}).items()]
        for field, values in lists:
            for v in values:
                if v > room:
                    raise ConfigError(f"config {field}", v, f"at most {room:,} output tokens ({dep.expert_model}'s context "
                                      f"window of {window:,} less the {dep.prompt_tokens}-token prompt)")
    s = config.get("serving")
    if s:
        cost = s["cost"]
        checks = [("serving.rates", r, s["requests"]) for r in s["rates"]]
        checks += [("serving.policy_study.rate", s["policy_study"]["rate"], s["requests"])]
        checks += [("serving.cost.target_rps", cost["target_rps"] / cost["max_nodes"], cost["requests"])]
        for field, rate, requests in checks:
            if requests / rate > MAX_TIME_S:
                raise ConfigError(f"config {field}", rate, f"at least {requests / MAX_TIME_S:g} requests/s per node: "
                                  f"{requests:,} requests must arrive within {MAX_TIME_S:g} s")
