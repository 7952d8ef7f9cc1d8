"""Property-based fuzzing of the files rdusim reads (issue 25): YAML structure (anchors, aliases, duplicate
keys, wrong types) through the strict loader and platform files, trace rows, and calibrate-gpu --from-json
measurements. Each input either loads into values the models can use, or gives one ConfigError line; never a
traceback, hang, or content of the file in the message. ``@example`` holds every case the issue lists."""
from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from baselines import calibrate
from rdusim.core.errors import ConfigError
from rdusim.core.loader import StrictLoader, parse_json, parse_yaml
from rdusim.core.platforms import FIELD_BOUNDS, load_platform
from rdusim.scenarios.predict import predict_one
from rdusim.scenarios.serve import MAX_TIME_S, read_trace
from test_fuzz import time_limit

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = ROOT / "rdusim/data/platforms"
MARK = "SECRET:$6$MARK:19000"  # shadow-like text put in values and keys: no error may show it


class Yaml12Floats(yaml.SafeLoader):
    """PyYAML's safe loader reading 1e-09 as a float, as the strict loader does (YAML 1.2): the reference."""


Yaml12Floats.add_implicit_resolver("tag:yaml.org,2002:float", StrictLoader.yaml_implicit_resolvers["1"][-1][1],
                                   list("-+0123456789."))


def one_line(err: ConfigError) -> None:
    text = str(err)
    assert "\n" not in text and ": got " in text and "; allowed: " in text, text
    assert MARK not in text, text


# ---------------------------------------------------------------------------------- YAML structure
scalars = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.none(), st.text(max_size=8), st.just(MARK))
keys = st.sampled_from(["a", "b", "name", "kind", "devices", "x y", MARK, "1", "true"])
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


@st.composite
def yaml_documents(draw):
    """(text, has_duplicate_key) of a random tree rendered as YAML, with anchors, aliases and duplicates."""
    anchors: list[str] = []
    state = {"dup": False}

    def render(node) -> str:
        choice = draw(st.integers(0, 6))
        if choice == 1 and anchors:  # an alias in place of this node
            return f"*{draw(st.sampled_from(anchors))}"
        if isinstance(node, dict):
            items = [(json.dumps(k), render(v)) for k, v in node.items()]
            if items and draw(st.integers(0, 5)) == 0:
                items.append((items[0][0], render(draw(scalars))))
                state["dup"] = True
            text = "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
        elif isinstance(node, list):
            text = "[" + ", ".join(render(v) for v in node) + "]"
        else:
            text = json.dumps(node) if not (isinstance(node, float) and not math.isfinite(node)) else "0"
        if choice == 0:
            name = f"a{len(anchors)}"
            anchors.append(name)
            return f"&{name} {text}"
        return text

    body = render(draw(st.dictionaries(keys, trees, min_size=1, max_size=5)))
    return body, state["dup"]


@settings(max_examples=100)
@given(doc=yaml_documents())
@example(doc=("{a: &x [1, 2], b: *x, a: 3}", True))
@example(doc=("{" + ", ".join(f"k{i}: &k{i} [" + ", ".join([f"*k{i - 1}" if i else "1"] * 9) + "]" for i in range(10))
              + "}", False))
def test_yaml_structure(doc):
    text, duplicate = doc
    with time_limit(20):
        try:
            value = parse_yaml(text, "fuzz.yaml")
        except ConfigError as err:
            one_line(err)
            return
    assert not duplicate, "a duplicate key was accepted"
    assert value == yaml.load(text, Loader=Yaml12Floats)  # what it accepts, it reads as YAML does


# ---------------------------------------------------------------------------------- platform files
def _platform_text(base: str, data) -> str:
    """A built-in platform file with one structural change: a block of the wrong type, a duplicate key, an
    anchor bomb, a fractional count, a value beyond its bound or a non-string name."""
    text = (PLATFORMS / f"{base}.yaml").read_text()
    lines = text.splitlines()
    kind = data.draw(st.sampled_from(["type", "duplicate", "bomb", "value", "none"]))
    if kind == "type":
        i = data.draw(st.sampled_from([j for j, line in enumerate(lines) if line.rstrip().endswith(":") or ": " in line]))
        key = lines[i].split(":")[0]
        wrong = data.draw(st.sampled_from(["[1, 2]", "'text'", "3.5", "true", "null", "{a: 1}", f"'{MARK}'", "[]"]))
        lines[i] = f"{key}: {wrong}"
        text = "\n".join(lines)
    elif kind == "duplicate":
        i = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(i + 1, lines[i])
        text = "\n".join(lines)
    elif kind == "bomb":
        text = "x0: &x0 [lol, lol]\n" + "".join(f"x{i}: &x{i} [*x{i-1}, *x{i-1}, *x{i-1}, *x{i-1}]\n" for i in range(1, 12)) + text
    elif kind == "value":
        numeric = [j for j, line in enumerate(lines) if line.startswith("    ") and ": " in line
                   and line.split(": ")[1].split("#")[0].strip().replace(".", "", 1).isdigit()]
        if numeric:
            i = data.draw(st.sampled_from(numeric))
            value = data.draw(st.sampled_from(["1.0e+30", "1.0e-30", "0.5", "-1", "1.5", "0", "1.0e-310", "1e309"]))
            lines[i] = lines[i].split(": ")[0] + ": " + value
        text = "\n".join(lines)
    return text


@settings(max_examples=100)
@given(base=st.sampled_from(["h100-sxm", "sn40l", "dgx-h100", "sn40l-node"]), data=st.data())
def test_platform_structure(base, data):
    text = _platform_text(base, data)
    with tempfile.TemporaryDirectory() as tmp:
        for ref in ("h100-sxm", "sn40l"):  # node files name their device file: keep the built-in one
            (Path(tmp) / f"{ref}.yaml").write_text((PLATFORMS / f"{ref}.yaml").read_text())
        path = Path(tmp) / f"{base}-fuzz.yaml"
        path.write_text(text)
        with time_limit(20):
            try:
                p = load_platform(str(path))
            except ConfigError as err:
                one_line(err)
                return
            finally:
                load_platform.cache_clear()
    for name, value in p.device.items():  # what loads is within the physical bounds
        assert math.isfinite(value)
        if name in FIELD_BOUNDS:
            assert FIELD_BOUNDS[name][0] <= value <= FIELD_BOUNDS[name][1], (name, value)
    assert isinstance(p.name, str) and 1 <= p.devices <= 4096


# ---------------------------------------------------------------------------------- trace rows
cells = st.one_of(st.integers(0, 5).map(str), st.floats(0, 100, allow_nan=False).map(repr),
                  st.sampled_from(["", " ", "True", "false", "nan", "inf", "1_0", "８", "１", "1.5", "-1", "1e3",
                                   "3.0", "\"2\"", MARK, "0x1", "٣", "1e999"]))


@st.composite
def trace_files(draw):
    header = draw(st.lists(st.sampled_from(["arrival_s", "expert", "prompt", "note"]), min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(cells, min_size=max(0, len(header) - 1), max_size=len(header) + 1), max_size=12))
    return ",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows)


@settings(max_examples=100)
@given(text=trace_files(), experts=st.integers(1, 8))
@example(text="arrival_s,expert\n0.1,1\n0.2\n", experts=4)            # ragged
@example(text="arrival_s,expert\n0.1,True\n", experts=4)              # boolean expert id
@example(text="arrival_s,expert,expert\n0.1,1,1\n", experts=4)        # duplicate column
@example(text="arrival_s,expert\n８,1\n", experts=4)                  # full-width digit
@example(text=f"{MARK}:$6$x:19000\n", experts=4)                      # /etc/shadow-like content
def test_trace_rows(text, experts):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_text(text)
        with time_limit(20):
            try:
                trace = read_trace(str(path), experts)
            except ConfigError as err:
                one_line(err)
                return
    lines = [line for line in text.splitlines()[1:] if line]
    header = text.splitlines()[0].split(",")
    assert len(set(header)) == len(header)
    assert len(trace) == len(lines) and all(line.count(",") == len(header) - 1 for line in lines)
    arrival, expert = trace["arrival_s"].to_numpy(), trace["expert"].to_numpy()
    assert np.all(np.diff(arrival) >= 0) and np.all((arrival >= 0) & (arrival <= MAX_TIME_S))
    assert expert.dtype == np.int64 and np.all((expert >= 0) & (expert < experts))


# ---------------------------------------------------------------------------------- JSON measurements
BASE = {"device": "cuda", "name": "Fuzz GPU", "memory_GB": 80.0, "hbm": {"d2d_GBps_rw": 3000.0},
        "gemm": {"bf16_TFLOPs": 700.0, "dtype": "bfloat16"},
        "launch": {"eager_us_per_kernel": 8.0, "graph_us_per_kernel": 1.2},
        "h2d": {"pinned_GBps": 50.0, "pageable_GBps": 8.0},
        "sweep": {"stream_copy": {"bytes": [1e6, 1e7, 1e8], "time_us": [3.0, 6.0, 36.0]},
                  "stream_gemv": {"bytes": [1e6, 1e7, 1e8], "time_us": [4.0, 8.0, 45.0]}}}
PATHS = [("memory_GB",), ("hbm",), ("hbm", "d2d_GBps_rw"), ("gemm",), ("gemm", "bf16_TFLOPs"), ("launch",),
         ("launch", "eager_us_per_kernel"), ("launch", "graph_us_per_kernel"), ("h2d", "pinned_GBps"), ("sweep",),
         ("sweep", "stream_copy"), ("sweep", "stream_copy", "time_us"), ("sweep", "stream_gemv", "bytes"),
         ("models",), ("name",), ("device",), ("tiny",)]
json_values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**30, 10**30),
                        st.sampled_from([0, 1e-30, 1e30, 3.6e9, -1.0, 1e-310]), st.text(max_size=5), st.booleans(),
                        st.none(), st.lists(st.floats(1e-3, 1e7), max_size=3), st.just({}), st.just([]),
                        st.just({"a": {"b": [1, {"c": MARK}]}}))


@settings(max_examples=60)
@given(path=st.sampled_from(PATHS), value=json_values)
@example(path=("memory_GB",), value=1e30)                      # HBM of 1e30 GB
@example(path=("sweep", "stream_copy", "time_us"), value=[1e-24, 1e-24, 1e-24])  # 1e-30 s kernels
@example(path=("sweep", "stream_copy", "time_us"), value=[1e36, 1e36, 1e36])     # 1e30 s kernels
@example(path=("launch", "eager_us_per_kernel"), value=3.6e9)  # an hour per launch
@example(path=("gemm",), value=[1, 2])
@example(path=("sweep",), value="x")
@example(path=("models",), value=[])
def test_json_measurements(path, value):
    data = json.loads(json.dumps(BASE))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "m.json", Path(tmp) / "p.yaml"
        raw.write_text(json.dumps(data))
        err = io.StringIO()
        with time_limit(30), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = calibrate.main(["--from-json", str(raw), "--out", str(out)])
        if rc == 2:
            text = err.getvalue()
            assert text.count("\n") == 1 and MARK not in text and "Traceback" not in text, text
            assert not out.exists()
            return
        assert rc == 0, err.getvalue()
        r = predict_one(str(out), "llama2-7b", 1, 1, 32, 4, "cuda-graph")  # what it accepts, predict accepts
        assert r["fits"] and 0 < r["ttft_ms"] < 1e9 and 0 < r["decode_ms_per_token"] < 1e9


@given(depth=st.integers(0, 40), duplicate=st.booleans())
def test_json_nesting_and_duplicates(depth, duplicate):
    text = '{"a": ' * depth + ('{"k": 1, "k": 2}' if duplicate else "1") + "}" * depth
    try:
        parse_json(text, "m.json")
    except ConfigError as err:
        one_line(err)
        assert duplicate or depth > 20
        return
    assert not duplicate and depth <= 20
