#!/bin/sh
# test_cli.sh - the command line end to end: configuration files (good and
# bad), rule switches and severities, custom signatures, --fail-on, and
# -w (the written capture is analysed again and must hold exactly the
# flagged sessions).
#
# Usage: test_cli.sh SMTPSCOPE PCAPS_DIR
set -u
bin=$1
pcaps=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# run NAME EXPECTED_STATUS ARGS...: output in $tmp/out, errors in $tmp/err
run() {
    name=$1
    want=$2
    shift 2
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    [ "$got" = "$want" ] || fail "$name: exit status $got, expected $want ($(head -c 300 "$tmp/err"))"
}

has() { grep -q -- "$2" "$tmp/$1" || fail "$3: \"$2\" not in $1"; }
hasnt() { ! grep -q -- "$2" "$tmp/$1" || fail "$3: \"$2\" in $1"; }
count() { n=$(grep -c -- "$2" "$tmp/$1"); [ "$n" = "$3" ] || fail "$4: $n lines with \"$2\" in $1, expected $3"; }

masked=$pcaps/synth-asa-starttls-masked.pcap
plain=$pcaps/postfix-plain.pcap

# Defaults: findings mean exit 1, none mean 0.
run defaults 1 analyze -q -f json "$masked"
count out '"type":"finding"' 3 defaults
has out '"rule":"starttls_stripped","severity":"high"' defaults
has out '"filter":"frame.number == ' defaults
run clean 0 analyze -q -f json "$plain"
count out '"type":"finding"' 0 clean

# --fail-on
run fail-on-high 1 analyze -q --fail-on high "$masked"
run fail-on-never 0 analyze -q --fail-on never "$masked"
run fail-on-bad 2 analyze -q --fail-on sometimes "$masked"
has err 'fail-on' fail-on-bad

# A configuration that disables a rule, changes a severity, adds a signature.
cat >"$tmp/c1.yaml" <<'YAML'
# comment
fail_on: medium
rules:
  banner_masked: {enabled: false}
  ehlo_keyword_masked: {severity: low}
signatures:
  - id: postfix_banner
    target: banner
    pattern: "^220 [^ ]+ ESMTP"
    severity: info
    explanation: "The server speaks ESMTP."
YAML
run config 1 analyze -q -f json -c "$tmp/c1.yaml" "$masked"
hasnt out '"rule":"banner_masked"' config
has out '"rule":"ehlo_keyword_masked","severity":"low"' config
run config-signature 0 analyze -q -f json -c "$tmp/c1.yaml" "$plain"
has out '"rule":"postfix_banner","severity":"info"' config-signature
has out '"explanation":"The server speaks ESMTP."' config-signature
# The command line wins over the file.
run config-cli 1 analyze -q -c "$tmp/c1.yaml" --fail-on info "$plain"

# Thresholds: a limit raised above what the capture shows is no limit drop.
printf 'thresholds: {rcpt_max: 200}\n' >"$tmp/c2.yaml"
run thresholds-default 1 analyze -q -f json "$pcaps/synth-asa-limit-rcpt.pcap"
has out '"rule":"limit_drop"' thresholds-default
run thresholds 1 analyze -q -f json -c "$tmp/c2.yaml" "$pcaps/synth-asa-limit-rcpt.pcap"
hasnt out '"rule":"limit_drop"' thresholds

# Servers that do not offer TLS on purpose.
run no-tls-default 1 analyze -q -f json "$pcaps/synth-alg-delete-some.pcap"
has out '"rule":"inconsistent_server"' no-tls-default
printf 'no_tls_servers: ["192.0.2.25"]\nports: [25]\n' >"$tmp/c3.yaml"
run no-tls 0 analyze -q -f json -c "$tmp/c3.yaml" "$pcaps/synth-alg-delete-some.pcap"
hasnt out '"rule":"inconsistent_server"' no-tls
hasnt out '"rule":"starttls_stripped"' no-tls

# Bad files: the file, line and column, exit 2, nothing analysed.
printf 'rules:\n  banner_maskd: {enabled: false}\n' >"$tmp/bad1.yaml"
run bad-rule 2 analyze -q -c "$tmp/bad1.yaml" "$plain"
has err "bad1.yaml:2:17: unknown rule \"banner_maskd\"" bad-rule
[ -s "$tmp/out" ] && fail "bad-rule: output written"
printf 'ports: [25]\ntimeout: 5\n' >"$tmp/bad2.yaml"
run bad-key 2 analyze -q -c "$tmp/bad2.yaml" "$plain"
has err 'bad2.yaml:2:10: unknown key "timeout"' bad-key
printf 'signatures:\n  - {id: x, target: banner, pattern: "a(b"}\n' >"$tmp/bad3.yaml"
run bad-regex 2 analyze -q -c "$tmp/bad3.yaml" "$plain"
has err "bad3.yaml:2:38: pattern at offset 1: missing ')'" bad-regex
printf 'signatures:\n  - {id: banner_masked, target: banner, pattern: x}\n' >"$tmp/bad6.yaml"
run builtin-id 2 analyze -q -c "$tmp/bad6.yaml" "$plain"
has err 'built-in rule id' builtin-id
# Patterns glibc's regcomp took minutes or gigabytes on (fuzz_yaml found
# them: docs/FUZZING.md, bugs 2, 10, 13, 14, 15); common/ere.h refuses the
# first three and compiles the last one in linear time.
printf 'signatures:\n  - {id: p, target: banner, pattern: "((a{255}){255}){255}"}\n' >"$tmp/bad7.yaml"
run bound-blowup 2 analyze -q -c "$tmp/bad7.yaml" "$plain"
has err 'bad7.yaml:2:38: pattern repeats too much: over 8192 instructions' bound-blowup
printf 'signatures:\n  - {id: p, target: banner, pattern: "(a) b)+++++++++++++++"}\n' >"$tmp/bad8.yaml"
run plus-stack 2 analyze -q -c "$tmp/bad8.yaml" "$plain"
has err 'bad8.yaml:2:38: pattern at offset 10: over 4 repetition operators in a row' plus-stack
# Back-references are not POSIX ERE, and regexec took 10 s on one 200-byte
# line with "(a*)*\1b".
printf 'signatures:\n  - {id: p, target: banner, pattern: "(a*)*\\\\1b"}\n' >"$tmp/bad9.yaml"
run backref 2 analyze -q -c "$tmp/bad9.yaml" "$plain"
has err 'bad9.yaml:2:38: pattern at offset 5: back-references' backref
# 1,000 optional groups and a starred one: a minute in glibc's regcomp.
# It matches the empty string, so every banner.
printf 'signatures:\n  - {id: p, target: banner, pattern: "(|a){1000}(a|)*"}\n' >"$tmp/ok8.yaml"
run nullable-chain 1 analyze -q -f json -c "$tmp/ok8.yaml" "$plain"
has out '"rule":"p"' nullable-chain
printf 'signatures:\n  - {id: p, target: banner, pattern: "^999 X+Y+Z+ [^ ]+"}\n' >"$tmp/ok7.yaml"
run plus-ok 0 analyze -q -c "$tmp/ok7.yaml" "$plain"

# smtpscope rules, with a configuration's changes.
run rules 0 rules
count out '^[a-z_]* *\(info\|low\|medium\|high\) ' 14 rules
run rules-json 0 rules -f json -c "$tmp/c1.yaml"
has out '"id":"banner_masked","severity":"medium","enabled":false' rules-json
has out '"id":"postfix_banner"' rules-json
run rules-bad 2 rules -f html

# -w: the flagged sessions only, every packet of them, readable again.
run write 1 analyze -q -f json -w "$tmp/flagged.pcap" "$masked" "$plain"
has out '"written":{"file":' write
run write-reread 1 analyze -q -f json "$tmp/flagged.pcap"
count out '"type":"session"' 1 write-reread
has out '"client":"203.0.113.10:40000"' write-reread
has out '"rule":"starttls_stripped"' write-reread
run write-clean 0 analyze -q -w "$tmp/none.pcap" "$plain"
run write-empty-reread 0 analyze -q -f json "$tmp/none.pcap"
count out '"type":"session"' 0 write-empty-reread
run write-stdin 2 analyze -q -w "$tmp/x.pcap" - <"$plain"
has err 'needs files' write-stdin
run write-unwritable 2 analyze -q -w "$tmp/no/such/dir.pcap" "$plain"
has err 'no/such/dir.pcap' write-unwritable

# The same middlebox seen through different link types, IP versions, VLAN
# tags, NAT and capture formats: the same findings, on both sides.
rulesof() {
    "$bin" analyze -q -f json "$1" | grep '"type":"finding"' |
        sed 's/.*"rule":"\([^"]*\)".*/\1/' | sort | tr '\n' ' '
}
for side in "" "-inside"; do
    base=$(rulesof "$pcaps/synth-asa-starttls-masked$side.pcap")
    [ -n "$base" ] || [ "$side" = "-inside" ] || fail "variants: no findings in the base capture"
    for v in ipv6 vlan-qinq asa-nat-isn asa-sll2-pcapng asa-raw-ns; do
        f=$(ls "$pcaps/synth-$v$side".pcap* 2>/dev/null | head -1)
        [ -n "$f" ] || { fail "variants: no capture for $v$side"; continue; }
        got=$(rulesof "$f")
        [ "$got" = "$base" ] || fail "variants: $v$side found [$got], the base [$base]"
    done
done

# compare on the real two-sided capture through a plain router: one pair,
# nothing but the TTL (one hop) differs, exit 0.
if [ -f "$pcaps/postfix-routed.pcap" ]; then
    run compare-routed 0 compare -q -f json "$pcaps/postfix-routed.pcap" "$pcaps/postfix-routed-inside.pcap"
    count out '"type":"pair"' 1 compare-routed
    count out '"type":"diff"' 2 compare-routed
    count out '"kind":"tcp_changed"' 2 compare-routed
    has out 'client TTL 64 outside, 63 inside' compare-routed
    has out '"worst":"info"' compare-routed
fi

if [ "$fails" -ne 0 ]; then
    echo "test_cli: $fails failures"
    exit 1
fi
echo "test_cli: all passed"
