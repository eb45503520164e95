#!/usr/bin/env bash
# Fuzz smoke run for CI: builds every cargo-fuzz target and runs each for a
# short while (FUZZ_SECONDS, default 20) on the committed seed corpus.
# Installs the nightly toolchain and cargo-fuzz first if they are missing.
#
#   fuzz/smoke.sh                 # every target, 20 s each
#   FUZZ_SECONDS=600 fuzz/smoke.sh policy form
#   FUZZ_SANITIZER=address fuzz/smoke.sh   # ASan, fully optimised (what --long uses)
#
# By default the targets build without a sanitizer and at opt-level 1: Sluice has no
# unsafe code, and that build takes about half the time of an ASan one at opt-level 3
# (7.5 against 14 minutes from scratch on 2 cores), which is most of the smoke's cost.
# Panics, overflow checks and debug assertions are on either way.
#
# New inputs libFuzzer finds go to a scratch corpus (FUZZ_WORK, default
# $TMPDIR/sluice-fuzz/<target>), never into fuzz/corpus/. A crash stops the
# script with a non-zero status; the reproducer is in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
work="${FUZZ_WORK:-${TMPDIR:-/tmp}/sluice-fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(tus_headers rufh_headers policy sniff flow_params form)
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

sanitizer="${FUZZ_SANITIZER:-none}"
if [ "$sanitizer" = none ]; then
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
fi
# -a: debug assertions and overflow checks on, so arithmetic overflow panics.
fuzz_flags=(-a --sanitizer "$sanitizer")
nice -n 19 cargo +nightly fuzz build "${fuzz_flags[@]}"

for target in "${targets[@]}"; do
    mkdir -p "$work/$target"
    flags=(-max_total_time="$seconds" -print_final_stats=1)
    # actix-router leaks each route's names once by design, when the app is built.
    asan="${ASAN_OPTIONS:-}"
    if [ "$target" = form ]; then
        flags+=(-detect_leaks=0)
        asan="${asan:+$asan:}detect_leaks=0"
    fi
    echo "== fuzz $target for ${seconds}s"
    log="$work/$target.log"
    status=0
    ASAN_OPTIONS="$asan" nice -n 19 cargo +nightly fuzz run "${fuzz_flags[@]}" "$target" "$work/$target" "corpus/$target" -- "${flags[@]}" >"$log" 2>&1 ||
        status=$?
    grep -E '^(Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked|Test unit written)' "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "fuzz target $target failed (exit $status): log $log, reproducer in fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
done
echo "fuzz smoke: ${#targets[@]} target(s), ${seconds}s each, sanitizer $sanitizer, no crash"
