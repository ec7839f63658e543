// What an instance is and holds: the data behind `tcd status` and
// `tcd handler list`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/error.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/reasons.h"

namespace tcd {

struct HandlerInfo {
    std::string name;
    uint32_t prog_id = 0;
    std::string tag;
    std::string type;
    int64_t loaded_at = 0;  // unix seconds
    bool builtin = false;
    std::vector<uint32_t> keys;
};

struct DispatcherStatus {
    uint32_t prog_id = 0;
    std::string tag;
    std::string miss_action;
    int64_t loaded_at = 0;
    uint32_t verified_insns = 0;
    uint32_t xlated_bytes = 0;
    uint32_t jited_bytes = 0;
    std::vector<uint32_t> direct_keys;  // reached by direct jumps (.rodata), sorted
    bool monitoring = false;            // the monitoring build (tcd monitor runs)
};

// One link of an instance tree (docs/datapath.md, "Instance trees"): the
// instance at the other end, the key that wires it, and its own links on in
// the same direction (a child's children, a parent's parents).
struct TreeLink {
    std::string instance;
    uint32_t key = 0;
    std::string key_name;
    std::vector<TreeLink> next;
};

struct Status {
    std::string pin_dir;
    bool loaded = false;
    Kind kind{};
    std::optional<DispatcherStatus> dispatcher;
    std::vector<HandlerInfo> handlers;
    std::vector<WiredEntry> wired;
    std::vector<Attachment> attached;
    std::vector<Error> problems;  // stale or half-made state: findings (core/reasons.h) or errors met
    std::vector<TreeLink> parents;   // instances that wire this one (and theirs)
    std::vector<TreeLink> children;  // instances this one wires (and theirs)
};

std::vector<HandlerInfo> list_handlers(const Instance& in, const std::vector<WiredEntry>& wiring);

// `scan`: find the tree links by reading every instance on bpffs (which
// finds wiring made by hand with bpftool, and names links that have no record
// in PINDIR/tree/); without it only the linked instances are read.
Result<Status> gather_status(const std::string& dir, bool scan = false);

}  // namespace tcd
