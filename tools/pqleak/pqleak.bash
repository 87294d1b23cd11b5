# bash completion for pqleak(1): subcommands, each one's options, files for FILE/DIR/PATH values and
# the command after `run ... --`. Installed as share/bash-completion/completions/pqleak; tests/cli/man.sh
# checks that it offers every option each subcommand's --help lists.
_pqleak() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  }
  if [ "$cword" -eq 1 ]; then
    mapfile -t COMPREPLY < <(compgen -W 'run report status suppressions --help --version' -- "$cur")
    return
  fi
  local sub=${words[1]} opts i
  case $sub in
    run)
      # After --, the rest is the command's: complete as a command line of its own.
      for ((i = 2; i < cword; i++)); do
        if [ "${words[i]}" = -- ]; then
          if declare -F _command_offset >/dev/null; then
            _command_offset $((i + 1))
          else
            mapfile -t COMPREPLY < <(compgen -c -- "$cur")
          fi
          return
        fi
      done
      opts='--report-dir --json --junit --suppressions --max-conns --checkout-timeout --exitcode
            --no-fail --strict --full-stacks --help --'
      ;;
    report) opts='--json --suppressions --junit --strict --full-stacks --help' ;;
    status) opts='--json --timeout --help' ;;
    suppressions) opts='--help' ;;
    *) return ;;
  esac
  case $prev in
    --report-dir)
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return
      ;;
    --json | --junit | --suppressions)
      [ "$sub" = report ] && [ "$prev" = --json ] || {
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
      }
      ;;
    --max-conns | --checkout-timeout | --exitcode | --timeout) return ;;
  esac
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
  elif [ "$sub" = status ]; then
    mapfile -t COMPREPLY < <(compgen -W "$(pgrep -u "$(id -u)" 2>/dev/null)" -- "$cur")
  elif [ "$sub" != run ]; then
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}
complete -F _pqleak pqleak
