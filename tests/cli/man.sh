#!/usr/bin/env bash
# The manual pages and the bash completion cannot drift from what they describe: pqleak(7) is what
# tools/man7 makes of docs/settings.md and names every setting of its table; pqleak(1) and the
# completion name every option each subcommand's --help lists; the completion completes them; and man
# renders both pages without a warning (where man is installed: tools/deps installs man-db).
source "$(dirname "$0")/lib.sh"
: "${CLI_SOURCE_DIR:?}"
S=$CLI_SOURCE_DIR
MAN1=$S/docs/man/pqleak.1
MAN7=$S/docs/man/pqleak.7
COMPLETION=$S/tools/pqleak/pqleak.bash

# pqleak(7) is generated: regenerating changes nothing.
"$S/tools/man7" >"$T/pqleak.7"
cmp -s "$T/pqleak.7" "$MAN7" || {
  diff "$MAN7" "$T/pqleak.7" | head -20 >&2
  fail "docs/man/pqleak.7 is not what tools/man7 makes of docs/settings.md: run tools/man7 > docs/man/pqleak.7"
}
# ... and names every setting of the table (one heading each), the roff minus read as a hyphen.
sed 's/\\-/-/g' "$MAN7" >"$T/man7.txt"
settings=$(sed -n 's/^| `\(PQLEAK_[A-Z_]*\)` |.*/\1/p' "$S/docs/settings.md")
[ "$(wc -w <<<"$settings")" -ge 20 ] || fail "found only these settings in docs/settings.md: $settings"
for v in $settings; do
  grep -qx ".SS \\\\fB$v\\\\fR" "$MAN7" || fail "pqleak.7 has no section for $v"
done

# pqleak(1) and the completion name every option of every subcommand.
# The subcommands are those `pqleak --help` lists, so a new one must be documented here too.
sed 's/\\-/-/g' "$MAN1" >"$T/man1.txt"
expect 0 "$PQLEAK" --help
subs=$(sed -n 's/^\(usage:\)\{0,1\} *pqleak \([a-z][a-z]*\)\( .*\)\{0,1\}$/\2/p' "$T/out" | sort -u)
[ "$(wc -w <<<"$subs")" -ge 4 ] || fail "pqleak --help lists these subcommands only: $subs"
for sub in $subs; do
  expect 0 "$PQLEAK" "$sub" --help
  opts=$(grep -o -- '--[a-z][a-z-]*' "$T/out" | sort -u)
  [ -n "$opts" ] || fail "no options in pqleak $sub --help"
  grep -qx "\.SS pqleak $sub.*" "$T/man1.txt" || fail "pqleak.1 has no section for $sub"
  for o in $opts; do
    has "$T/man1.txt" "$o"
    # The completion offers it for this subcommand.
    got=$(bash -c 'source "$1"; COMP_WORDS=(pqleak "$2" "$3"); COMP_CWORD=2; _pqleak; printf "%s\n" "${COMPREPLY[@]}"' \
      sh "$COMPLETION" "$sub" "$o")
    grep -qx -- "$o" <<<"$got" || fail "completion of 'pqleak $sub $o' offers: $got"
  done
done
# The completion: subcommands, values of FILE options, and the command after run's --.
got=$(bash -c 'source "$1"; COMP_WORDS=(pqleak rep); COMP_CWORD=1; _pqleak; echo "${COMPREPLY[@]}"' sh "$COMPLETION")
[ "$got" = report ] || fail "completion of 'pqleak rep' offers: $got"
touch "$T/rules.supp"
got=$(bash -c 'source "$1"; COMP_WORDS=(pqleak run --suppressions "$2/rul"); COMP_CWORD=3; _pqleak; echo "${COMPREPLY[@]}"' \
  sh "$COMPLETION" "$T")
[ "$got" = "$T/rules.supp" ] || fail "completion of a --suppressions file offers: $got"
got=$(bash -c 'source "$1"; COMP_WORDS=(pqleak run -- --st); COMP_CWORD=3; _pqleak; echo "${COMPREPLY[@]}"' sh "$COMPLETION")
[ -z "$got" ] || fail "after run's --, pqleak's options are still offered: $got"

# Rendering: no warning from man (groff's included) at 80 columns.
if ! command -v man >/dev/null; then
  echo "man is not installed (tools/deps installs man-db): rendering not checked"
else
  for page in "$MAN1" "$MAN7"; do
    MANWIDTH=80 man --warnings -l "$page" >"$T/out" 2>"$T/err" || { show; fail "man -l $page failed"; }
    [ ! -s "$T/err" ] || { show; fail "man warns about $page"; }
  done
  has "$T/out" "PQLEAK_HOOK_DLSYM"
fi
echo PASS
