#!/usr/bin/env bash
# Run every cargo-fuzz target of the Calvert core for a while, one after another.
#
#   bash fuzz/run.sh                  # all targets, 30 s each
#   FUZZ_SECONDS=300 bash fuzz/run.sh decide plan_sync
#
# Seeds in fuzz/seeds/<target>/ (and past crashes in fuzz/regressions/<target>/) are
# copied to a temporary corpus, so nothing is written into the repository except crash
# artifacts (fuzz/artifacts/<target>/, git-ignored). Exit status 1 when a target fails.
# One fuzz process at a time (no -jobs/-workers): the machine has two shared cores.
set -euo pipefail

seconds="${FUZZ_SECONDS:-30}"
timeout="${FUZZ_TIMEOUT:-10}"   # seconds for one input before libFuzzer calls it a hang
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"       # cargo fuzz runs from the crate root that holds fuzz/
cd "$root"

all_targets=(decide route trigger plan_sync eval_json)
if (($# > 0)); then targets=("$@"); else targets=("${all_targets[@]}"); fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "run.sh: installing the nightly toolchain (cargo-fuzz needs it)" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Build all targets once, before the clock starts for any of them.
build_log="$(mktemp "${TMPDIR:-/tmp}/calvert-fuzz-build.XXXXXX")"
if ! cargo +nightly fuzz build >"$build_log" 2>&1; then
    cat "$build_log" >&2
    rm -f "$build_log"
    echo "run.sh: the fuzz targets do not build" >&2
    exit 1
fi
rm -f "$build_log"

work="$(mktemp -d "${TMPDIR:-/tmp}/calvert-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The last value libFuzzer printed for one of its final stats.
final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }

summary=()
failed=0
for target in "${targets[@]}"; do
    corpus="$work/corpus-$target"
    log="$work/$target.log"
    mkdir -p "$corpus"
    # Seeds, and inputs that once crashed (they run first, so a regression fails at once).
    for dir in "$here/seeds/$target" "$here/regressions/$target"; do
        if [[ -d "$dir" ]]; then
            cp -R "$dir/." "$corpus/"
        fi
    done
    extra=()
    if [[ -f "$here/dicts/$target.dict" ]]; then
        extra+=("-dict=$here/dicts/$target.dict")
    fi
    echo "run.sh: fuzzing $target for ${seconds}s" >&2
    status=0
    cargo +nightly fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 "${extra[@]}" \
        >"$log" 2>&1 || status=$?
    execs="$(final_stat number_of_executed_units)"
    rate="$(final_stat average_exec_per_sec)"
    units="$(find "$corpus" -type f | wc -l)"
    if ((status == 0)); then
        line="$target: ok, ${execs:-?} execs, ${rate:-?} execs/s, corpus $units, ${seconds}s"
    else
        failed=1
        artifact="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n1 | sed 's/Test unit written to //')"
        line="$target: FAILED (exit $status), ${execs:-?} execs, ${rate:-?} execs/s; artifact: ${artifact:-none}"
        echo "---- $target: the failure ----" >&2
        grep -A4 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
        echo "---- (reproduce: cargo +nightly fuzz run $target ${artifact:-<artifact>}) ----" >&2
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
