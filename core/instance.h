// A dispatcher instance: one pin directory on bpffs holding the dispatcher,
// its handlers and maps (docs/datapath.md, "Pin layout").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fd.h"
#include "core/kind.h"
#include "core/progs.h"

struct bpf_program;
struct bpf_map;

namespace tcd {

inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/tcd";

// The handlers every instance pins beside its dispatcher.
const std::vector<std::string>& builtin_handlers();

struct Paths {
    std::string dir;
    std::string maps_dir() const { return dir + "/maps"; }
    std::string dispatcher(Hook h) const { return dir + "/" + dispatcher_name(h); }
    std::string jt() const { return maps_dir() + "/jt"; }
    std::string stats() const { return maps_dir() + "/proto_stats"; }
    std::string attach() const { return maps_dir() + "/attach"; }
    std::string port_slot() const { return maps_dir() + "/port_slot"; }
    std::string slot_port() const { return maps_dir() + "/slot_port"; }  // port_slot's index (slot -> port)
    // XDP multiprog mode: the entry shim's one-slot prog array (slot 0 = the dispatcher).
    std::string mp_entry() const { return maps_dir() + "/mp_entry"; }
    std::string handler(const std::string& name) const { return dir + "/" + name; }
};

// What a packet whose key has no handler gets: pass (XDP_PASS, TC_ACT_OK),
// drop, or next (tc only: TC_ACT_UNSPEC, which is TCX_NEXT: the next program
// in the tcx chain, or the stack when there is none). tc instances default
// to next, XDP ones to pass.
enum class MissAction { pass, drop, next };

// A key the dispatcher reaches by a direct jump (its .rodata), and the
// counter row it counts into (the key on a proto instance, the port's slot).
struct DirectKey {
    uint32_t key = 0;
    uint32_t slot = 0;
    bool operator==(const DirectKey&) const = default;
    auto operator<=>(const DirectKey&) const = default;
};
template <>
struct Names<MissAction> {
    static constexpr EnumName<MissAction> table[] = {
        {MissAction::pass, "pass"}, {MissAction::drop, "drop"}, {MissAction::next, "next"}};
};
inline const char* miss_action_name(MissAction a) { return name_of(a); }
MissAction default_miss_action(Hook h);
// pass, drop or next; next is refused on XDP.
Result<MissAction> parse_miss_action(const std::string& text, Hook h);
// Whether the hook has the miss action: next is tc's alone.
Result<> miss_action_fits(MissAction a, Hook h);
uint32_t miss_action_verdict(MissAction a, Hook h = Hook::xdp);
// The verdict of frames tcd does not dispatch (non-IP, malformed): pass, or
// next with miss action next (so they too reach what follows).
uint32_t undispatched_verdict(MissAction a, Hook h);

// The monitoring build of a dispatcher (tcd monitor, core/monitor.h): the
// same source compiled with TCD_MONITOR, .rodata tcd_monitor set and these
// settings (the plain object declares the same .rodata and maps but has no
// monitoring code). The maps
// given are reused (a tree of instances shares one event stream).
struct MonitorBuild {
    uint32_t sample = 1;    // one frame in N is a candidate
    uint32_t snaplen = 128; // bytes of each frame sent up
    uint32_t ifindex = 0;   // 0: every interface
    bool misses = false;    // misses only
    uint8_t level = 0;      // the instance's level in the monitored tree
    uint8_t inst = 0;       // its index among the monitored instances
    uint64_t gap_ns = 1000000;    // per CPU: time between two events
    uint64_t burst_ns = 10000000; // per CPU: the burst allowed
    std::vector<uint32_t> keys;   // only these keys (at most TCD_MON_KEYS); empty: all
    int ev_fd = -1, cpu_fd = -1;  // the event and per-CPU maps to reuse; -1: new ones
};

// The embedded dispatcher ELF of one kind, opened (not yet loaded).
class DispatcherObject {
public:
    // monitoring: the monitoring build's object (TCD_MONITOR; monitor() sets
    // it up), else the plain one, which has no monitoring code.
    static Result<DispatcherObject> open(Kind kind, bool monitoring = false);
    const Kind& kind() const { return kind_; }
    bpf_object* obj() const { return obj_.get(); }
    bpf_program* dispatcher() const;
    bpf_program* program(const std::string& name) const;
    bpf_map* map(const std::string& name) const;
    // The load-time constants (.rodata): miss action and trace mode.
    void configure(MissAction miss, bool trace_mode);
    // Sets up the monitoring build (opened with monitoring; configure first).
    Result<> monitor(const MonitorBuild& m);
    // The keys to reach by direct jumps (at most TCD_DIRECT_MAX; written
    // sorted by key, the rest of the slots empty).
    void specialise(std::vector<DirectKey> keys);
    // XDP: the expected attach type every program of the object is loaded
    // with. open() makes it 0 (none), what a prog array owned by libxdp's
    // freplace entry shim takes, so one layout serves both ways of attaching;
    // a reload against a pinned jump table sets its owner's (an instance
    // loaded by an older tcd has BPF_XDP).
    void set_xdp_attach_type(uint32_t attach_type);
    Result<> load();

private:
    Kind kind_;
    BpfObjectPtr obj_;
};

// The embedded ELF's bytes for a kind (for `tcd object`): the plain build,
// or the monitoring one.
std::string_view embedded_elf(Kind kind, bool monitoring = false);

// An instance that is loaded: fds of its pinned objects.
class Instance {
public:
    // Fails with "not loaded" (hint: run 'tcd load') when there is none.
    static Result<Instance> open(const std::string& dir);
    static bool is_loaded(const std::string& dir);
    // For taking a damaged instance down (unload): only the dispatcher pin is
    // required; maps that are missing stay -1. Never use it to change wiring.
    static Result<Instance> open_for_teardown(const std::string& dir);

    const Paths& paths() const { return paths_; }
    const Kind& kind() const { return kind_; }
    std::string dispatcher_path() const { return paths_.dispatcher(kind_.hook); }
    int dispatcher_fd() const { return dispatcher_.get(); }
    int jt_fd() const { return jt_.get(); }
    int stats_fd() const { return stats_.get(); }
    int attach_fd() const { return attach_.get(); }       // -1 when missing
    int port_slot_fd() const { return port_slot_.get(); }  // port instances
    // Port instances: maps/slot_port, port_slot's index; -1 on an instance
    // an older tcd loaded (until load --force makes it).
    int slot_port_fd() const { return slot_port_.get(); }
    const ProgInfo& dispatcher() const { return info_; }
    MissAction miss_action() const { return miss_; }

private:
    Paths paths_;
    Kind kind_;
    UniqueFd dispatcher_, jt_, stats_, attach_, port_slot_, slot_port_;
    ProgInfo info_;
    MissAction miss_ = MissAction::pass;
};

// The kind of the instance pinned in dir, if one is.
std::optional<Kind> pinned_kind(const std::string& dir);

// Reads the miss action a loaded dispatcher was built with (its .rodata).
Result<MissAction> read_miss_action(const ProgInfo& dispatcher, Hook hook);

// A loaded dispatcher's monitoring build (its .rodata), nullopt for a
// plain one; the fds of its event and per-CPU maps are opened into `fds`
// (ev, cpu) and named in the result.
Result<std::optional<MonitorBuild>> read_monitor_build(const ProgInfo& dispatcher, std::vector<UniqueFd>* fds = nullptr);

// The keys a loaded dispatcher reaches by direct jumps, sorted (its .rodata).
Result<std::vector<DirectKey>> read_direct_keys(const ProgInfo& dispatcher);

// Programs pinned by name in the instance directory.
struct PinnedProg {
    std::string name;
    ProgInfo info;
};
std::vector<PinnedProg> pinned_programs(const std::string& dir);

}  // namespace tcd
