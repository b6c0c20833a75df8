#!/bin/bash
# test_completion.sh - contrib/smtpscope.bash-completion completes what the
# binary accepts.
#
# Usage: test_completion.sh SMTPSCOPE COMPLETION-FILE
#
# Drives the completion function as bash would (COMP_WORDS, COMP_CWORD) and
# checks: subcommands; interface names after -i; the values of -f, --color,
# --fail-on and --split; and, for every subcommand, that each long option its
# --help lists is offered, and no option that --help does not list.  Needs
# the bash-completion package (skipped, status 77, without it).
set -u
smtpscope=$1
file=$2
bc=/usr/share/bash-completion/bash_completion
[ -r "$bc" ] || { echo "skip: bash-completion is not installed"; exit 77; }
# bash_completion reads these unset under set -u.
set +u
# shellcheck disable=SC1090
. "$bc"
# shellcheck disable=SC1090
. "$file"
set -u

fail=0
# complete WORDS...: the completions bash would offer for the last word.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _smtpscope smtpscope "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}" | sort
}

# expect "WHAT" "WORDS..." "EXPECTED (space-separated, sorted or not)"
expect() {
    local what=$1 words=$2 want got
    want=$(printf '%s\n' $3 | sort)
    # shellcheck disable=SC2086
    got=$(complete_words $words)
    if [ "$got" != "$want" ]; then
        echo "FAIL $what: completing '$words'"
        echo "  want: $(echo $want)"
        echo "  got:  $(echo $got)"
        fail=1
    else
        echo "ok   $what"
    fi
}

expect "subcommands" "smtpscope ''" "analyze compare live rules --help --version"
expect "subcommand prefix" "smtpscope co" "compare"
expect "formats" "smtpscope analyze -f ''" "text json yaml"
expect "rules formats" "smtpscope rules --format ''" "text json yaml markdown"
expect "colours" "smtpscope analyze --color ''" "auto always never"
expect "severities" "smtpscope analyze --fail-on ''" "info low medium high never"
expect "split" "smtpscope compare --split ''" "vlan mac ttl encap"

# -i offers the machine's interfaces (and any).
ifaces=$(ls /sys/class/net 2>/dev/null)
expect "interfaces" "smtpscope live -i ''" "any $ifaces"
if [ -e /sys/class/net/lo ]; then
    expect "interface prefix" "smtpscope live -i l" "$(ls /sys/class/net | grep '^l')"
fi

# Every long option of each subcommand's --help, and nothing else.
for cmd in analyze live compare rules; do
    help_opts=$("$smtpscope" "$cmd" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
    # shellcheck disable=SC2207
    comp_opts=$(complete_words smtpscope "$cmd" -- | grep -- '^--' | sort -u)
    if [ "$help_opts" != "$comp_opts" ]; then
        echo "FAIL $cmd: long options differ between --help and the completion"
        diff <(echo "$help_opts") <(echo "$comp_opts") | sed 's/^/  /'
        fail=1
    else
        echo "ok   $cmd options ($(echo "$help_opts" | wc -l) long options)"
    fi
done
exit $fail
