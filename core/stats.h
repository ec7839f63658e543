// Per-key counters: read (all CPUs, in one batch where the kernel allows),
// reset, and turned into a view with rates between two readings.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/jumptable.h"
#include "core/kind.h"

namespace tcd {

struct Counters {
    uint64_t packets = 0;
    uint64_t bytes = 0;
    uint64_t missed = 0;
    Counters& operator+=(const Counters& o) {
        packets += o.packets;
        bytes += o.bytes;
        missed += o.missed;
        return *this;
    }
};

struct StatsSnapshot {
    KeyKind kind = KeyKind::proto;
    // proto: one row per key (256); port: one row per counter slot (slot 0:
    // ports without a slot of their own).
    std::vector<Counters> keys = std::vector<Counters>(256);
    Counters non_ip, malformed, no_port;
    uint64_t taken_ns = 0;  // CLOCK_MONOTONIC
    Counters total() const;
};

// Sums every possible CPU's row.
Result<StatsSnapshot> read_stats(int stats_fd, KeyKind kind = KeyKind::proto);

// Zeroes every row on every CPU (or only `row`).
Result<> reset_stats(int stats_fd, KeyKind kind = KeyKind::proto);
Result<> reset_row(int stats_fd, uint32_t row);

struct StatsRow {
    uint32_t key = 0;
    std::string key_name;  // the protocol or service name, "" when unknown
    std::optional<std::string> handler;
    std::string instance;  // the child instance the key hands to; "" otherwise
    Counters c;
    double pps = 0, bps = 0;  // with a previous reading
};

struct StatsView {
    KeyKind kind = KeyKind::proto;
    std::vector<StatsRow> keys;
    Counters non_ip, malformed, total;
    Counters no_port, other_ports;     // port instances
    std::optional<double> interval_s;  // set when rates are known
};

// Rows for wired keys and keys with non-zero counters (all 256 with all).
StatsView make_stats_view(const StatsSnapshot& now, const StatsSnapshot* prev,
                          const std::vector<WiredEntry>& wiring, bool all);

}  // namespace tcd
