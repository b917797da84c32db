#!/usr/bin/env bash
# Build camcert's fuzz targets with libFuzzer coverage on the stable
# toolchain and run each for a while.
#
#   ci/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Without `cargo fuzz` (it needs a nightly toolchain for its sanitizers),
# the targets are built as `cargo fuzz build --sanitizer none` would build
# them: the SanitizerCoverage pass and its counters through stable -C
# flags, and `--target` given so that build scripts and proc macros stay
# uninstrumented. Corpora start from the seeds in fuzz/seeds/<target>/ (and
# the suites and captures for those targets) and
# grow in fuzz/corpus/<target>/ (not committed). A crash leaves its input
# in fuzz/artifacts/<target>/ and fails the script; keep such an input as a
# regression test next to the parser it broke.
#
# Prints executions per second and the coverage libFuzzer reports per
# target. CI runs it with a few seconds per target.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sip_message sip_stream manscdp sdp ptz ps_demux rtp_framing suite pcap hedgw)
fi
host=$(rustc -vV | sed -n 's/^host: //p')
# FUZZ_PROFILE=smoke builds unoptimised (fuzz/Cargo.toml): quicker to
# build, slower to run; CI's short run uses it.
profile=${FUZZ_PROFILE:-release}
export CARGO_INCREMENTAL=0
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cdebug-assertions -Coverflow-checks"
echo "== building fuzz targets for $host"
# Not --locked: the lock follows the main crate's, which may have moved on.
cargo build --profile "$profile" --target "$host" --bins
bin="target/$host/$profile"
status=0
printf '%-12s %10s %10s %8s %8s\n' target runs exec/s cov features
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    log="artifacts/$t/last-run.log"
    # Inputs kept in the project besides the seeds, read in place.
    extra=()
    case $t in
        suite) extra=(../suites/gb28181) ;;
        pcap) extra=(../captures) ;;
    esac
    if ! "$bin/$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -timeout=10 -artifact_prefix="artifacts/$t/" -print_final_stats=1 \
        "corpus/$t" "seeds/$t" "${extra[@]}" >"$log" 2>&1; then
        echo "!! $t failed; its log: fuzz/$log" >&2
        tail -n 30 "$log" >&2
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
    printf '%-12s %10s %10s %8s %8s\n' "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}"
done
exit $status
