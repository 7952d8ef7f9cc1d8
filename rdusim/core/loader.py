"""One loader for every file rdusim reads: size limit, strict YAML and JSON, types, and errors that never
echo what the file holds.

Every reader of the project (platforms, models, stacks, the pipeline config, traces, measurements,
caches) goes through this module:

* :func:`read_bytes` / :func:`read_text`: an existing regular file (not a directory or a device such as
  ``/dev/zero``) of at most ``max_bytes``; text must be UTF-8 without NUL bytes.
* :func:`load_yaml` / :func:`parse_yaml`: YAML through :class:`StrictLoader` (a ``yaml.SafeLoader``) that
  refuses more than :data:`MAX_ALIASES` aliases, documents that expand to more than :data:`MAX_NODES`
  nodes (the billion-laughs bomb), recursive aliases, nesting deeper than :data:`MAX_DEPTH`, and
  duplicate keys in any mapping (flow, block or a repeated section), naming the key and both lines.
* :func:`load_json` / :func:`parse_json`: JSON without ``NaN``/``Infinity``, without duplicate keys,
  nested at most :data:`MAX_DEPTH` deep.
* :func:`mapping`, :func:`string`: the type of a block checked before it is used.
* :func:`writable_file`: an output path that can be written, checked before any work is done.
* :func:`redact`: what an error may show of a value read from a file (numbers and short names; other
  text only as its length), so that ``--platform /etc/shadow`` never prints a line of it.

Every problem raises :class:`~rdusim.core.errors.ConfigError` with one line naming the path, the field
and the line number; parser messages are rebuilt from their position and kind, never quoted.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from rdusim.core.errors import ConfigError, Described

MAX_YAML_BYTES = 4 << 20      # platform, model, stack and config files are a few kB; 4 MiB is far above any
MAX_JSON_BYTES = 16 << 20     # a calibrate-gpu measurement is tens of kB
MAX_ALIASES = 64              # YAML aliases (*name) per document
MAX_NODES = 200_000           # YAML nodes per document once every alias is expanded
MAX_DEPTH = 20                # nesting of mappings and lists (the project's files nest at most 5 deep)
_NAME = re.compile(r"[A-Za-z0-9_.+\-/ ]{0,64}")


def _Hidden(text: str) -> Described:
    return Described(f"<text of {len(text)} characters>")


def redact(value):
    """``value`` as an error may show it: numbers, booleans, None and short plain names as they are; any
    other text as its length; containers as their type and size."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if _NAME.fullmatch(value) and not value.count("/") > 1 else _Hidden(value)
    if isinstance(value, (dict, list, tuple)):
        return Described(f"a {type(value).__name__} of {len(value)} items")
    return Described(type(value).__name__)


# ------------------------------------------------------------------------------------------ files
def read_bytes(path, field: str, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of ``path``: an existing, readable regular file of at most ``max_bytes``."""
    shown = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(field, shown, f"an existing {what}") from None
    except OSError as exc:
        raise ConfigError(field, shown, f"a readable {what} ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(field, shown, f"a {what}, not a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(field, shown, f"a regular {what} (not a device, pipe or socket)")
    if st.st_size > max_bytes:
        raise ConfigError(field, shown, f"a {what} of at most {max_bytes / 2**20:g} MiB (it has {st.st_size / 2**20:.1f} MiB)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(field, shown, f"a readable {what} ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise ConfigError(field, shown, f"a {what} of at most {max_bytes / 2**20:g} MiB")
    return data


def decode_text(data: bytes, field: str, shown: str, what: str = "text file") -> str:
    """``data`` as UTF-8 text without NUL bytes; the error gives the line, never the bytes."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(field, shown, f"a {what} (binary data: a NUL byte on line {line})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(field, shown, f"a UTF-8 {what} (an invalid byte on line {line})") from None
    return text.removeprefix("\ufeff")


def read_text(path, field: str, max_bytes: int = MAX_YAML_BYTES, what: str = "text file") -> str:
    """The text of ``path`` (see :func:`read_bytes` and :func:`decode_text`)."""
    return decode_text(read_bytes(path, field, max_bytes, what), field, str(path), what)


def writable_file(path, field: str, devices: bool = False) -> Path:
    """``path`` as a file that can be written (its folder exists or can be made; it is not a directory, a
    device such as /dev/full unless ``devices``, or under a file), checked before any work is done."""
    p = Path(path)
    shown = str(path)
    if p.is_dir():
        raise ConfigError(field, shown, "a file path to write (it is a directory)")
    if p.exists() and not p.is_file() and not devices:
        raise ConfigError(field, shown, "a regular file path to write (not a device, pipe or socket)")
    parent = p.parent
    for up in (parent, *parent.parents):
        if up.exists():
            if not up.is_dir():
                raise ConfigError(field, shown, f"a path whose folders are folders ({up} is a file)")
            if not os.access(up, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
                raise ConfigError(field, shown, "a writable file path (permission denied)")
            break
    return p


# ------------------------------------------------------------------------------------------ YAML
class _Refused(Exception):
    """A structural problem found while parsing (turned into ConfigError): what was found, what is allowed."""

    def __init__(self, found: str, allowed: str, line: int | None):
        super().__init__(found)
        self.found, self.allowed, self.line = found, allowed, line


class StrictLoader(yaml.SafeLoader):
    """A ``yaml.SafeLoader`` that refuses alias bombs, recursive aliases, deep nesting and duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} aliases", f"at most {MAX_ALIASES} aliases (*name) per file",
                               self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)

    def compose_document(self):
        node = super().compose_document()
        _expanded_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise _Refused("a key that is a list or mapping", "mapping keys that are plain values",
                                   key_node.start_mark.line + 1) from None
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _Refused(f"key {redact(key)!r} again (first on line {seen[key]})", "each key once per mapping", line)
                seen[key] = line
        return super().construct_mapping(node, deep)


StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)
# Numbers as YAML 1.2 reads them: 1e30 and 5e-7 are floats (YAML 1.1, and so PyYAML, reads them as text).
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                   re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
                                   list("-+0123456789."))


def _expanded_size(root) -> None:
    """Refuse a node graph that expands (aliases followed) beyond MAX_NODES nodes, loops, or nests too deep."""
    sizes: dict[int, int] = {}
    total = 0

    def walk(node, depth, path):
        nonlocal total
        key = id(node)
        if key in path:
            raise _Refused("a recursive alias", "no anchor used inside itself", node.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise _Refused(f"more than {MAX_DEPTH} levels", f"nesting at most {MAX_DEPTH} levels deep", node.start_mark.line + 1)
        if key in sizes:
            total += sizes[key]
        else:
            before = total
            total += 1
            if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
                path.add(key)
                items = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
                for child in items:
                    walk(child, depth + 1, path)
                path.discard(key)
            sizes[key] = total - before
        if total > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb)",
                           f"at most {MAX_NODES:,} values", node.start_mark.line + 1)

    if root is not None:
        walk(root, 0, set())


def parse_yaml(text: str, source: str, field: str | None = None):
    """The one document of YAML ``text`` (from ``source``, named in errors) through :class:`StrictLoader`."""
    field = field or source
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise ConfigError(f"{field} line {exc.line}" if exc.line else field, Described(exc.found), exc.allowed) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{field} line {mark.line + 1} column {mark.column + 1}" if mark else field
        raise ConfigError(where, Described(_yaml_kind(exc)), "valid YAML") from None
    except yaml.YAMLError as exc:
        raise ConfigError(field, Described(exc.__class__.__name__), "valid YAML") from None
    except RecursionError:
        raise ConfigError(field, Described("deep nesting"), f"nesting at most {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()


def _yaml_kind(exc) -> str:
    """What kind of YAML error, without the text it quotes."""
    if isinstance(exc, yaml.constructor.ConstructorError):
        return "a tag that is not plain YAML data"
    if isinstance(exc, yaml.composer.ComposerError):
        return "an alias to an undefined anchor, or more than one document"
    if isinstance(exc, yaml.scanner.ScannerError):
        return "a character or indentation YAML cannot read"
    return "a structure YAML cannot parse (an unclosed bracket, or a key out of line?)"


def load_yaml(path, field: str | None = None, max_bytes: int = MAX_YAML_BYTES, what: str = "YAML file"):
    """The YAML document of file ``path`` (size-limited, UTF-8, strict: see :class:`StrictLoader`)."""
    field = field or str(path)
    return parse_yaml(read_text(path, field, max_bytes, what), str(path), field)


# ------------------------------------------------------------------------------------------ JSON
def _no_constant(name):
    raise ValueError(name)


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(f"key {redact(k)!r} twice in one object", "each key once per object", None)
        out[k] = v
    return out


def _json_depth(value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise _Refused(f"more than {MAX_DEPTH} levels", f"nesting at most {MAX_DEPTH} levels deep", None)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused("a number too large for a float", "finite numbers", None)
    if isinstance(value, dict):
        for v in value.values():
            _json_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _json_depth(v, depth + 1)


def parse_json(text: str, source: str, field: str | None = None):
    """JSON ``text`` with no NaN/Infinity, no duplicate keys and at most :data:`MAX_DEPTH` levels."""
    field = field or source
    try:
        data = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_pairs)
        _json_depth(data)
    except _Refused as exc:
        raise ConfigError(field, Described(exc.found), exc.allowed) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{field} line {exc.lineno} column {exc.colno}", Described(exc.msg.lower()), "valid JSON") from None
    except ValueError:  # NaN, Infinity, -Infinity, or an integer of too many digits
        raise ConfigError(field, Described("NaN, Infinity or a number of too many digits"),
                          "valid JSON with finite numbers") from None
    except RecursionError:
        raise ConfigError(field, Described("deep nesting"), f"nesting at most {MAX_DEPTH} levels deep") from None
    return data


def load_json(path, field: str | None = None, max_bytes: int = MAX_JSON_BYTES, what: str = "JSON file"):
    """The JSON document of file ``path`` (size-limited, UTF-8, strict: see :func:`parse_json`)."""
    field = field or str(path)
    return parse_json(read_text(path, field, max_bytes, what), str(path), field)


# ------------------------------------------------------------------------------------------ types
def mapping(field: str, value, what: str = "a mapping", optional: bool = True) -> dict:
    """``value`` as a dict (``None`` gives ``{}`` when ``optional``); a list, text or number is an error."""
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(field, redact(value), what)
    return value


def string(field: str, value, what: str = "a text value", max_len: int = 1000) -> str:
    """``value`` as a str of at most ``max_len`` characters (a mapping, list, number or None is an error)."""
    if not isinstance(value, str) or len(value) > max_len:
        raise ConfigError(field, redact(value), what)
    return value


# ------------------------------------------------------------------------------------------ CSV
MAX_CSV_BYTES = 256 << 20     # a trace of 2 million requests with a few columns is about 60 MB
CSV_CHUNK_ROWS = 100_000      # rows converted at a time: memory holds one chunk of text, the rest as numbers
_CSV_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_CSV_WHOLE = re.compile(r"\+?[0-9]{1,18}(?:\.0*)?")


@dataclass(frozen=True)
class Column:
    """One column of a CSV schema: ``kind`` "number" (finite ASCII decimal), "whole" (a whole number written
    with ASCII digits; ``3.0`` is whole, ``True``, ``3.5`` and ``１`` are not) or "text" (kept as text of at most
    ``maximum`` characters, for the caller to parse), bounds, whether it is required."""

    kind: str
    minimum: float
    maximum: float
    required: bool = True
    what: str = ""

    def allowed(self) -> str:
        noun = "a finite number" if self.kind == "number" else "a whole number"
        return f"{noun} from {self.minimum:g} to {self.maximum:g}" + (f" ({self.what})" if self.what else "")


def read_csv_columns(path, field: str, schema: dict[str, Column], max_rows: int,
                     max_bytes: int = MAX_CSV_BYTES) -> dict:
    """The columns of ``schema`` from CSV file ``path`` as float64 arrays (columns not in the schema are
    skipped), read in chunks so memory stays bounded.

    Refused, each with one line naming the file, the row (0-based, after the header) or line, and the
    column: a file that is not a regular UTF-8 text file or exceeds ``max_bytes``; no header; a duplicate or
    missing required column; a row with more or fewer fields than the header (ragged); more than
    ``max_rows`` rows; a value that is not of its column's kind or is out of its bounds.
    """
    shown = str(path)
    decode_text(head_bytes(path, field, max_bytes), field, shown, "CSV text file")
    out: dict[str, list] = {}
    try:
        with io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="") as fh:  # -sig: no BOM in the header
            reader = csv.reader(fh)
            header = None
            for row in reader:
                if row:
                    header = [name.strip() for name in row]
                    break
            if header is None:
                raise ConfigError(field, shown, "a CSV file with a header (" + ", ".join(schema) + ") and one row per line")
            index = _header_index(field, header, schema)
            out = {name: [] for name in index}
            chunk: list[list[str]] = []
            rows = 0
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise ConfigError(f"{field} line {reader.line_num}", Described(f"{len(row)} fields"),
                                      f"{len(header)} fields, as in the header (no ragged rows)")
                chunk.append(row)
                if len(chunk) >= CSV_CHUNK_ROWS:
                    _convert(field, chunk, rows, index, schema, out)
                    rows += len(chunk)
                    chunk = []
                if rows + len(chunk) > max_rows:
                    raise ConfigError(f"{field} rows", Described(f"more than {max_rows:,}"), f"1 to {max_rows:,} rows")
            _convert(field, chunk, rows, index, schema, out)
            rows += len(chunk)
    except csv.Error:
        raise ConfigError(f"{field} line {reader.line_num + 1}", Described("a line CSV cannot read"),
                          "a CSV text file (no NUL bytes, fields under 128 kB, quotes closed)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{field} line {reader.line_num + 1}", Described("an invalid byte"), "a UTF-8 CSV text file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ConfigError(field, shown, f"a readable CSV file ({getattr(exc, 'strerror', None) or 'a corrupt gzip file'})") from None
    if rows == 0:
        raise ConfigError(f"{field} rows", 0, f"1 to {max_rows:,} rows after the header")
    return {name: np.concatenate(parts) if parts else np.zeros(0) for name, parts in out.items()}


def _open_binary(path):
    """``path`` opened for reading bytes; a gzip file (``.gz`` or gzip's magic bytes) decompressed as it is read."""
    fh = open(path, "rb")
    if fh.read(2) == b"\x1f\x8b":
        fh.close()
        return gzip.open(path, "rb")
    fh.seek(0)
    return fh


def head_bytes(path, field: str, max_bytes: int) -> bytes:
    """The first 64 KiB of ``path`` after the checks of :func:`read_bytes` (file kind, size)."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes:
        try:
            with _open_binary(path) as fh:
                head = fh.read(64 << 10)
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(field, str(path), f"a readable CSV file ({getattr(exc, 'strerror', None) or 'a corrupt gzip file'})") from None
        cut = head.rfind(b"\n")  # decode whole lines only: a multi-byte character may straddle the cut
        return head if len(head) < (64 << 10) or cut < 0 else head[:cut]
    return read_bytes(path, field, max_bytes, "CSV file")  # raises the error that fits


def _header_index(field: str, header: list[str], schema: dict[str, Column]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            shown = repr(name) if _NAME.fullmatch(name) else f"<a name of {len(name)} characters>"
            raise ConfigError(f"{field} header", Described(f"column {shown} twice (columns {seen[name] + 1} and {i + 1})"),
                              "each column once")
        seen[name] = i
    for name, col in schema.items():
        if col.required and name not in seen:
            raise ConfigError(f"{field} column {name}", Described(f"a header of {len(header)} columns without it"),
                              "a header with " + ", ".join(n for n, c in schema.items() if c.required)
                              + "".join(f"[, {n}]" for n, c in schema.items() if not c.required))
    return {name: seen[name] for name in schema if name in seen}


_CHUNK_CHARS = {"number": re.compile(r"[0-9.eE+\-\n]*"), "whole": re.compile(r"[0-9.+\n]*")}


def _fast_values(text: list[str], kind: str):
    """``text`` as floats when every value is plain ASCII decimal of ``kind`` (one pass over the joined
    chunk, then numpy's conversion); None when some value is not (the caller then finds which)."""
    if not _CHUNK_CHARS[kind].fullmatch("\n".join(text)):
        return None
    try:
        return np.asarray(text, dtype=float)
    except ValueError:  # "", "1e", "1.2.3", "+-1": characters allowed, form not
        return None


def _convert(field: str, chunk: list[list[str]], first: int, index: dict[str, int], schema: dict[str, Column],
             out: dict[str, list]) -> None:
    if not chunk:
        return
    for name, i in index.items():
        col = schema[name]
        text = [row[i].strip() for row in chunk]
        if col.kind == "text":
            long = [j for j, t in enumerate(text) if len(t) > col.maximum]
            if long:
                raise ConfigError(f"{field} row {first + long[0]}: {name}", redact(text[long[0]]),
                                  f"text of at most {col.maximum:g} characters")
            out[name].append(np.asarray(text, dtype=object))
            continue
        values = _fast_values(text, col.kind)
        if values is None:  # some value is not of the column's kind: find which, one by one
            pattern = _CSV_NUMBER if col.kind == "number" else _CSV_WHOLE
            ok = np.fromiter((pattern.fullmatch(t) is not None for t in text), bool, len(text))
            values = np.zeros(len(text))
            values[ok] = np.asarray([t for t, good in zip(text, ok) if good], dtype=float)
        else:
            ok = np.ones(len(text), bool)
        with np.errstate(invalid="ignore"):
            bad = ~ok | ~np.isfinite(values) | (values < col.minimum) | (values > col.maximum)
            if col.kind == "whole":
                bad |= values != np.round(values)
        if bad.any():
            j = int(np.argmax(bad))
            raise ConfigError(f"{field} row {first + j}: {name}", redact(text[j]), col.allowed())
        out[name].append(values)

