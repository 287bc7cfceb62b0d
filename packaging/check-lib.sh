# shellcheck shell=bash
# What the packaging check scripts share: numbered "ok" lines (TAP-like) and a failure that stops
# the script. Source it after setting `check_name`; `passed` and `started` feed the summary line.

# shellcheck disable=SC2034  # read by the sourcing script's summary line
started=$SECONDS
passed=0
ok() {
    passed=$((passed + 1))
    echo "ok $passed - $*"
}
fail() {
    echo "${check_name:?}: FAILED: $*" >&2
    exit 1
}
