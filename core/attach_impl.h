// One interface, three implementations: how the dispatcher is attached at a
// hook (the model is bpftool's net.c, one helper per attach type). Internal
// to core/attach*.cpp; every call runs inside the interface's network
// namespace (attach.cpp enters it).
//
//   XDP     through libxdp (alone, or inside libxdp's multi-program dispatcher)
//   tc      a direct-action filter in one fixed slot of the clsact qdisc
//   tcx     a tcx link (kernel 6.6+), pinned in the instance's links/ dir
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/attach.h"

namespace tcd {

// An interface in a namespace, and the direction on tc.
struct Place {
    std::string ifname;
    uint32_t ifindex = 0;
    std::string netns;  // path, "" = tcd's own
    uint64_t netns_ino = 0;
    Direction direction = Direction::none;
};

// What runs at a place, before the way of attaching fills in its part.
inline Attachment attachment_at(const Place& at, AttachMode mode) {
    Attachment a;
    a.ifname = at.ifname;
    a.ifindex = at.ifindex;
    a.netns = at.netns;
    a.mode = mode;
    a.direction = at.direction;
    return a;
}

class HookAttacher {
public:
    virtual ~HookAttacher() = default;

    // Whether the program prog_id runs at place in this way; what runs
    // there, as status reports it, when it does.
    virtual std::optional<Attachment> find(const Instance& in, const Place& at, uint32_t prog_id) const = 0;

    // Attaches the instance's dispatcher at place (recorded first, so a kill
    // in between leaves a record status checks). The caller has checked that
    // it does not run there already.
    virtual Result<AttachResult> attach(const Instance& in, const Place& at, const AttachRequest& opt) const = 0;

    // Takes the dispatcher off where it runs (a found attachment).
    virtual Result<> detach(const Instance& in, const Attachment& a) const = 0;

    // Replaces old_fd by new_fd in one atomic step where a runs.
    virtual Result<> swap(const Attachment& a, int new_fd, int old_fd) const = 0;
};

// The implementation for a mode: XDP's modes (and auto), tc or tcx.
const HookAttacher& attacher_for(AttachMode mode);

// The tcx link pin of an instance at a place ("links/tcx-INO-IFINDEX-DIR";
// bpffs names have no dots).
std::string tcx_link_pin(const Instance& in, uint64_t netns_ino, uint32_t ifindex, Direction d);
std::string tcx_links_dir(const Instance& in);

// tcx: the id of the program PROG names in the chain at place: an id of the
// chain, or the name of exactly one of its programs (a name longer than the
// kernel keeps matches its first 15 characters). Refused when none or
// several match.
Result<uint32_t> tcx_relative_id(const Place& at, const std::string& prog);
// tcx: whether prog_id runs right before (or after) p.relative_id.
bool tcx_next_to(const Place& at, uint32_t prog_id, const Placement& p);

// Program name "NAME (id N)" for messages.
std::string prog_label(uint32_t prog_id);

}  // namespace tcd
