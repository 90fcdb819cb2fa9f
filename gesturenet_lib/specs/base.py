"""Typed spec loading: JSON -> frozen dataclasses, with one validation pass.

Spec classes are plain frozen dataclasses. Each field may carry metadata made by ``spec_field``:
its JSON key (when it differs from the attribute name), accepted aliases, numeric limits and a
help line (used for the README's spec reference). A class may define ``check(self, at)`` for
rules that involve more than one field; it raises ``SpecError`` via ``fail``. A class may also
define a classmethod ``shorthand(value, at)`` that turns a non-object JSON value (TAO's
``"horizontal_flip": true``, ``"rotation_range": 5``, ``"brightness_range": [0.5, 1.5]``) into
the object form, or returns ``None`` when the value has no short form.

Every error names the file, the JSON path, the value received and what is allowed, e.g.
``train_spec.json: model.num_layers = 19: must be one of 6, 10, 12, 18, 26, 34, 50, 101, 152``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union

from gesturenet_lib import io

T = TypeVar("T")

_MISSING = dataclasses.MISSING


class SpecError(ValueError):
    """A spec that cannot be used. ``str()`` is the one-line message users see."""

    def __init__(self, path: str, value: Any, allowed: str, file: str | None = None,
                 show_value: bool = True):
        self.path = path
        self.value = value
        self.allowed = allowed
        self.file = file
        self.show_value = show_value
        super().__init__(str(self))

    def with_file(self, file: str) -> SpecError:
        return SpecError(self.path, self.value, self.allowed, file, self.show_value)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        if not self.path:
            return f"{where}{self.allowed}"
        if not self.show_value:
            return f"{where}{self.path}: {self.allowed}"
        return f"{where}{self.path} = {format_value(self.value)}: {self.allowed}"


def format_value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(at: str, value: Any, allowed: str) -> typing.NoReturn:
    raise SpecError(at, value, allowed)


def join_path(at: str, key: str | int) -> str:
    """The JSON path of ``key`` inside the object at ``at`` (for ``check`` methods)."""
    if isinstance(key, int):
        return f"{at}[{key}]"
    return f"{at}.{key}" if at else key


def spec_field(default: Any = _MISSING, *, default_factory: Any = _MISSING, key: str | None = None,
               aliases: tuple[str, ...] = (), min: float | None = None, max: float | None = None,
               min_exclusive: bool = False, help: str = "") -> Any:
    """A dataclass field with spec metadata (JSON key, aliases, limits, help)."""
    meta = {"key": key, "aliases": aliases, "min": min, "max": max,
            "min_exclusive": min_exclusive, "help": help}
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def json_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key") or f.name


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"object of {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert_union(tp: Any, value: Any, at: str) -> Any:
    options = typing.get_args(tp)
    if value is None and type(None) in options:
        return None
    errors = []
    for option in options:
        if option is type(None):
            continue
        try:
            return _convert(option, value, at)
        except SpecError as err:
            errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    fail(at, value, f"must be {_type_name(tp)}")


def _convert_literal(tp: Any, value: Any, at: str) -> Any:
    choices = typing.get_args(tp)
    if value in choices and type(value) in {type(c) for c in choices}:
        return value
    # JSON through protobuf (KFP parameters) turns 18 into 18.0
    if isinstance(value, float) and value.is_integer() and int(value) in choices:
        return int(value)
    fail(at, value, "must be one of " + ", ".join(str(c) for c in choices))


def _convert_scalar(tp: Any, value: Any, at: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        fail(at, value, "must be true or false")
    if isinstance(value, float) and not math.isfinite(value) and tp in (int, float):
        fail(at, value, "must be a finite number (NaN and infinity are not allowed)")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        fail(at, value, "must be an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                fail(at, None, "must be a finite number (this one is too large)")
        fail(at, value, "must be a number")
    if tp is str:
        if isinstance(value, str):
            return value
        fail(at, value, "must be a string")
    raise TypeError(f"unsupported spec type {tp!r} at {at}")


def _convert(tp: Any, value: Any, at: str) -> Any:
    """Convert one JSON value to the declared type, or raise SpecError naming ``at``."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, at)
    if origin is Literal:
        return _convert_literal(tp, value, at)
    if origin is list:
        if not isinstance(value, list):
            fail(at, value, f"must be a {_type_name(tp)}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, item, join_path(at, i)) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            fail(at, value, f"must be an {_type_name(tp)}")
        _, item_tp = typing.get_args(tp)
        return {k: _convert(item_tp, v, join_path(at, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, at)
    if tp is Any:
        return value
    return _convert_scalar(tp, value, at)


def _check_limits(f: dataclasses.Field, value: Any, at: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        exclusive = f.metadata.get("min_exclusive")
        too_low = lo is not None and (v <= lo if exclusive else v < lo)
        too_high = hi is not None and v > hi
        if too_low or too_high:
            left = "(" if exclusive else "["
            lo_s = "-inf" if lo is None else f"{lo:g}"
            hi_s = "inf" if hi is None else f"{hi:g}"
            fail(at, value, f"must be in {left}{lo_s}, {hi_s}]")


def parse(cls: type[T], data: Any, at: str = "") -> T:
    """Build spec class ``cls`` from JSON ``data``; validate types, limits and cross-field rules."""
    shorthand = getattr(cls, "shorthand", None)
    if not isinstance(data, dict) and shorthand is not None:
        data = shorthand(data, at) or data
    if not isinstance(data, dict):
        fail(at or "(top level)", data, "must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    by_key: dict[str, dataclasses.Field] = {}
    for f in fields:
        for name in (json_key(f), *f.metadata.get("aliases", ())):
            by_key[name] = f
    for key in data:
        if key not in by_key:
            known = [json_key(f) for f in fields]
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(known)
            raise SpecError(join_path(at, key), None, f"unknown key; {hint}", show_value=False)
    kwargs: dict[str, Any] = {}
    for f in fields:
        if not f.init:
            continue
        given = [k for k in (json_key(f), *f.metadata.get("aliases", ())) if k in data]
        if len(given) > 1:
            raise SpecError(join_path(at, given[1]), None,
                            f"given twice, also as '{given[0]}'; keep one spelling",
                            show_value=False)
        if not given:
            if f.default is _MISSING and f.default_factory is _MISSING:
                raise SpecError(join_path(at, json_key(f)), None,
                                f"missing required key ({_type_name(hints[f.name])})",
                                show_value=False)
            continue
        where = join_path(at, json_key(f))
        value = _convert(hints[f.name], data[given[0]], where)
        _check_limits(f, value, where)
        kwargs[f.name] = value
    spec = cls(**kwargs)
    check_given = getattr(spec, "check_given", None)
    if check_given is not None:  # rules about which keys a file wrote, not just their values
        check_given(at, set(data))
    check = getattr(spec, "check", None)
    if check is not None:
        check(at)
    return spec


def dump(spec: Any) -> Any:
    """The JSON form of a spec (the inverse of ``parse``); ``None`` values are left out."""
    if dataclasses.is_dataclass(spec):
        out = {}
        # keys that do not apply to this spec's choices (and that parse would refuse)
        skip = set(getattr(spec, "keys_not_written", lambda: ())())
        for f in dataclasses.fields(spec):
            value = getattr(spec, f.name)
            if value is not None and json_key(f) not in skip:
                out[json_key(f)] = dump(value)
        return out
    if isinstance(spec, list):
        return [dump(v) for v in spec]
    if isinstance(spec, dict):
        return {k: dump(v) for k, v in spec.items()}
    return spec


def dumps(spec: Any) -> str:
    return json.dumps(dump(spec), indent=2) + "\n"


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def duplicate_key_line(text: str) -> tuple[str, int] | None:
    """(key, line) of the first key given twice in one JSON object of ``text``, scanning
    strings and nesting (``json`` reports no positions to its hooks)."""
    stack: list[set[str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            end = i + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            after = text[end + 1:end + 40].lstrip()
            if stack and after.startswith(":"):
                key = json.loads(text[i:end + 1])
                if key in stack[-1]:
                    return key, text.count("\n", 0, i) + 1
                stack[-1].add(key)
            i = end + 1
            continue
        if c == "{":
            stack.append(set())
        elif c == "}":
            stack.pop()
        i += 1
    return None


def load_json_text(text: str, file: str) -> Any:
    """JSON text -> Python values, or one SpecError naming ``file``: invalid JSON (line,
    column), a key given twice in one object (the last would silently win), nesting too deep
    or a number too long for Python."""
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates)
    except json.JSONDecodeError as err:
        raise SpecError("", None, f"invalid JSON at line {err.lineno} column {err.colno}: "
                        f"{err.msg}", file) from None
    except _DuplicateKey as err:
        key, line = duplicate_key_line(text) or (str(err), 0)
        where = f" (line {line})" if line else ""
        raise SpecError("", None, f"key {json.dumps(key)} is given twice in one object{where}; "
                        "keep one (JSON would silently use the last)", file) from None
    except RecursionError:
        raise SpecError("", None, "invalid JSON: nested too deeply", file) from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise SpecError("", None, f"invalid JSON: {err}"[:160], file) from None


def parse_text(cls: type[T], text: str, file: str) -> T:
    """Parse spec ``cls`` from JSON text; errors carry ``file``."""
    data = load_json_text(text, file)
    try:
        return parse(cls, data)
    except SpecError as err:
        raise err.with_file(file) from None


def load(cls: type[T], file: str) -> T:
    """Read and validate a spec file."""
    if not io.exists(file):
        raise SpecError("", None, "file not found", file)
    if io.is_dir(file):
        raise SpecError("", None, "is a directory, expected a JSON spec file", file)
    try:
        text = io.read_text(file)
    except UnicodeDecodeError:
        raise SpecError("", None, "not a UTF-8 text file", file) from None
    return parse_text(cls, text, file)


def reference_rows(cls: type, prefix: str = "", defaults: Any = None
                   ) -> list[tuple[str, str, str, str]]:
    """(JSON path, type, default, description) for every field, depth first: the spec reference.
    ``defaults`` is the parent's default instance, so nested defaults show their real values."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        path = join_path(prefix, json_key(f))
        if defaults is not None:
            made = getattr(defaults, f.name)
        elif f.default is not _MISSING:
            made = f.default
        elif f.default_factory is not _MISSING:
            made = f.default_factory()
        else:
            made = _MISSING
        if made is _MISSING:
            default = "required"
        elif dataclasses.is_dataclass(made):
            default = "see below"
        else:
            default = format_value(made)
        notes = [f.metadata.get("help", "")]
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None or hi is not None:
            left = "(" if f.metadata.get("min_exclusive") else "["
            notes.append(f"range {left}{'-inf' if lo is None else f'{lo:g}'}, "
                         f"{'inf' if hi is None else f'{hi:g}'}]")
        if f.metadata.get("aliases"):
            notes.append("also spelled " + ", ".join(f"`{a}`" for a in f.metadata["aliases"]))
        rows.append((path, _type_name(tp), default, "; ".join(n for n in notes if n)))
        inner = [a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
        for sub in inner:
            sub_defaults = made if dataclasses.is_dataclass(made) else None
            rows.extend(reference_rows(sub, path, sub_defaults))
    return rows


def reference_markdown(cls: type, title: str) -> str:
    """A markdown table of every field of spec ``cls`` (embedded in the README)."""
    lines = [f"#### {title}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for path, type_name, default, notes in reference_rows(cls):
        cells = [f"`{path}`", type_name, f"`{default}`" if default not in ("required", "see below")
                 else default, notes]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
