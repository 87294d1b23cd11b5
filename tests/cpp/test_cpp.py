"""C++ under the shim: inventory.cpp (libpqxx, -O2 -g) opens its connection in an inlined function. The
exit report, text and JSON, must name that function's line in inventory.cpp as the site that opened the
leaked connection, past libpqxx's frames and the libpqxx template code inlined from its headers, with
demangled names, whether gcc or clang built it; the fixed twin leaks nothing. Each function is one
ctest test: python3 test_cpp.py NAME."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import check, eq, frames, leaks, main, run, validate_schema  # noqa: E402

PROG = os.environ.get("CPP_PROG", "")
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inventory.cpp")
LEAK_EXIT = 23
SKIP = 77  # ctest's SKIP_RETURN_CODE (CMakeLists.txt): no C++ compiler or no libpqxx at build time


def marked_line(marker):
    """The line of inventory.cpp that carries the comment marker."""
    with open(SOURCE) as f:
        for n, text in enumerate(f, 1):
            if f"// {marker}" in text:
                return n
    check(False, f"no {marker} in {SOURCE}")


def program():
    if not PROG or not os.path.exists(PROG):
        print("SKIP: cpp_inventory was not built (needs g++ and libpqxx-dev: tools/deps)", file=sys.stderr)
        sys.exit(SKIP)
    return PROG


def check_inlined(prog):
    """The test means something only if open_stock_db has no frame of its own at -O2."""
    syms = subprocess.run(["nm", "-C", prog], capture_output=True, text=True, check=True).stdout
    check("open_stock_db" not in syms, f"open_stock_db was compiled out of line in {prog}")
    info = subprocess.run(["readelf", "--debug-dump=info", prog], capture_output=True, text=True).stdout
    check("DW_TAG_inlined_subroutine" in info, f"no inlined subroutine in the debug info of {prog}")


def headline(fs, prog):
    """The frame a report should name (common/frames.c): the innermost of the program's own code; code
    inlined from installed headers (/usr/include) is the library's."""
    for f in fs:
        if f["lang"] == "c" and f["module"] == prog and not (f["file"] or "").startswith("/usr/include/"):
            return f
    return None


def libpqxx_leak_clang():
    """The clang build: its functions sit in namespace DIEs, and it has no .debug_aranges."""
    prog = program()
    sections = subprocess.run(["readelf", "-S", prog], capture_output=True, text=True, check=True).stdout
    check(".debug_aranges" not in sections, f"{prog} has .debug_aranges: the test no longer covers a unit without")
    libpqxx_leak()


def libpqxx_leak():
    prog = program()
    check_inlined(prog)
    open_line, call_line = marked_line("OPEN-LINE"), marked_line("CALL-LINE")
    r = run([prog, "leak"], env={"PQLEAK_EXITCODE": str(LEAK_EXIT)})
    eq(r.rc, LEAK_EXIT, f"exit status of a leaking run:\n{r.err}")
    eq(r.out.strip(), "3", "the program's own output")
    # Text: the opened-by site is the inlined function's line, then the line that called it; the names
    # are demangled, libpqxx's own included.
    site = re.search(r"opened by (.*):$", r.err, re.M)
    check(site, f"no opened-by site in the text report:\n{r.err}")
    want = (rf"shop::open_stock_db\(std::__cxx11::basic_string<[^)]*> const&\) \(inventory\.cpp:{open_line}\)"
            rf" <- shop::count_stock\(bool\) \(inventory\.cpp:{call_line}\)")
    check(re.fullmatch(want, site.group(1)), f"opened-by site: expected {want!r}, got {site.group(1)!r}")
    # libpqxx's own frames fold into one line by default; PQLEAK_FULL_STACKS=1 shows them, demangled.
    check(re.search(r"^    \.\.\. \d+ frames in libpqxx", r.err, re.M), f"libpqxx's frames folded:\n{r.err}")
    full = run([prog, "leak"], env={"PQLEAK_EXITCODE": str(LEAK_EXIT), "PQLEAK_FULL_STACKS": "1"}).err
    check(re.search(r"#\d+ 0x[0-9a-f]+ in pqxx::connectionpolicy::normalconnect\(pg_conn\*\) ", full),
          f"libpqxx's frame demangled in the text stack:\n{full}")
    check(not re.search(r" in _Z", r.err + full), f"a mangled name in the text report:\n{full}")
    numbers = [int(n) for n in re.findall(r"^    #(\d+) 0x", full, re.M)]
    eq(numbers, list(range(len(numbers))), "frame numbers of the text stack (one per inlined function too)")
    check(re.search(rf"#\d+ (0x[0-9a-f]+) in shop::open_stock_db\(.*\n\s+#\d+ \1 in shop::count_stock\(bool\) "
                    rf"\S*inventory\.cpp:{call_line} ", r.err),
          f"the inlined function and its caller at one address in the text stack:\n{r.err}")
    check("SUMMARY: pqleak: 1 connection leaked in 1 group" in r.err, f"summary line:\n{r.err}")
    # JSON: the same frames; the inlined functions are frames of their own at the caller's address.
    rep = r.only_report()
    validate_schema(rep)
    groups = leaks(rep)
    eq([(g["count"], g["kind"]) for g in groups], [(1, "unclosed")], "leak groups")
    fs = frames(rep, groups[0]["stack"])
    for f in fs:
        check(not (f["function"] or "").startswith("_Z"), f"mangled name in the JSON stack: {f}")
    h = headline(fs, prog)
    check(h is not None, f"no frame of the program in the JSON stack: {fs}")
    check(h["function"].startswith("shop::open_stock_db(") and h["file"] == SOURCE and h["line"] == open_line,
          f"JSON headline: expected shop::open_stock_db at {SOURCE}:{open_line}, got {h}")
    caller = fs[fs.index(h) + 1]
    check(caller["function"] == "shop::count_stock(bool)" and caller["file"] == SOURCE
          and caller["line"] == call_line, f"JSON caller of the inlined function: {caller}")
    eq(caller["offset"], h["offset"], "offset of the inlined function's frame and its caller's (one address)")


def libpqxx_suppressed():
    """A suppression names the inlined function by its demangled name: the leak is known, not counted."""
    prog = program()
    d = tempfile.mkdtemp(prefix="pqleak-cpp-")
    path = os.path.join(d, "supp")
    with open(path, "w") as f:
        f.write("leak:shop::open_stock_db(*\n")
    r = run([prog, "leak"], env={"PQLEAK_SUPPRESSIONS": path, "PQLEAK_EXITCODE": str(LEAK_EXIT)})
    shutil.rmtree(d)
    eq(r.rc, 0, f"exit status with the leak suppressed:\n{r.err}")
    sup = leaks(r.only_report(), suppressed=True)
    eq([(g["count"], g["rule"]) for g in sup], [(1, "leak:shop::open_stock_db(*")], "suppressed groups")
    eq(leaks(r.only_report()), [], "unsuppressed groups")


def libpqxx_clean():
    prog = program()
    r = run([prog, "fixed"], env={"PQLEAK_EXITCODE": str(LEAK_EXIT)})
    eq(r.rc, 0, f"exit status of the fixed twin:\n{r.err}")
    eq(r.out.strip(), "3", "the program's own output")
    check("pqleak" not in r.err, f"no pqleak output expected:\n{r.err}")
    rep = r.only_report()
    validate_schema(rep)
    eq(rep["utilization"]["opened_total"], 1, "opened_total")
    eq(rep["utilization"]["closed_total"], 1, "closed_total")
    eq(rep["leaks"], [], "leaks")


if __name__ == "__main__":
    main({"libpqxx_leak": libpqxx_leak, "libpqxx_clean": libpqxx_clean, "libpqxx_leak_clang": libpqxx_leak_clang,
          "libpqxx_suppressed": libpqxx_suppressed})
