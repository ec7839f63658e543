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

const char* class_name(uint32_t cls);  // "ipv4", "ipv6", "non-ip", "malformed", "no-port"

// How a frame reached a level: the dispatcher's tail call, or a handler's tcd_next().
enum class Via { dispatcher, tcd_next };
template <>
struct Names<Via> {
    static constexpr EnumName<Via> table[] = {{Via::dispatcher, "dispatcher"}, {Via::tcd_next, "tcd_next"}};
};

// One level a frame went through: the root, then each child instance a key
// handed it to (docs/datapath.md, "Instance trees"), then each hop a handler
// took with tcd_next() (via "tcd_next", from the handler that took it).
struct TraceLevel {
    std::string instance;  // pin dir; "" when no instance is loaded (or the hop's jump table is no instance's)
    std::string cls;
    std::optional<uint32_t> key;
    std::string key_name;
    std::optional<std::string> handler;
    bool missed = false;
    Via via = Via::dispatcher;
    std::optional<std::string> from;  // tcd_next: the handler that took the hop
    uint32_t prog_id = 0;             // the handler's program id (0 on a miss)
    // With a repeat (Tracer::set_repeat): the mean ns per run, over that
    // many BPF_PROG_TEST_RUN runs on the frame, of the program this level
    // starts with, run alone: a dispatcher level's own trace copy (the
    // chain from this level down: its dispatcher, the handler, and any
    // level below), a tcd_next level's handler (it and what it chains to).
    // None for a tcd_next level that missed (no program ran for it).
    std::optional<uint64_t> ns;
    // ns less the next level's ns that has one (the last: ns itself): this
    // level's own share. Means of runs, noise included: can be <= 0 when a
    // level costs next to nothing.
    std::optional<int64_t> self_ns;
};

struct TraceFrame {
    uint64_t frame = 0;  // from 1, in file order
    uint32_t len = 0;    // bytes given to the dispatcher
    std::string cls;
    std::optional<uint32_t> key;
    std::string key_name;                // protocol or service name, or ""
    std::optional<std::string> handler;  // the handler that ran; none on a miss
    bool missed = false;
    Verdict verdict;
    bool ran = true;  // false: too short for test_run (not an Ethernet frame)
    std::vector<TraceLevel> levels;  // every level, the first being the fields above; empty when not run
    uint32_t unrecorded_hops = 0;    // tcd_next() hops taken but not shown (past the record's room, or a live child's)
    uint32_t repeat = 0;             // the levels were timed with this many runs each (TraceLevel::ns); 0 = not timed
};

struct TraceSummaryRow {
    int level = 0;         // 0: the instance traced, 1: its child or the first hop, ...
    std::string instance;  // the level's pin dir ("" when no instance is loaded)
    Via via = Via::dispatcher;
    std::optional<std::string> from;
    std::string cls;
    std::optional<uint32_t> key;
    std::string key_name;
    uint64_t frames = 0, bytes = 0, missed = 0;
    std::map<Verdict, uint64_t> verdicts;  // named (and so ordered) by the renderers
    // Levels timed (TraceLevel::ns) and the sums of their ns and self_ns:
    // the renderers show the means.
    uint64_t timed = 0, ns_sum = 0;
    int64_t self_ns_sum = 0;
};

class TraceSummary {
public:
    void add(const TraceFrame& f);
    std::vector<TraceSummaryRow> rows() const;
    uint64_t frames() const { return frames_; }
    // The frames were timed with this many runs per level: the renderers
    // show the rows' mean ns (0 = not timed, no such columns).
    void set_repeat(uint32_t repeat) { repeat_ = repeat; }
    uint32_t repeat() const { return repeat_; }

private:
    uint32_t repeat_ = 0;
    std::map<std::tuple<int, std::string, Via, std::string, std::string, int>, TraceSummaryRow> rows_;
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

    // From now on run() also times each level of each frame that ran, with
    // `repeat` test runs per level (TraceLevel::ns); 0 = no timing.
    void set_repeat(uint32_t repeat) { repeat_ = repeat; }
    uint32_t repeat() const { return repeat_; }

    bool instance_loaded() const { return loaded_; }
    // The trace copy's own counters (never the live ones).
    Result<StatsSnapshot> counters() const;
    int prog_fd() const;
    const Kind& kind() const { return kind_; }
    // What this trace cannot show on this kernel ("" = nothing): without an
    // XDP test-run context (before 5.14) the handlers get no hop record, so
    // tcd_next hops are not shown; the rest is traced as on other kernels.
    std::string limitation() const;

    // Smallest frame BPF_PROG_TEST_RUN takes for XDP.
    static constexpr size_t kMinFrame = 14;

private:
    Tracer() = default;
    static Result<Tracer> open_level(const std::string& pin_dir, Kind kind, std::optional<MissAction> miss,
                                     std::vector<std::string>& path);
    // This level's record of the last run, if it ran since the one before.
    Result<std::optional<TraceLevel>> read_level(uint64_t number);
    // A handler's jump table, from its program's maps (what its tcd_next() uses).
    struct HopTable {
        UniqueFd fd;
        uint32_t id = 0, max_entries = 0;
        bool dispatcher = false;  // the program is a dispatcher (a live child's): not followed
    };
    const HopTable* hop_table(uint32_t prog_id);
    // The hops recorded in a run (keys in order, n all of them), after the
    // dispatcher levels in f.levels: one level each.
    void follow_hops(TraceFrame& f, const std::vector<Tracer*>& path, uint32_t n, const std::vector<uint32_t>& keys);
    // Times f's levels (set_repeat): path holds the dispatcher levels' tracers.
    Result<> time_levels(TraceFrame& f, const uint8_t* data, const std::vector<Tracer*>& path);
    uint32_t repeat_ = 0;
    std::map<uint32_t, std::optional<HopTable>> hop_tables_;  // prog id -> its jump table (none: it has none)
    uint32_t live_jt_id_ = 0;  // the instance's own jump table (not the trace copy's)
    std::vector<uint8_t> in_, out_;  // XDP: the hop record, then the frame
    std::optional<DispatcherObject> obj_;
    std::string dir_;
    UniqueFd own_jt_;  // with children: a jump table of its own, the children's trace copies in it
    std::map<uint32_t, std::unique_ptr<Tracer>> children_;  // key -> the child instance's trace copy
    Kind kind_;
    MissAction miss_ = MissAction::pass;
    std::vector<UniqueFd> shared_;
    bool loaded_ = false;
    bool xdp_ctx_ = true;  // XDP: test runs take a context (the hop record in front of the frame)
    std::map<uint32_t, std::string> names_;  // prog id -> pin name
    uint32_t last_runs_ = 0;
};

}  // namespace tcd
