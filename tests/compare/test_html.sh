#!/bin/sh
# test_html.sh - the HTML report of compare, rendered by headless Chromium.
#
# Writes the report for two two-sided scenarios, has Chromium load each one
# (no network, no external assets: the page must be self-contained), dumps
# the DOM Chromium built and checks it for the expected differences, and
# saves a screenshot next to the build (compare-*.png) to look at.
#
# Usage: test_html.sh SMTPSCOPE PCAPS_DIR OUT_DIR
# Exit: 0 pass, 1 fail, 77 Chromium not installed (skipped).
set -u
bin=$1
pcaps=$2
out=$3
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "test_html: chromium not installed: skipped"
    exit 77
fi
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
mkdir -p "$out"

render() { # NAME: writes $out/compare-NAME.html, .dom and .png
    name=$1
    "$bin" compare -q --html "$out/compare-$name.html" \
        "$pcaps/synth-$name.pcap" "$pcaps/synth-$name-inside.pcap" >/dev/null
    rc=$?
    [ "$rc" -le 1 ] || fail "$name: compare exited $rc"
    # The page may fetch nothing: every request but the file itself fails.
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --proxy-server=127.0.0.1:9 --dump-dom "file://$out/compare-$name.html" \
        >"$out/compare-$name.dom" 2>/dev/null || fail "$name: chromium could not load the page"
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --proxy-server=127.0.0.1:9 --window-size=1280,1000 \
        --screenshot="$out/compare-$name.png" "file://$out/compare-$name.html" \
        >/dev/null 2>&1 || fail "$name: no screenshot"
    [ -s "$out/compare-$name.png" ] || fail "$name: empty screenshot"
}

has() { grep -q -- "$2" "$out/compare-$1.dom" || fail "$1: the DOM lacks $2"; }
count() {
    n=$(grep -o -- "$2" "$out/compare-$1.dom" | wc -l)
    [ "$n" -eq "$3" ] || fail "$1: $n times $2 in the DOM, expected $3"
}

render asa-starttls-masked
has asa-starttls-masked '<td id="pairs">1</td>'
count asa-starttls-masked '<tr class="diff kind-masked">' 5
has asa-starttls-masked '<td class="rule">starttls_stripped</td>'
has asa-starttls-masked '<td class="rule">banner_masked</td>'
# The changed bytes are marked on both sides of the dialogue.
has asa-starttls-masked '<mark>XXXXXXXB</mark>'
has asa-starttls-masked '<mark>STARTTLS</mark>'
count asa-starttls-masked '<tr class="changed">' 5

render alg-delete
count alg-delete '<tr class="diff kind-removed">' 5
has alg-delete '<td class="rule">starttls_stripped</td>'
count alg-delete '<tr class="inside-only">' 5
# No script, stylesheet or image is loaded from anywhere.
for f in "$out"/compare-*.html; do
    ! grep -qiE '<(script|link|img)[ >]|url\(' "$f" || fail "$f refers to an external asset"
done

if [ "$fails" -ne 0 ]; then
    echo "test_html: $fails failures"
    exit 1
fi
echo "test_html: all passed (screenshots in $out)"
