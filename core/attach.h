// Attaching the dispatcher to interfaces through libxdp, in this or another
// network namespace, and keeping track of where it runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fd.h"
#include "core/instance.h"

namespace tcd {

// --netns NAME|PATH -> the namespace file ("" stays "": tcd's own).
Result<std::string> resolve_netns(const std::string& spec);

// Enters a network namespace for netlink work and returns to the original
// one when it goes out of scope. Mounts are untouched, so pins stay visible.
class NetnsGuard {
public:
    static Result<NetnsGuard> enter(const std::string& path);  // "" = stay
    NetnsGuard(NetnsGuard&&) = default;
    NetnsGuard& operator=(NetnsGuard&&) = delete;
    ~NetnsGuard();

private:
    NetnsGuard() = default;
    UniqueFd saved_;
};

enum class XdpMode { auto_mode, native, skb, hw };
Result<XdpMode> parse_xdp_mode(const std::string& text);

// What runs at an interface's XDP hook.
struct XdpState {
    bool attached = false;  // any program
    uint32_t prog_id = 0;   // the program at the hook (libxdp's dispatcher in multiprog mode)
    std::string prog_name;
    bool ours = false;      // our dispatcher runs there (alone or in libxdp's dispatcher)
    bool multiprog = false;
    std::string mode;       // native, skb, hw
};

struct Attachment {
    std::string ifname;
    uint32_t ifindex = 0;
    std::string netns;  // path, "" = tcd's own namespace
    std::string mode;   // XDP: native, skb, hw; tc: "tc"
    bool multiprog = false;
    std::string direction;  // tc: ingress or egress; XDP: ""
    bool made_qdisc = false;
};

struct AttachOptions {
    std::string ifname;
    std::string netns;  // as given on the command line
    XdpMode mode = XdpMode::auto_mode;
    bool force = false;
    std::string direction;  // tc instances: ingress (default) or egress
};

struct AttachResult {
    bool changed = false;
    Attachment where;
    std::optional<std::string> replaced;  // "NAME (id N)" of a foreign program
};

Result<AttachResult> attach(const Instance& in, const AttachOptions& opt);

struct DetachResult {
    bool changed = false;
    Attachment where;
};
// tc instances: direction "" means both.
Result<std::vector<DetachResult>> detach(const Instance& in, const std::string& ifname, const std::string& netns,
                                         const std::string& direction = "");

// Every interface running this instance's dispatcher: those tcd recorded
// (checked against the kernel) and any in tcd's own namespace.
std::vector<Attachment> attachments(const Instance& in);

// Attach records that do not match what runs (namespace or interface gone, or
// the dispatcher not there: an attach or detach cut short), one line each.
std::vector<std::string> stale_attachments(const Instance& in);

// Takes the dispatcher off every interface (unload, detach --all).
Result<std::vector<Attachment>> detach_all(const Instance& in);

// Replaces the dispatcher on every interface it runs on with new_fd in one
// atomic step each (XDP_FLAGS_REPLACE); on failure puts the old one back.
Result<std::vector<Attachment>> swap_dispatcher(const Instance& in, int new_fd);

// Whether the program prog_id itself (by id, not by name and tag) runs at a
// hook where the instance is recorded as attached, or on an interface of
// tcd's own namespace.
bool runs_where_attached(const Instance& in, uint32_t prog_id);

// The same on a given list of interfaces (XDP in each one's mode, or tc):
// old_fd is what runs there now. Rolling a swap back is this call with the
// two fds exchanged, on what the forward call returned.
Result<std::vector<Attachment>> swap_dispatcher_on(const std::vector<Attachment>& where, Hook hook, int new_fd,
                                                   int old_fd);

}  // namespace tcd
