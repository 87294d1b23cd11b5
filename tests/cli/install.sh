#!/usr/bin/env bash
# `cmake --install` puts the command, the shim, both manual pages and the bash completion in place;
# the installed command finds the installed shim (../lib next to it); man reads the pages from there.
source "$(dirname "$0")/lib.sh"
: "${CLI_BUILD_DIR:?}" "${CMAKE_COMMAND:?}"
P=$T/prefix

"$CMAKE_COMMAND" --install "$CLI_BUILD_DIR" --prefix "$P" >"$T/log" 2>&1 || { cat "$T/log" >&2; fail "cmake --install failed"; }
for f in bin/pqleak lib/libpqleak.so share/man/man1/pqleak.1 share/man/man7/pqleak.7 \
  share/bash-completion/completions/pqleak; do
  [ -f "$P/$f" ] || { find "$P" >&2; fail "cmake --install did not install $f"; }
done
[ -x "$P/bin/pqleak" ] || fail "bin/pqleak is not executable"
expect 0 env -u PQLEAK_LIB "$P/bin/pqleak" run -- sh -c 'echo "$LD_PRELOAD"'
has "$T/out" "$P/lib/libpqleak.so"
expect 0 "$P/bin/pqleak" run --help
has "$T/out" "usage: pqleak run"

if ! command -v man >/dev/null; then
  echo "man is not installed (tools/deps installs man-db): installed pages not read"
else
  for s in 1 7; do
    MANWIDTH=80 man --warnings -M "$P/share/man" "$s" pqleak >"$T/out" 2>"$T/err" || { show; fail "man $s pqleak"; }
    [ ! -s "$T/err" ] || { show; fail "man warns about the installed pqleak($s)"; }
    has "$T/out" "PQLEAK($s)"
  done
fi
echo PASS
