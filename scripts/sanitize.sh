#!/usr/bin/env bash
# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer, then
# libFuzzer on the command-line grammars and the pcap reader for a bounded
# time each (FUZZ_SECONDS, default 30). Built with clang in build-san/.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DTCD_FUZZ=ON >/dev/null
cmake --build build-san -j2 --target tcd_unit_tests fuzz_parse fuzz_pcap
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
build-san/tests/tcd_unit_tests --gtest_brief=1
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus/parse" "$corpus/pcap"
printf 'tcp' > "$corpus/parse/a"; printf '0x11' > "$corpus/parse/b"; printf 'id:42' > "$corpus/parse/c"
printf '45 00 0a' > "$corpus/parse/d"; printf '65535' > "$corpus/parse/e"
cp tests/data/pcaps/zeek__q-in-q.pcap tests/data/pcaps/icmpv6.pcap tests/data/pcaps/ipv6-routing-header.pcap "$corpus/pcap/"
# Each fuzzer's whole log is kept in build-san/ (and a crashing input in
# build-san/fuzz-artifacts/); on success the final stats are shown, on a
# failure the whole log, crash report and stack included.
mkdir -p build-san/fuzz-artifacts
fuzz() {
  local name=$1 log=build-san/$1.log
  if build-san/"$name" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
       -artifact_prefix=build-san/fuzz-artifacts/"$name"- "$corpus/${name#fuzz_}" >"$log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -3 "$log"
  else
    echo "sanitize: $name failed; its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
}
fuzz fuzz_parse
fuzz fuzz_pcap
echo "sanitizers and fuzzing: ok"
