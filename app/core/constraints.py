"""Constrained decoding: what an answer may say, as one llama.cpp grammar (GBNF).

An item's `{choices=["yes", "no"]}`, `{regex="[0-9]{3}-[0-9]{4}"}`, `{json_schema={…}}` (or a
schema file's path) or `{grammar='root ::= …'}`, and the SDK's `sample(choices=…, regex=…,
json_schema=…, grammar=…)`, each become a `Constraint` holding its GBNF. Normal mode gives it to
llama.cpp's grammar sampler; learning mode applies it as a stage of its own, so every candidate
shows its probability before and after it.

The JSON-schema and regex converters are llama.cpp's own (the Python port in llama-cpp-python),
loaded from their file without importing the `llama_cpp` package, which would load the native
library into the studio's process. Whether llama.cpp's parser accepts a grammar is asked in a
short-lived process of its own (`check_grammar`): a grammar is refused before a run starts.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from app.core.errors import GrammarError

KINDS = ("choices", "regex", "json_schema", "grammar")
MAX_CHOICES = 1000
MAX_GRAMMAR_CHARACTERS = 100_000
JSON_CHAR_RULE = 'char ::= [^"\\\\] |'
JSON_CHAR_RULE_STRICT = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
"""llama-cpp-python's converter lets raw control characters into JSON strings, which is not JSON;
llama.cpp's own converter keeps them out, as the strict rule does."""
CHECK_SECONDS = 60


@dataclass(frozen=True)
class Constraint:
    """One answer's constraint: its kind, what was given (for messages) and its grammar."""

    kind: str
    given: str
    gbnf: str
    schema: dict[str, Any] | None = None  # a json_schema constraint's schema

    def describe(self) -> str:
        """A short phrase for the transcript and messages."""
        shown = self.given if len(self.given) <= 60 else self.given[:59] + "…"
        return f"{self.kind}={shown}"


@functools.lru_cache(maxsize=1)
def _converters() -> ModuleType:
    """llama-cpp-python's `llama_grammar` module (pure Python), loaded from its file alone."""
    spec = importlib.util.find_spec("llama_cpp")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise GrammarError("constrained decoding needs llama-cpp-python, which is not installed")
    path = Path(locations[0]) / "llama_grammar.py"
    module_spec = importlib.util.spec_from_file_location("chain_studio_llama_grammar", path)
    if module_spec is None or module_spec.loader is None:
        raise GrammarError(f"cannot read llama-cpp-python's grammar converters at {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\r":
            escaped.append("\\r")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\x{ord(char):02X}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def choices_grammar(choices: list[str]) -> str:
    """One of `choices`, exactly."""
    return "root ::= " + " | ".join(literal(choice) for choice in choices)


def regex_grammar(pattern: str) -> str:
    """Text matching `pattern` whole (llama.cpp's regex conversion, as its `--raw-pattern`)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise GrammarError(f"regex {pattern!r} is not a regular expression: {exc}") from None
    anchored = pattern if pattern.startswith("^") else "^" + pattern
    anchored = anchored if anchored.endswith("$") and not anchored.endswith("\\$") else anchored + "$"
    converter = _converters().SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=True)
    try:
        converter.visit({"type": "string", "pattern": anchored}, "")
    except Exception as exc:  # the converter raises whatever the pattern trips on
        raise GrammarError(f"regex {pattern!r} cannot be turned into a grammar: {exc}") from None
    return str(converter.format_grammar())


NOT_ENFORCED = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems",
                "contains", "not", "if", "then", "else", "patternProperties", "propertyNames", "minProperties",
                "maxProperties", "dependentRequired", "dependentSchemas")
"""JSON-schema keywords llama-cpp-python's converter leaves out of the grammar: a schema using them
is refused, so that every constrained answer is valid for its schema."""
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def unenforced_keywords(schema: Any) -> list[str]:
    """The keywords of `schema` (and its subschemas) that decoding cannot enforce, in order found."""
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        found += [keyword for keyword in NOT_ENFORCED if keyword in node and keyword not in found]
        for key in _SUBSCHEMA_MAPS:
            if isinstance(node.get(key), Mapping):
                stack += list(node[key].values())
        for key in _SUBSCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack += node[key]
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), Mapping):
                stack.append(node[key])
    return found


def json_schema_grammar(schema: Mapping[str, Any]) -> str:
    """JSON text valid for `schema` (llama.cpp's JSON-schema conversion, strict strings)."""
    unenforced = unenforced_keywords(schema)
    if unenforced:
        raise GrammarError(f"json_schema uses {', '.join(unenforced)}, which decoding cannot enforce (the grammar "
                           "converter leaves it out): remove it from the schema, or check it after the answer")
    try:
        gbnf = _converters().json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises whatever the schema trips on
        raise GrammarError(f"the JSON schema cannot be turned into a grammar: {exc}") from None
    return str(gbnf).replace(JSON_CHAR_RULE, JSON_CHAR_RULE_STRICT)


def read_schema(value: Any, base: Path | None = None) -> dict[str, Any]:
    """A JSON schema given inline (an object, or its JSON text) or as the path of a .json file
    (relative to `base`, else the current folder)."""
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str):
        raise GrammarError("json_schema must be a JSON object, or the quoted path of a .json file")
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if not path.is_absolute() and base is not None and (base / path).exists():
            path = base / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GrammarError(f"json_schema: cannot read the schema file {str(path)!r}: "
                                  f"{exc.strerror or exc}") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GrammarError(f"json_schema is not valid JSON: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}") from None
    if not isinstance(schema, dict):
        raise GrammarError("json_schema must be a JSON object, or the quoted path of a .json file")
    return schema


def make_constraint(kind: str, value: Any, base: Path | None = None) -> Constraint:
    """The constraint `kind=value` (raises GrammarError saying what is wrong with it)."""
    if kind == "choices":
        items = value if isinstance(value, list) else None
        if not items or not all(isinstance(v, str) and v for v in items) or len(items) > MAX_CHOICES:
            raise GrammarError(f"choices must be a list of 1 to {MAX_CHOICES} non-empty strings, "
                                  'e.g. choices=["yes", "no"]')
        return Constraint(kind, json.dumps(items, ensure_ascii=False), choices_grammar(items))
    if kind == "regex":
        if not isinstance(value, str) or not value:
            raise GrammarError('regex must be a quoted regular expression, e.g. regex="[0-9]{3}"')
        return Constraint(kind, value, regex_grammar(value))
    if kind == "json_schema":
        schema = read_schema(value, base)
        return Constraint(kind, json.dumps(schema, ensure_ascii=False), json_schema_grammar(schema), schema)
    if kind == "grammar":
        if not isinstance(value, str) or not value.strip():
            raise GrammarError("grammar must be a quoted GBNF grammar with a root rule, "
                                  "e.g. grammar='root ::= \"yes\" | \"no\"'")
        if len(value) > MAX_GRAMMAR_CHARACTERS:
            raise GrammarError(f"grammar has {len(value):,} characters; at most {MAX_GRAMMAR_CHARACTERS:,}")
        return Constraint(kind, value, value)
    raise GrammarError(f"unknown constraint {kind}; the constraints are {', '.join(KINDS)}")


def constraint_in(options: Mapping[str, Any], base: Path | None = None) -> Constraint | None:
    """The one constraint among `options` (item settings or SDK arguments), or None."""
    given = [kind for kind in KINDS if options.get(kind) is not None]
    if len(given) > 1:
        raise GrammarError(f"{' and '.join(given)} are both set: give one constraint per answer")
    return make_constraint(given[0], options[given[0]], base) if given else None


_CHECK_SCRIPT = """
import sys
import llama_cpp
grammar = sys.stdin.buffer.read()
sampler = llama_cpp.llama_sampler_init_grammar(None, grammar, b"root")
if not sampler:
    sys.exit(3)
llama_cpp.llama_sampler_free(sampler)
"""


@functools.lru_cache(maxsize=256)
def check_grammar(gbnf: str) -> None:
    """Raise GrammarError with llama.cpp's own words when its parser refuses `gbnf` (an undefined
    rule, no root rule, left recursion, a syntax error). The parser runs in a process of its own:
    a grammar never reaches native code in the studio's process."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHECK_SCRIPT], input=gbnf.encode("utf-8"),
                              capture_output=True, timeout=CHECK_SECONDS)
    except subprocess.TimeoutExpired:
        raise GrammarError(f"llama.cpp's grammar parser took over {CHECK_SECONDS} s on this grammar") from None
    if done.returncode == 0:
        return
    said = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith(("Traceback", "  "))]
    reason = next((line.split("error parsing grammar:", 1)[1].strip() for line in said
                   if "error parsing grammar:" in line), None)
    reason = reason or next((line for line in said if "grammar" in line.lower() and "failed to parse" not in line),
                            "llama.cpp's parser refused it")
    raise GrammarError(f"the grammar cannot be used: {reason}")
