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
for f in ../shared/pcaps/zeek__q-in-q.pcap ../shared/pcaps/icmpv6.pcap ../shared/pcaps/ipv6-routing-header.pcap; do
  [ -f "$f" ] && cp "$f" "$corpus/pcap/"
done
build-san/fuzz_parse -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$corpus/parse" 2>&1 | tail -3
build-san/fuzz_pcap -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$corpus/pcap" 2>&1 | tail -3
echo "sanitizers and fuzzing: ok"
