#!/usr/bin/env bash
# Run every cargo-fuzz target (the core's and the host's parsers) for a while, one
# after another.
#
#   bash fuzz/run.sh                  # all 14 targets, 30 s each
#   FUZZ_SECONDS=300 bash fuzz/run.sh decide plan_sync
#   FUZZ_SECONDS=3600 bash fuzz/run.sh ews_reply       # one target for an hour
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

core_targets=(decide route trigger plan_sync eval_json)
host_targets=(ews_reply ews_push autodiscover stream_splitter ntlm config telephony_read_back graph_page sheet)
all_targets=("${core_targets[@]}" "${host_targets[@]}")
# The XML targets share one dictionary of EWS names (dicts/ews_xml.dict); any other
# target uses dicts/<target>.dict when there is one.
declare -A dict_of=([ews_reply]=ews_xml [ews_push]=ews_xml [autodiscover]=ews_xml [stream_splitter]=ews_xml)
if (($# > 0)); then targets=("$@"); else targets=("${all_targets[@]}"); fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "run.sh: installing the nightly toolchain (cargo-fuzz needs it)" >&2
    rustup toolchain install nightly --profile minimal
fi
# The host's build script builds the core for WebAssembly with the same toolchain.
if ! rustup +nightly target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "run.sh: adding the wasm32-unknown-unknown target to nightly (the host embeds the core)" >&2
    rustup target add wasm32-unknown-unknown --toolchain nightly
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
    dict="$here/dicts/${dict_of[$target]:-$target}.dict"
    if [[ -f "$dict" ]]; then
        extra+=("-dict=$dict")
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
        artifact="$(grep -ao 'Test unit written to [^ ]*' "$log" | tail -n1 | sed 's/Test unit written to //' || true)"
        line="$target: FAILED (exit $status), ${execs:-?} execs, ${rate:-?} execs/s; artifact: ${artifact:-none}"
        echo "---- $target: the failure ----" >&2
        grep -a -A4 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
        echo "---- (reproduce: cargo +nightly fuzz run $target ${artifact:-<artifact>}) ----" >&2
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
