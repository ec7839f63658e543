// A dispatcher instance: one pin directory on bpffs holding the dispatcher,
// its handlers and maps (spec/datapath.md, "Objects and pins").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fd.h"
#include "core/progs.h"

struct tcd_proto;

namespace tcd {

inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/tcd";

// The handlers every instance pins beside its dispatcher.
const std::vector<std::string>& builtin_handlers();

struct Paths {
    std::string dir;
    std::string maps_dir() const { return dir + "/maps"; }
    std::string dispatcher() const;
    std::string jt() const { return maps_dir() + "/jt"; }
    std::string stats() const { return maps_dir() + "/proto_stats"; }
    std::string attach() const { return maps_dir() + "/attach"; }
    std::string handler(const std::string& name) const { return dir + "/" + name; }
};

enum class MissAction { pass, drop };
const char* miss_action_name(MissAction a);
uint32_t miss_action_verdict(MissAction a);  // XDP_PASS / XDP_DROP

// The embedded dispatcher object, opened (not loaded).
struct SkelDeleter { void operator()(tcd_proto* s) const; };
using SkelPtr = std::unique_ptr<tcd_proto, SkelDeleter>;
Result<SkelPtr> open_skeleton();
// Sets the load-time constants of an opened skeleton.
void set_skeleton_config(tcd_proto* skel, MissAction miss, bool trace_mode);

// An instance that is loaded: fds of its pinned objects.
class Instance {
public:
    // Fails with "not loaded" (hint: run 'tcd load') when there is none.
    static Result<Instance> open(const std::string& dir);
    static bool is_loaded(const std::string& dir);

    const Paths& paths() const { return paths_; }
    int dispatcher_fd() const { return dispatcher_.get(); }
    int jt_fd() const { return jt_.get(); }
    int stats_fd() const { return stats_.get(); }
    int attach_fd() const { return attach_.get(); }  // -1 when missing (older pins)
    const ProgInfo& dispatcher() const { return info_; }
    MissAction miss_action() const { return miss_; }

private:
    Paths paths_;
    UniqueFd dispatcher_, jt_, stats_, attach_;
    ProgInfo info_;
    MissAction miss_ = MissAction::pass;
};

// Reads the miss action a loaded dispatcher was built with (its .rodata).
Result<MissAction> read_miss_action(const ProgInfo& dispatcher);

// Name of the pin in dir that holds program `id`, or "" (built-ins and user
// handlers are pinned by name beside the dispatcher).
struct PinnedProg {
    std::string name;
    ProgInfo info;
};
std::vector<PinnedProg> pinned_programs(const std::string& dir);

}  // namespace tcd
