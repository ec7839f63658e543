// tcd monitor: live frames as the dispatcher handles them (docs/cli.md,
// "monitor"; docs/datapath.md, "Monitor").
//
// While a monitor runs, the instance and the children of its instance tree
// run the monitoring build of the dispatcher (MonitorBuild: the source built
// with TCD_MONITOR, swapped in the way load --force swaps one), all writing to one perf event
// array. Stopping swaps the plain dispatcher back. Who monitors is recorded
// beside the instance lock (/run/tcd/NAME.monitor: pid, its start time, the
// instances), so a second monitor is refused naming the first, and a monitor
// killed with SIGKILL is found by the next command (recover_orphaned_monitor).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/frame_summary.h"
#include "core/instance.h"
#include "core/kind.h"
#include "core/names.h"

namespace tcd {

enum class Decision { direct, indirect, miss, undispatched };
template <>
struct Names<Decision> {
    static constexpr EnumName<Decision> table[] = {{Decision::direct, "direct"},
                                                   {Decision::indirect, "indirect"},
                                                   {Decision::miss, "miss"},
                                                   {Decision::undispatched, "undispatched"}};
};

struct MonitorOptions {
    std::vector<uint32_t> keys;  // only these keys (at most 16); empty: all
    bool misses = false;         // only frames whose key has no handler
    std::string iface;           // only this interface ("" all)
    std::string netns;           // the interface's namespace (path), "" tcd's
    std::optional<int> level;    // only this level of the tree (0: the instance itself)
    uint32_t sample = 1;         // one frame in N
    uint32_t rate = 1000;        // events per second at most, all CPUs together
    uint32_t snaplen = 128;      // bytes of each frame
};

// Checks the numbers (a usage error names the flag).
Result<> check_monitor_options(const MonitorOptions& o);

struct MonitorEvent {
    int64_t time_ns = 0;     // wall clock, ns since the epoch
    uint32_t ifindex = 0;
    std::string ifname;      // "" when not known
    std::string netns;       // the attach record's, "" tcd's own
    Hook hook = Hook::xdp;
    bool ingress = true;     // tc: the direction
    std::string instance;    // pin dir
    int level = 0;           // 0: the monitored instance; 1 its children...
    KeyKind key_kind = KeyKind::proto;
    std::string cls;         // class_name()
    uint32_t key = 0;        // ipv4/ipv6 (and on a port instance with a port)
    std::string key_name;    // protocol or service name, "" when none
    Decision decision = Decision::indirect;
    uint32_t site = 0;       // direct: the slot of the direct key
    std::optional<MissAction> miss_action;  // miss, undispatched: what the dispatcher returned
    std::string handler;     // name ("" none); a child instance's dispatcher is "dispatcher of DIR"
    uint32_t prog_id = 0;    // the handler's (0 none)
    uint32_t len = 0;        // the frame's length
    std::vector<uint8_t> frame;  // its first snaplen bytes
    FrameSummary summary;
};

// The handler's own verdict is not shown: why, said in the output.
extern const char* const kVerdictNotShown;

class Monitor {
public:
    // Swaps the monitoring dispatcher in on dir and its children (under each
    // one's lock), records who monitors. Refused while another monitor runs
    // on any of them; an orphaned one is taken back first.
    static Result<Monitor> start(const std::string& dir, const MonitorOptions& o);
    Monitor(Monitor&&) noexcept;
    Monitor& operator=(Monitor&&) noexcept;
    ~Monitor();  // stop(), errors dropped

    // Waits up to timeout_ms for events and hands each to on (in order per
    // CPU); on returning false no more are handed over.
    Result<> poll(int timeout_ms, const std::function<bool(const MonitorEvent&)>& on);
    // What the buffers hold now, every jump waiting for a follow-up included
    // (before stopping on a signal or a duration).
    Result<> drain(const std::function<bool(const MonitorEvent&)>& on);
    // Candidates the rate limit dropped, and events the buffers lost.
    uint64_t suppressed() const;
    uint64_t lost() const;
    // The instances monitored, by level.
    const std::vector<std::pair<std::string, int>>& instances() const;
    // Puts the plain dispatchers back; once.
    Result<> stop();

    struct State;

private:
    Monitor() = default;
    std::unique_ptr<State> s_;
};

// A monitor that was killed (its process gone): the plain dispatchers go
// back on its instances. A finding saying so when there was one.
std::optional<Error> recover_orphaned_monitor(const std::string& dir);

}  // namespace tcd
