"""ops.version: the version is written once (PQL_VERSION in common/names.h) and every place that shows it
agrees: `pqleak --version`, a report's pqleak_version, the text report's SUMMARY line, CHANGELOG.md's
newest section; LICENSE is the PostgreSQL License; `tools/pgserver env` prints export lines a shell can
eval to reach the server.

usage: test_version.py PGSTATE"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["PQLEAK_SRC"], "tests", "integration"))
from harness import check, eq, run  # noqa: E402

SRC = os.environ["PQLEAK_SRC"]
CLIENT = [sys.executable, os.path.join(SRC, "tests", "ops", "client.py")]


def main():
    names = open(os.path.join(SRC, "common", "names.h")).read()
    found = re.findall(r'^#define PQL_VERSION "([0-9]+\.[0-9]+\.[0-9]+)"$', names, re.M)
    eq(len(found), 1, "one PQL_VERSION in common/names.h")
    version = found[0]
    check(len(re.findall(r'"\d+\.\d+\.\d+"', names)) == 1, "no other version string in names.h")

    p = subprocess.run([os.environ["PQLEAK_CLI"], "--version"], capture_output=True, text=True)
    eq((p.returncode, p.stdout), (0, f"pqleak {version}\n"), "pqleak --version")

    r = run(CLIENT + ["connect", "1"], env={"PQLEAK_STRICT": "1"})
    eq(r.only_report()["pqleak_version"], version, "the report's pqleak_version")
    check(re.search(rf"^SUMMARY: pqleak: 1 connection leaked in 1 group \(.*, pid \d+, pqleak {re.escape(version)}\)$",
                    r.err, re.M), f"SUMMARY line with the version:\n{r.err}")

    changelog = open(os.path.join(SRC, "CHANGELOG.md")).read()
    sections = re.findall(r"^## (\S+)", changelog, re.M)
    check(sections and sections[0] == version, f"CHANGELOG.md's newest section is {version}: {sections}")

    lic = open(os.path.join(SRC, "LICENSE")).read()
    check(lic.startswith("PostgreSQL License\n") and "Copyright (c) 2026, the pqleak authors" in lic
          and "Permission to use, copy, modify, and distribute this software" in lic, "LICENSE")

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    p = subprocess.run(["bash", "-c", 'eval "$("$0" env "$1")" && psql -XAtc "select 42"',
                        os.path.join(SRC, "tools", "pgserver"), sys.argv[1]], env=env, capture_output=True, text=True)
    eq((p.returncode, p.stdout.strip()), (0, "42"), f"psql after eval of pgserver env: {p.stderr}")
    out = subprocess.run([os.path.join(SRC, "tools", "pgserver"), "env", sys.argv[1]], check=True,
                         capture_output=True, text=True).stdout
    check(all(line.startswith("export PG") for line in out.splitlines()), f"export lines:\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
