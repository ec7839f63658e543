// Frames through the dispatcher with BPF_PROG_TEST_RUN: no interface, no
// live counter touched. The class and key are the ones the BPF program
// derived itself (a trace-mode copy of the dispatcher records them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/fd.h"
#include "core/instance.h"
#include "core/stats.h"

namespace tcd {

// "45 00 ..", "4500..", "45:00:.." -> bytes; a usage error otherwise.
Result<std::vector<uint8_t>> parse_hex(std::string_view text);

const char* class_name(uint32_t cls);     // "ipv4", "ipv6", "non-ip", "malformed", "no-port"
std::string verdict_name(uint32_t action);  // "XDP_PASS", ... (XDP)

// One instance a frame went through: the root, then each child instance a
// key handed it to (docs/datapath.md, "Instance trees").
struct TraceLevel {
    std::string instance;  // pin dir; "" when no instance is loaded
    std::string cls;
    std::optional<uint32_t> key;
    std::string key_name;
    std::optional<std::string> handler;
    bool missed = false;
};

struct TraceFrame {
    uint64_t frame = 0;  // from 1, in file order
    uint32_t len = 0;    // bytes given to the dispatcher
    std::string cls;
    std::optional<uint32_t> key;
    std::string key_name;                // protocol or service name, or ""
    std::optional<std::string> handler;  // the handler that ran; none on a miss
    bool missed = false;
    std::string verdict;
    bool ran = true;  // false: too short for test_run (not an Ethernet frame)
    std::vector<TraceLevel> levels;  // every level, the first being the fields above; empty when not run
};

struct TraceSummaryRow {
    int level = 0;         // 0: the instance traced, 1: its child, ...
    std::string instance;  // the level's pin dir ("" when no instance is loaded)
    std::string cls;
    std::optional<uint32_t> key;
    std::string key_name;
    uint64_t frames = 0, bytes = 0, missed = 0;
    std::map<std::string, uint64_t> verdicts;
};

class TraceSummary {
public:
    void add(const TraceFrame& f);
    std::vector<TraceSummaryRow> rows() const;
    uint64_t frames() const { return frames_; }

private:
    std::map<std::tuple<int, std::string, std::string, int>, TraceSummaryRow> rows_;
    uint64_t frames_ = 0;
};

class Tracer {
public:
    // With a loaded instance in pin_dir: its kind, jump table (real wiring,
    // real handlers), port slots and miss action. Without one: a dispatcher
    // of `kind` and miss action `miss` with an empty table, every key misses.
    static Result<Tracer> open(const std::string& pin_dir, Kind kind = {},
                                std::optional<MissAction> miss = std::nullopt);
    Tracer(Tracer&&) = default;
    ~Tracer();

    Result<TraceFrame> run(const uint8_t* data, size_t len, uint64_t number);

    bool instance_loaded() const { return loaded_; }
    // The trace copy's own counters (never the live ones).
    Result<StatsSnapshot> counters() const;
    int prog_fd() const;
    const Kind& kind() const { return kind_; }

    // Smallest frame BPF_PROG_TEST_RUN takes for XDP.
    static constexpr size_t kMinFrame = 14;

private:
    Tracer() = default;
    static Result<Tracer> open_level(const std::string& pin_dir, Kind kind, std::optional<MissAction> miss,
                                     std::vector<std::string>& path);
    // This level's record of the last run, if it ran since the one before.
    Result<std::optional<TraceLevel>> read_level(uint64_t number);
    std::optional<DispatcherObject> obj_;
    std::string dir_;
    UniqueFd own_jt_;  // with children: a jump table of its own, the children's trace copies in it
    std::map<uint32_t, std::unique_ptr<Tracer>> children_;  // key -> the child instance's trace copy
    Kind kind_;
    MissAction miss_ = MissAction::pass;
    std::vector<UniqueFd> shared_;
    bool loaded_ = false;
    std::map<uint32_t, std::string> names_;  // prog id -> pin name
    uint32_t last_runs_ = 0;
};

}  // namespace tcd
