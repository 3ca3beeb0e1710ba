"""Reading and validating preset files (TOML); writing them is preset_write.py.

Nothing here executes what the file says: the text is bounded first (size, nesting of brackets, dotted keys
and headers, huge numbers: `parse_toml`), parsed with `tomllib`, the section structure validated with
pydantic (unknown keys are errors), layer entries validated against the layer catalogue, and every failure
is one `PresetError` naming the file, the field path (`model.layers[2].out_features`), what was expected,
and a "did you mean" for near-miss names.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from stat import S_ISREG
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import PresetError, brief, did_you_mean, quote, shown
from ..model.args import _type_name, check_arg, check_numbers
from ..model.catalogue import CATALOGUE, LAYER_KEYS, LayerType
from ..model.init import ALIASES as INIT_ALIASES
from ..model.init import BIAS, INIT_SCHEMES, SCHEMES, table_problem
from ..model.init import keys as init_keys
from ..spec import BLOCKS, CallSpec, DataSpec, GeneratorSpec, LayerSpec, ModelSpec, Preset, TrainingSpec
from ..text import first_control
from ..training.objectives import LOSSES, OPTIMIZERS, Objective, check_combination
from .bundled import bundled_presets, find_bundled

MAX_FILE_BYTES = 16 * 1024 * 1024  # a preset is text; larger files are refused before parsing

MAX_NESTING = 32  # brackets/braces deeper than this are refused before parsing

MAX_LAYERS = 1000

_PosInt = Annotated[int, Field(ge=1, le=10**12)]

_Int64 = Annotated[int, Field(ge=-2**63, le=2**63 - 1)]  # what a torch integer holds



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)



class _PresetSection(_Strict):
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=20_000)
    lab: str | None = Field(default=None, max_length=40)



class _ModelSection(_Strict):
    input_shape: Annotated[list[_PosInt], Field(min_length=1, max_length=8)]
    layers: Annotated[list[Any], Field(max_length=MAX_LAYERS)] = []



class _Generator(_Strict):
    generate: Literal["rand", "randn", "zeros", "ones", "randint"]
    shape: Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]], Field(min_length=1, max_length=8)]
    low: _Int64 = 0
    high: _Int64 | None = None



class _DataSection(_Strict):
    inputs: Any = None
    targets: Any = None
    rng: Literal["own", "global"] = "own"
    dataset: Any = None  # validated by datasets.parse_dataset
    csv: Any = None  # validated by datasets.parse_csv



class _TrainingSection(_Strict):
    loss: Any = "MSELoss"
    optimizer: Any = None
    steps: Annotated[int, Field(ge=0, le=10**12)] = 100
    batch_size: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    shuffle: bool = True
    device: Annotated[str, Field(max_length=40)] = "cpu"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    target_loss: float | None = None
    reset_optimizer_each_step: bool = False
    scheduler: Any = None  # validated against schedules.SCHEDULERS
    target_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    drop_last: bool = False
    clip_grad_norm: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    clip_grad_value: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None



class _File(_Strict):
    preset: _PresetSection = _PresetSection()
    model: _ModelSection
    data: _DataSection = _DataSection()
    training: _TrainingSection = _TrainingSection()



def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model of the table at `loc` inside `root` (None when it is not a model's table)."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        ann = info.annotation if info is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model



def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = _key(out, str(part))
    return out



def _translate(err: ValidationError, source: str, root: type[BaseModel] = _File) -> PresetError:
    """The first pydantic error as a PresetError; `root` is the model that validated (the file, or a table
    such as a generator), so an unknown key is met with that table's own keys."""
    e = err.errors()[0]
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in ("list[int]", "int", "str")))
    field = _path(loc)
    if e["type"] == "extra_forbidden":
        model = _model_at(root, loc[:-1])
        choices = list(model.model_fields) if model else []
        return PresetError(f"unknown key {quote(loc[-1])}{did_you_mean(str(loc[-1]), choices)}; "
                           f"expected one of: {', '.join(choices)}", source=source, field=field)
    if e["type"] == "missing":
        return PresetError("required key is missing", source=source, field=field)
    got = e.get("input")
    got_text = f"; got {brief(got)}" if "input" in e else ""
    return PresetError(f"{shown(e['msg'], 300)}{got_text}", source=source, field=field)



_BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,40}")



def _key_text(key: Any) -> str:
    """A key as a field path writes it: bare (`out_features`) when TOML would write it bare, else quoted and
    escaped (`"a.b"`, `"\\x1b[31m"`), bounded."""
    return key if isinstance(key, str) and _BARE_KEY.fullmatch(key) else quote(key)



def _key(field: str, key: Any) -> str:
    """The field path of `key` inside the table at `field`."""
    return f"{field}.{_key_text(key)}" if field else _key_text(key)



def _call_spec(value: Any, table: dict[str, Objective], field: str, source: str, what: str) -> CallSpec:
    if isinstance(value, str):
        name, raw_args = value, {}
    elif isinstance(value, dict):
        if "type" not in value:
            raise PresetError(f"a {what} table needs a \"type\" key", source=source, field=_key(field, "type"))
        name = value["type"]
        raw_args = {k: v for k, v in value.items() if k != "type"}
        if not isinstance(name, str):
            raise PresetError(f"expected a {what} name; got {brief(name)}", source=source, field=_key(field, "type"))
    else:
        raise PresetError(f"expected a {what} name or a table with \"type\"; got {_type_name(value)}",
                          source=source, field=field)
    if name not in table:
        raise PresetError(f"unknown {what} {quote(name)}{did_you_mean(name, table)}; expected one of: "
                          f"{', '.join(table)}", source=source, field=field if isinstance(value, str)
                          else _key(field, "type"))
    obj = table[name]
    args: dict[str, Any] = {}
    for key, v in raw_args.items():
        spec = obj.arg(key)
        if spec is None:
            names = [a.name for a in obj.args]
            raise PresetError(f"unknown argument {quote(key)} for {name}{did_you_mean(key, names)}; "
                              f"expected one of: {', '.join(names)}", source=source, field=_key(field, key))
        args[key] = check_arg(spec, v, _key(field, key), source)
    if table is OPTIMIZERS:
        problem = check_combination(name, args)
        if problem is not None:
            key, message, hint = problem
            raise PresetError(message, source=source, field=_key(field, key), hint=hint)
    return CallSpec(name, args)



def parse_layer(raw: Any, field: str, source: str = "<input>", depth: int = 0) -> LayerSpec:
    if not isinstance(raw, dict):
        raise PresetError(f"expected a table describing a layer; got {_type_name(raw)}", source=source, field=field)
    if "type" not in raw:
        raise PresetError("a layer needs a \"type\" key (a torch.nn class name such as \"Linear\")",
                          source=source, field=_key(field, "type"))
    name = raw["type"]
    if not isinstance(name, str) or name not in CATALOGUE:
        raise PresetError(f"unknown layer type {brief(name)}"
                          f"{did_you_mean(name, CATALOGUE) if isinstance(name, str) else ''}",
                          source=source, field=_key(field, "type"))
    lt: LayerType = CATALOGUE[name]
    spec = LayerSpec(type=name)
    allowed = list(dict.fromkeys(list(LAYER_KEYS) + lt.arg_names + list(lt.params) + list(lt.ignored_args)))
    if name in BLOCKS:
        allowed.append("layers")
    if name == "Residual":
        allowed.append("shortcut")
    for key, value in raw.items():
        kfield = _key(field, key)
        if key == "type":
            continue
        if key == "frozen":
            if not isinstance(value, bool):
                raise PresetError(f"expected true or false; got {brief(value)}", source=source, field=kfield)
            spec.frozen = value
        elif key == "init" and name == "PReLU" and isinstance(value, (int, float)) and not isinstance(value, bool):
            # PReLU's own constructor argument `init` (the initial slope, a number) shares the name of the
            # layer-level init key (a scheme name or table): on PReLU a number is the constructor argument
            spec.args["init"] = check_arg(lt.arg("init"), value, kfield, source)  # type: ignore[arg-type]
        elif key == "init":
            spec.init = parse_init(value, kfield, source)
        elif (key == "layers" and name in BLOCKS) or (key == "shortcut" and name == "Residual"):
            if depth >= 8:
                raise PresetError(f"{name} blocks nested too deeply (at most 8)", source=source, field=kfield)
            if not isinstance(value, list):
                raise PresetError(f"expected a list of layers; got {_type_name(value)}", source=source, field=kfield)
            inner = [parse_layer(v, f"{kfield}[{i}]", source, depth + 1) for i, v in enumerate(value)]
            if key == "shortcut":
                spec.shortcut = inner
            else:
                spec.layers = inner
        elif key in lt.params and (isinstance(value, (list, float)) or
                                   (isinstance(value, int) and not isinstance(value, bool))):
            check_numbers(value, kfield, source)
            spec.params[key] = value
        elif key in lt.params and lt.arg(key) is not None and not isinstance(value, bool):
            # both an argument (bias = true: the layer has one) and a parameter (bias = [0.1, 0.2]: its values)
            raise PresetError(f"expected true or false (whether the layer has a {key}) or a number or a (nested) "
                              f"list of numbers (the hand-set parameter {key}); got {brief(value)}",
                              source=source, field=kfield)
        elif lt.arg(key) is not None:
            spec.args[key] = check_arg(lt.arg(key), value, kfield, source)  # type: ignore[arg-type]
        elif key in lt.params:  # a known parameter, of the wrong kind: not an unknown key
            raise PresetError(f"expected a number or a (nested) list of numbers for the hand-set parameter {key}; "
                              f"got {brief(value)}", source=source, field=kfield)
        elif key in lt.ignored_args:
            if not isinstance(value, bool):
                raise PresetError(f"expected true or false; got {brief(value)}", source=source, field=kfield)
            spec.args[key] = value
        else:
            raise PresetError(f"unknown key {quote(key)} for {name}{did_you_mean(key, allowed)}; "
                              f"expected one of: {', '.join(allowed)}", source=source, field=kfield)
    for a in lt.args:
        if a.required and a.name not in spec.args:
            raise PresetError(f"{name} needs \"{a.name}\" ({a.doc})", source=source, field=_key(field, a.name))
    return spec



def parse_init(value: Any, field: str, source: str = "<input>") -> dict[str, Any]:
    """An init scheme name or table (model/init.py), validated: torch's argument names, kinds and bounds, and
    the combinations torch refuses. The table keeps what the user wrote (numbers as floats); `value`, the
    old name of constant's `val`, is read as `val`."""
    if isinstance(value, str):
        table: dict[str, Any] = {"scheme": value}
    elif isinstance(value, dict):
        table = dict(value)
    else:
        raise PresetError(f"expected a scheme name or a table with \"scheme\"; got {_type_name(value)}",
                          source=source, field=field)
    scheme_name = table.get("scheme")
    if not isinstance(scheme_name, str) or scheme_name not in INIT_SCHEMES:
        raise PresetError(f"unknown initialisation {brief(scheme_name)}"
                          f"{did_you_mean(scheme_name, INIT_SCHEMES) if isinstance(scheme_name, str) else ''}; "
                          f"expected one of: {', '.join(INIT_SCHEMES)}", source=source,
                          field=field if isinstance(value, str) else _key(field, "scheme"))
    scheme = SCHEMES[scheme_name]
    allowed = init_keys(scheme_name)
    out: dict[str, Any] = {"scheme": scheme_name}
    for key, v in table.items():
        if key == "scheme":
            continue
        name = INIT_ALIASES.get((scheme_name, key), key)
        spec = BIAS if name == "bias" else scheme.arg(name)
        if spec is None or name in out:
            why = f"unknown key {quote(key)}" if spec is None else f"{quote(key)} repeats {quote(name)}"
            raise PresetError(f"{why} for init {scheme_name}{did_you_mean(key, allowed) if spec is None else ''}; "
                              f"expected {'one of: ' + ', '.join(allowed) if allowed else 'no other key'}",
                              source=source, field=_key(field, key))
        out[name] = check_arg(spec, v, _key(field, key), source)
    for a in scheme.args:
        if a.required and a.name not in out:
            raise PresetError(f"init \"{scheme_name}\" needs \"{a.name}\" ({a.doc})", source=source,
                              field=_key(field, a.name))
    problem = table_problem(out)
    if problem is not None:
        key, message, hint = problem
        raise PresetError(message, source=source, field=_key(field, key), hint=hint)
    return out



def _tensor_source(value: Any, field: str, source: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            g = _Generator.model_validate(value)
        except ValidationError as err:
            e = _translate(err, source, _Generator)
            raise PresetError(e.detail, source=source, field=f"{field}.{e.field}" if e.field else field) from None
        zero = [k for k, n in enumerate(g.shape) if n == 0]
        if zero:  # nothing to train on (a loss over no samples is NaN), or samples of no numbers
            what = "samples" if zero[0] == 0 else f"numbers in dimension {zero[0]}"
            raise PresetError(f"shape {list(g.shape)} has no {what}: every dimension must be at least 1",
                              source=source, field=f"{field}.shape",
                              hint="the first dimension counts the samples, e.g. shape = [8, 3]")
        if g.generate == "randint":
            high = g.high if g.high is not None else 2
            if high <= g.low:
                raise PresetError(f"high ({high}) must be greater than low ({g.low})", source=source,
                                  field=f"{field}.high")
            return GeneratorSpec("randint", tuple(g.shape), g.low, high)
        if g.high is not None or g.low != 0:
            raise PresetError("low/high apply only to generate = \"randint\"", source=source, field=field)
        return GeneratorSpec(g.generate, tuple(g.shape))
    shape = check_numbers(value, field, source, float32=True)
    if 0 in shape:  # `inputs = []`, or rows of no numbers: a loss over nothing is NaN
        raise PresetError("an empty list: no samples" if shape[0] == 0 else
                          f"rows of no numbers (shape {list(shape)})", source=source, field=field,
                          hint="write one row per sample, e.g. [[0.1, 0.2], [0.3, 0.4]]")
    return value



def source_shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, GeneratorSpec):
        return tuple(value.shape)
    return check_numbers(value, "data")



# ---------------------------------------------------------------------------------------------


_SCAN_SKIP = {  # a string (from its opening quote) or a comment, as TOML reads it: matched, then jumped over
    # (a multi-line string may end with up to 2 extra quotes, which belong to it: """a"""" is 'a"')
    '"""': re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*(?:"""(?:""?)?)?', re.DOTALL),
    "'''": re.compile(r"'''(?:[^']|'(?!''))*(?:'''(?:''?)?)?"),
    '"': re.compile(r'"(?:[^"\\\n]|\\.)*"?'),  # backslash escapes; ends at the quote (or the line's end)
    "'": re.compile(r"'[^'\n]*'?"),  # literal: no escapes
    "#": re.compile(r"#[^\n]*"),  # a comment runs to the end of the line
}



# a decimal integer of more digits than Python reads (int_max_str_digits, 4300): tomllib raises ValueError, not a
# TOML error, on it; found from the start of a run of digits only (a fraction, an exponent and the digits of a hex,
# octal or binary integer follow a letter, a point or an exponent's sign), so the search stays linear
_LONG_INT = r"(?<![0-9A-Za-z_.])(?<![eE][+-])[0-9](?:_?[0-9]){4300}"

_LONG_RUN = re.compile(_LONG_INT)  # the quick look over the whole text (strings and comments too)

_VALUE_STOPS = {  # what the scan looks for inside a value: in an array, in an inline table, at the top level
    "[": r"[#\"'\[\]{}]",  # (no keys in an array: its commas and newlines do not matter)
    "{": r"[#\"'\[\]{},]",  # a comma: a key comes next
    "": r"[#\"'\[\]{}\n]",  # a newline: a key or a table header comes next
}

_SCAN_VALUE = {k: re.compile(v) for k, v in _VALUE_STOPS.items()}

_SCAN_VALUE_LONG = {k: re.compile(v + f"|(?P<long>{_LONG_INT})") for k, v in _VALUE_STOPS.items()}  # (slower)

_DIGITS = re.compile(r"[0-9_]*")



class _LongInteger(Exception):
    """A decimal integer too long for Python to read, at `where` (raised by `_nesting`)."""

    def __init__(self, where: int) -> None:
        super().__init__(where)
        self.where = where



_KEY_PART = re.compile(r"""[ \t]*(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')[ \t]*""")  # bare or quoted

_BLANKS = re.compile(r"[ \t]*")



def _key_path(text: str, i: int, limit: int) -> tuple[int, int] | None:
    """(end, parts) of the dotted key (`a . "b.c" . 'd'`) at `i`, or None where there is none. Stops counting
    once there are more than `limit` parts (the caller refuses it then), so a key of 10^5 parts costs no more
    than one of `limit`."""
    parts = 0
    match = _KEY_PART.match
    n = len(text)
    while True:
        m = match(text, i)
        if m is None:
            return None
        parts += 1
        i = m.end()
        if parts > limit or i >= n or text[i] != ".":
            return i, parts
        i += 1



def _nesting(text: str, cap: int, *, numbers: bool | None = None) -> tuple[int, int]:
    """(deepest level, where it is) of the tables and arrays the text nests, as tomllib would build them; the
    scan stops as soon as a level exceeds `cap`. Linear in the text.

    A level is one container: each bracket and brace, each part but the last of a dotted key (`a.b.c = 1`
    makes the tables a and a.b), each part of a table header (`[a.b.c]`: three tables), and one more for an
    array of tables (`[[a.b]]`: a, the array b and its new table); a header's levels and those of the keys
    and values under it add up. Only what TOML reads as such counts: comments and the four kinds of string
    are skipped, and keys are looked for only where TOML has keys (at the start of a line outside brackets,
    and after `{` or `,` inside an inline table). For valid TOML the level is never more than the depth
    tomllib builds (under a header that extends an array of tables, `[[a]]` then `[a.b]`, it is less, by at
    most half), so no file tomllib parses within the cap is refused; text tomllib refuses anyway needs no
    exact treatment.

    With `numbers` (by default: where a quick look finds a run of more than 4300 digits anywhere), a decimal
    integer value of more than 4300 digits raises _LongInteger: Python will not read it, and tomllib raises
    ValueError instead of a TOML error on it."""
    n = len(text)
    if numbers is None:
        numbers = _LONG_RUN.search(text) is not None
    scan_value = _SCAN_VALUE_LONG if numbers else _SCAN_VALUE
    opened: list[int] = []  # levels each open bracket/brace added (with the parts of the key it is the value of)
    kinds: list[str] = []  # "[" or "{"
    depth = 0  # the current table header's levels + sum(opened)
    deepest, where = 0, 0
    key_next = True
    i = 0
    while i < n:
        if key_next:
            key_next = False
            j = _BLANKS.match(text, i).end()  # type: ignore[union-attr]
            if not kinds and text.startswith("[", j):  # a table header, [a.b] or [[a.b]]
                extra = 1 if text.startswith("[[", j) else 0
                found = _key_path(text, j + 1 + extra, cap - extra)
                if found is not None:
                    end, parts = found
                    if parts + extra > cap:
                        return parts + extra, j
                    if text.startswith("]]" if extra else "]", end):
                        depth = parts + extra
                        if depth > deepest:
                            deepest, where = depth, j
                        i = end + 1 + extra
                        continue
                i = j  # not a header: TOML refuses it; its brackets count as brackets
                continue
            found = _key_path(text, j, cap - depth + 1)
            if found is not None:
                end, parts = found
                level = depth + parts - 1
                if level > deepest:
                    deepest, where = level, j
                    if level > cap:
                        return deepest, where
                if text.startswith("=", end):
                    k = _BLANKS.match(text, end + 1).end()  # type: ignore[union-attr]
                    if k < n and text[k] in "[{":  # the value is an array or an inline table
                        kinds.append(text[k])
                        opened.append(parts)  # its key's tables and itself
                        depth += parts
                        if depth > deepest:
                            deepest, where = depth, k
                            if depth > cap:
                                return deepest, where
                        key_next = text[k] == "{"
                        i = k + 1
                        continue
                    i = k
                    continue
            i = j
            continue
        m = scan_value[kinds[-1] if kinds else ""].search(text, i)
        if m is None:
            break
        i = m.start()
        if numbers and m.group("long") is not None:
            end = _DIGITS.match(text, m.end()).end()  # type: ignore[union-attr]
            if not text.startswith((".", "e", "E"), end):  # not the integer part of a float (float() reads those)
                raise _LongInteger(i)
            i = end
            continue
        ch = text[i]
        if ch in "#\"'":
            key = ch * 3 if ch != "#" and text.startswith(ch * 3, i) else ch
            i = max(_SCAN_SKIP[key].match(text, i).end(), i + 1)  # type: ignore[union-attr]
            continue
        i += 1
        if ch in "[{":
            kinds.append(ch)
            opened.append(1)
            depth += 1
            if depth > deepest:
                deepest, where = depth, i - 1
                if depth > cap:
                    return deepest, where
            key_next = ch == "{"
        elif ch in "]}":
            if kinds:
                kinds.pop()
                depth -= opened.pop()
        else:  # "," in an inline table, a newline at the top level
            key_next = True
    return deepest, where



def _prescan(text: str, source: str) -> None:
    """Refuse text nested deeper than MAX_NESTING levels (`_nesting`: brackets, braces, dotted keys and table
    headers) before `tomllib` reads it: it recurses into brackets, and its memory grows with the square of a
    dotted key's length (10^5 parts: gigabytes). The tests check that no file tomllib parses within the cap is
    refused."""
    try:
        level, where = _nesting(text, MAX_NESTING)
    except _LongInteger as err:
        raise PresetError("an integer of more than 4300 digits: too long to read (numbers in a preset fit in 64 "
                          "bits, at most 19 digits)", source=source, line=text.count("\n", 0, err.where) + 1) from None
    if level > MAX_NESTING:
        raise PresetError(f"nested more than {MAX_NESTING} levels deep", source=source,
                          line=text.count("\n", 0, where) + 1,
                          hint="each bracket [ ] and brace { } is a level, and so are dotted keys and table "
                               "headers: a.b.c = 1 and [a.b.c] make the tables a, a.b and a.b.c")



_LONG_NUMBER = re.compile(r"(?<![0-9_])(?:[0-9]_?){4301}")  # more digits than Python reads as an int



def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """Preset text as tomllib reads it, after the bounds that come first (size, nesting, huge numbers); every
    failure a PresetError naming the source (and the line where known). Preset files and the presets inside
    session files are read through here."""
    if len(text) > MAX_FILE_BYTES:
        raise PresetError(f"file too large ({len(text)} bytes; at most {MAX_FILE_BYTES})", source=source)
    _prescan(text, source)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        msg = str(err)
        m = re.search(r"line (\d+)", msg)
        raise PresetError(f"TOML syntax error: {msg}", source=source,
                          line=int(m.group(1)) if m else None) from None
    except RecursionError:
        raise PresetError("nested too deeply", source=source) from None
    except ValueError as err:  # an integer of more than 4300 digits: Python will not read it (int_max_str_digits)
        m = _LONG_NUMBER.search(text)  # (from the start of each run of digits only: linear)
        raise PresetError(f"a number tomllib cannot read: {shown(str(err).split(';')[0], 200)}", source=source,
                          line=text.count("\n", 0, m.start()) + 1 if m else None,
                          hint="numbers in a preset fit in 64 bits (at most 19 digits)") from None



def loads_preset(text: str, source: str = "<string>", *, checked: bool = True) -> Preset:
    """Parse and validate preset text. Raises PresetError. `checked=False`: see `preset_from_dict`."""
    return preset_from_dict(parse_toml(text, source), source, checked=checked)



def _check_display_text(text: str | None, field: str, source: str, keep: str = "") -> None:
    """Refuse control characters (safe_text.first_control; but those in `keep`) in text the app shows as it is: a preset's name, lab
    and description reach every student's terminal, and an escape sequence there could redraw or retitle it."""
    if not text:
        return
    m = first_control(text, allow=keep)
    if m is not None:
        allowed = " (a description may hold newlines and tabs)" if keep else ""
        what = field.split(".")[-1]
        raise PresetError(f"control character {quote(m.group())} at position {m.start()}: the {what} is shown "
                          f"as plain text, so control characters and escape sequences are not allowed{allowed}",
                          source=source, field=field,
                          hint="remove it; write plain text (any language, emoji included, is fine)")



def _check_schedule(scheduler: CallSpec, t: _TrainingSection, optimizer: Any, source: str) -> None:
    """What torch refuses of a schedule only with the rest of [training]: OneCycleLR stepped past total_steps,
    its cycle_momentum with an optimizer without momentum or betas (SequentialLR's tables: schedules.py)."""
    from ..training.schedules import needs_momentum, step_every

    if scheduler.type == "OneCycleLR":
        total = int(scheduler.args["total_steps"])
        # per epoch, an epoch's steps are known only with the data (a full batch: one step)
        if (step_every(scheduler) == "step" or t.batch_size == 0) and t.steps > total:
            raise PresetError(f"OneCycleLR cannot be stepped past total_steps = {total}, but training.steps is "
                              f"{t.steps}", source=source, field="training.scheduler.total_steps",
                              hint=f"set total_steps = {t.steps} (the steps of the run), or fewer steps")
    if needs_momentum(scheduler):
        name = optimizer if isinstance(optimizer, str) else optimizer.get("type") if isinstance(optimizer, dict) \
            else None
        obj = OPTIMIZERS.get(name) if isinstance(name, str) else None
        if obj is not None and obj.arg("momentum") is None and obj.arg("betas") is None:
            raise PresetError(f"OneCycleLR cycles the momentum, but {name} has neither momentum nor betas",
                              source=source, field="training.scheduler.cycle_momentum",
                              hint="set cycle_momentum = false, or use an optimizer with momentum (SGD, RMSprop) "
                                   "or betas (Adam and its kin)")


def preset_from_dict(raw: dict[str, Any], source: str = "<preset>", *, checked: bool = True) -> Preset:
    """The preset of a parsed file. `checked=False` leaves out the two checks that need torch (the data tables
    and the hand-set weights against the built layers) and the data tables themselves: the app's preview of a
    preset before torch has loaded (`load_preset(..., checked=False)`); the real load checks everything."""
    for key in raw:
        if key not in _File.model_fields:
            raise PresetError(f"unknown section [{_key_text(key)}]{did_you_mean(key, _File.model_fields)}; "
                              f"expected: {', '.join(_File.model_fields)}", source=source, field=_key_text(key))
    try:
        doc = _File.model_validate(raw)
    except ValidationError as err:
        raise _translate(err, source) from None
    for key in ("name", "lab", "description"):
        _check_display_text(getattr(doc.preset, key), f"preset.{key}", source, keep="\t\n" if key == "description"
                            else "")
    layers = [parse_layer(layer, f"model.layers[{i}]", source) for i, layer in enumerate(doc.model.layers)]
    model = ModelSpec(tuple(doc.model.input_shape), layers)
    data = DataSpec(_tensor_source(doc.data.inputs, "data.inputs", source),
                    _tensor_source(doc.data.targets, "data.targets", source), rng=doc.data.rng)
    if data.inputs is not None:
        shape = source_shape(data.inputs)
        if tuple(shape[1:]) != tuple(model.input_shape[1:]):
            want = list(model.input_shape[1:])
            raise PresetError(f"inputs have shape {list(shape)} but model.input_shape is {list(model.input_shape)}: "
                              f"each sample must have shape {want} (the first dimension counts samples)",
                              source=source, field="data.inputs")
    if checked:
        from ..data.tables import parse_data_tables  # late import: torch-heavy

        data.dataset, data.csv = parse_data_tables(doc.data.dataset, doc.data.csv, inputs=doc.data.inputs,
                                                   targets=doc.data.targets, source=source,
                                                   input_shape=model.input_shape)
    t = doc.training
    optimizer = t.optimizer if t.optimizer is not None else {"type": "SGD", "lr": 0.01}
    scheduler = None
    if t.scheduler is not None:
        from ..training.schedules import SCHEDULERS, check_required

        scheduler = _call_spec(t.scheduler, SCHEDULERS, "training.scheduler", source, "scheduler")
        check_required(scheduler, "training.scheduler", source)
        if t.reset_optimizer_each_step:
            raise PresetError("a scheduler cannot be combined with reset_optimizer_each_step (a fresh optimizer "
                              "every step would restart the schedule every step)", source=source,
                              field="training.scheduler")
        _check_schedule(scheduler, t, optimizer, source)
    if t.clip_grad_norm is not None and t.clip_grad_value is not None:
        raise PresetError("clip_grad_norm and clip_grad_value cannot both be set: a torch loop clips the "
                          "gradients one way", source=source, field="training.clip_grad_value",
                          hint="keep one: clip_grad_norm (the usual choice) or clip_grad_value")
    opt_name = optimizer if isinstance(optimizer, str) else optimizer.get("type") if isinstance(optimizer, dict) \
        else None
    if opt_name == "LBFGS":
        if t.reset_optimizer_each_step:
            raise PresetError("LBFGS cannot be combined with reset_optimizer_each_step: its history of "
                              "gradients is what it learns from", source=source,
                              field="training.reset_optimizer_each_step")
        if t.clip_grad_norm is not None or t.clip_grad_value is not None:
            raise PresetError("LBFGS cannot be combined with gradient clipping: its line search needs the true "
                              "gradients", source=source,
                              field="training.clip_grad_norm" if t.clip_grad_norm is not None
                              else "training.clip_grad_value")
    if t.target_loss is not None and not math.isfinite(t.target_loss):
        raise PresetError("expected a finite number", source=source, field="training.target_loss")
    training = TrainingSpec(
        loss=_call_spec(t.loss, LOSSES, "training.loss", source, "loss"),
        optimizer=_call_spec(optimizer, OPTIMIZERS, "training.optimizer", source, "optimizer"),
        steps=t.steps, batch_size=t.batch_size, shuffle=t.shuffle, device=t.device, seed=t.seed,
        target_loss=t.target_loss, reset_optimizer_each_step=t.reset_optimizer_each_step,
        scheduler=scheduler, target_accuracy=t.target_accuracy, drop_last=t.drop_last,
        clip_grad_norm=t.clip_grad_norm, clip_grad_value=t.clip_grad_value,
    )
    name = doc.preset.name or Path(source).stem
    pending = () if checked else (("data tables",) if doc.data.dataset is not None or doc.data.csv is not None
                                  else ()) + ("weights",)
    preset = Preset(name=name, model=model, description=doc.preset.description, lab=doc.preset.lab,
                    data=data, training=training, source=source, pending=pending)
    if checked:
        from ..model.build import validate_params  # late import: model/build.py imports torch

        validate_params(model, source)
    return preset



def load_preset(path: str | os.PathLike[str], *, checked: bool = True) -> Preset:
    """Load a preset from a file path, or a bundled preset by name (`lab004-...`). `checked=False`: a preview
    without torch (`preset_from_dict`)."""
    p = Path(path)
    if not p.exists():
        bundled = find_bundled(str(path))
        if bundled is None:
            names = [b.stem for b in bundled_presets()]
            raise PresetError(f"no such file or bundled preset{did_you_mean(p.stem, names)}", source=str(path))
        p = bundled
    try:
        info = p.stat()
        if not S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise PresetError("not a regular file", source=str(p))
        size = info.st_size
        if size > MAX_FILE_BYTES:
            raise PresetError(f"file too large ({size} bytes; at most {MAX_FILE_BYTES})", source=str(p))
        data = p.read_bytes()
    except OSError as err:
        raise PresetError(f"cannot read: {err.strerror or err}", source=str(p)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PresetError(f"not UTF-8 text (byte {err.start})", source=str(p)) from None
    return loads_preset(text, str(p), checked=checked)



# ---------------------------------------------------------------------------------------------
# bundled presets


def list_presets() -> list[tuple[str, Preset | PresetError]]:
    """(stem, preset or its error) for every bundled preset."""
    out: list[tuple[str, Preset | PresetError]] = []
    for p in bundled_presets():
        try:
            out.append((p.stem, load_preset(p)))
        except PresetError as err:
            out.append((p.stem, err))
    return out


__all__ = ['load_preset', 'loads_preset', 'preset_from_dict', 'list_presets', 'parse_layer', 'INIT_SCHEMES']
