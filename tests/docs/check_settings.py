#!/usr/bin/env python3
"""docs.settings: keeps docs/settings.md honest against the shim's settings table (src/config.c).

usage: check_settings.py SETTINGS_HELP_PROGRAM DOCS_SETTINGS_MD

SETTINGS_HELP_PROGRAM prints pql_settings_help's "NAME DEFAULT HELP" lines, a line "--", then the
report's "settings" object at the defaults (tests/docs/settings_help.c). The check fails when:
  - a setting of the table has no row in the summary table of docs/settings.md, or a row there gives
    another default or another report key;
  - the summary table has a row for a setting the table lacks, or one setting twice;
  - a setting of the table has no "### `PQLEAK_NAME`" section, or its "Default:" line disagrees;
  - docs/settings.md names any PQLEAK_* variable that is neither in the table nor in NOT_IN_TABLE.
"""
import json
import re
import subprocess
import sys

# Variables read outside the settings table, documented in their own section of docs/settings.md.
# Adding a name here is a deliberate act: these have no row in the summary table and no report key.
NOT_IN_TABLE = {
    "PQLEAK_LIB": "read by the pqleak command only (tools/pqleak/run.c)",
    "PQLEAK_OPTIONS": "every setting in one variable, read by the settings table's loader (src/base/config.c)",
}

# Names docs/settings.md shows as examples of what is not a setting (the misspelling warning).
NOT_SETTINGS = {"PQLEAK_MAXCONNS"}

NAME = re.compile(r"PQLEAK_[A-Z0-9_]+")


def table_from_program(prog):
    out = subprocess.run([prog], check=True, capture_output=True, text=True).stdout
    help_part, sep, json_part = out.partition("\n--\n")
    if not sep:
        sys.exit(f"{prog}: no '--' line in its output")
    settings = []
    for line in help_part.splitlines():
        m = re.match(r"^(PQLEAK_[A-Z0-9_]+)\s+(\S+)\s+(.*)$", line)
        if not m:
            sys.exit(f"{prog}: cannot read the help line {line!r}")
        settings.append({"name": m.group(1), "default": m.group(2), "help": m.group(3)})
    keys = list(json.loads(json_part).keys())
    if len(keys) != len(settings):
        sys.exit(f"{prog}: {len(settings)} help lines but {len(keys)} report keys")
    # pql_settings_help and pql_settings_json both walk the table in order.
    for s, k in zip(settings, keys):
        s["key"] = k
    return settings


def cell(text):
    text = text.strip()
    if len(text) >= 2 and text[0] == "`" and text[-1] == "`":
        text = text[1:-1]
    return text


def read_docs(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rows = []  # (line number, name, default, key)
    sections = {}  # name -> [line numbers of its "### `NAME`" headings]
    defaults = {}  # name -> [(line number, default)] from "Default: `X`" lines in its section
    current = None
    for no, line in enumerate(lines, 1):
        if line.startswith("|"):
            cells = line.strip().strip("|").split("|")
            if cells and NAME.fullmatch(cell(cells[0])):
                if len(cells) < 3:
                    rows.append((no, cell(cells[0]), None, None))
                else:
                    rows.append((no, cell(cells[0]), cell(cells[1]), cell(cells[2])))
        if re.match(r"^#{1,6}\s", line):
            h = re.fullmatch(r"###\s+`?(PQLEAK_[A-Z0-9_]+)`?\s*", line)
            current = h.group(1) if h else None
            if current:
                sections.setdefault(current, []).append(no)
            continue
        d = re.match(r"^Default:\s+`([^`]*)`", line)
        if d and current:
            defaults.setdefault(current, []).append((no, d.group(1)))
    mentioned = {}
    for no, line in enumerate(lines, 1):
        for n in NAME.findall(line):
            mentioned.setdefault(n, no)
    return rows, sections, defaults, mentioned


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    prog, doc = sys.argv[1], sys.argv[2]
    table = table_from_program(prog)
    by_name = {s["name"]: s for s in table}
    rows, sections, defaults, mentioned = read_docs(doc)
    errors = []

    seen = {}
    for no, name, default, key in rows:
        if name in seen:
            errors.append(f"{doc}:{no}: {name} has a second row (first at line {seen[name]})")
            continue
        seen[name] = no
        s = by_name.get(name)
        if not s:
            errors.append(f"{doc}:{no}: {name} is in the summary table but not in the settings table "
                          f"(src/config.c)")
            continue
        if default is None:
            errors.append(f"{doc}:{no}: the row of {name} has no default and report key columns")
            continue
        if default != s["default"]:
            errors.append(f"{doc}:{no}: {name} default is `{default}` here, `{s['default']}` in the "
                          f"settings table")
        if key != s["key"]:
            errors.append(f"{doc}:{no}: {name} report key is `{key}` here, `{s['key']}` in the settings "
                          f"table")
    for s in table:
        if s["name"] not in seen:
            errors.append(f"{doc}: {s['name']} (default {s['default']}: {s['help']}) has no row in the "
                          f"summary table")

    for s in table:
        name = s["name"]
        heads = sections.get(name, [])
        if not heads:
            errors.append(f"{doc}: {name} has no '### `{name}`' section")
        elif len(heads) > 1:
            errors.append(f"{doc}:{heads[1]}: {name} has a second section (first at line {heads[0]})")
        ds = defaults.get(name, [])
        if heads and not ds:
            errors.append(f"{doc}:{heads[0]}: the section of {name} has no 'Default: `...`' line")
        for no, d in ds:
            if d != s["default"]:
                errors.append(f"{doc}:{no}: {name} default is `{d}` here, `{s['default']}` in the settings "
                              f"table")

    for name, no in sorted(mentioned.items(), key=lambda x: x[1]):
        if name in by_name or name in NOT_IN_TABLE or name in NOT_SETTINGS:
            continue
        errors.append(f"{doc}:{no}: {name} is not a setting of the settings table (src/config.c) nor a "
                      f"known variable read outside it")
    for name, why in NOT_IN_TABLE.items():
        if name in by_name:
            errors.append(f"{name} is now in the settings table: remove it from NOT_IN_TABLE in {__file__}")
        elif name not in sections:
            errors.append(f"{doc}: {name} ({why}) has no '### `{name}`' section")

    if errors:
        for e in errors:
            print(f"docs.settings: {e}", file=sys.stderr)
        print(f"docs.settings: FAILED, {len(errors)} problem(s); docs/settings.md must match the settings "
              f"table of src/config.c", file=sys.stderr)
        return 1
    print(f"docs.settings: {len(table)} settings of the table documented with their defaults and report "
          f"keys; {len(NOT_IN_TABLE)} variables outside the table documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
