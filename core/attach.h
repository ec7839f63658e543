// Attaching the dispatcher to interfaces, in this or another network
// namespace, and keeping track of where it runs. Three ways of attaching sit
// behind one interface (core/attach_impl.h): XDP through libxdp, a tc
// clsact filter, and a tcx link (kernels that have tcx; clsact where not).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fd.h"
#include "core/instance.h"
#include "core/names.h"
#include "core/netns.h"

namespace tcd {

// How the dispatcher runs at a hook. auto_mode only as a request (XDP: let
// libxdp choose); native, skb and hw are XDP's (drv, generic and offload
// their aliases); tc is a clsact filter, tcx a tcx link.
enum class AttachMode { auto_mode, native, skb, hw, tc, tcx };
template <>
struct Names<AttachMode> {
    static constexpr EnumName<AttachMode> table[] = {
        {AttachMode::auto_mode, "auto"}, {AttachMode::native, "native"},     {AttachMode::skb, "skb"},
        {AttachMode::hw, "hw"},          {AttachMode::tc, "tc"},             {AttachMode::tcx, "tcx"},
        {AttachMode::native, "drv", true}, {AttachMode::skb, "generic", true}, {AttachMode::hw, "offload", true}};
};
inline const char* mode_name(AttachMode m) { return name_of(m); }
bool is_tc_mode(AttachMode m);
inline bool is_xdp_mode(AttachMode m) { return !is_tc_mode(m); }
// --mode: auto, native (drv), skb (generic), hw (offload); "" is auto.
using XdpMode = AttachMode;
Result<AttachMode> parse_xdp_mode(const std::string& text);

// --mode hw asks for XDP offload, which only some drivers have (libxdp
// crashes when asked on one that has not): refused unless the interface's
// driver takes an offloaded program. Enters netns; nothing for other modes.
Result<> check_xdp_mode(const std::string& ifname, const std::string& netns, AttachMode mode);

// tc's two directions; none for XDP. Names: "ingress", "egress", "".
enum class Direction { none, ingress, egress };
template <>
struct Names<Direction> {
    static constexpr EnumName<Direction> table[] = {
        {Direction::none, ""}, {Direction::ingress, "ingress"}, {Direction::egress, "egress"}};
};
inline const char* direction_name(Direction d) { return name_of(d); }
Result<Direction> parse_direction(const std::string& text);  // "" -> none

// Where tcd goes in a tcx chain: at the head or at the tail, or right
// before or after a program that runs in the chain.
enum class Order { first, last, before, after };
template <>
struct Names<Order> {
    static constexpr EnumName<Order> table[] = {
        {Order::first, "first"}, {Order::last, "last"}, {Order::before, "before"}, {Order::after, "after"}};
};
inline const char* order_name(Order o) { return name_of(o); }
struct Placement {
    Order order = Order::last;
    std::string relative;      // before, after: the program as given, an id or a name
    uint32_t relative_id = 0;  // ... its id in the chain (attach finds it)
    Placement(Order o = Order::last, std::string rel = {}) : order(o), relative(std::move(rel)) {}
    bool is_relative() const { return order == Order::before || order == Order::after; }
};
// first, last, before:PROG, after:PROG (PROG: a program id, or a name)
Result<Placement> parse_order(const std::string& text);

// Another program in libxdp's multi-program dispatcher on the same interface.
struct XdpNeighbour {
    std::string name;
    uint32_t id = 0;
    uint32_t priority = 0;
    std::vector<std::string> chain_call;  // verdicts that go on to the next program: "pass", ...
};

struct Attachment {
    std::string ifname;
    uint32_t ifindex = 0;
    std::string netns;  // path, "" = tcd's own namespace
    AttachMode mode = AttachMode::auto_mode;  // native, skb, hw, tc or tcx
    bool multiprog = false;
    Direction direction = Direction::none;  // tc and tcx
    bool made_qdisc = false;                // tc: the clsact qdisc is tcd's
    std::string link_pin;                   // tcx: the pinned link
    uint32_t position = 0;                  // tcx, XDP multiprog: 1-based place in the chain
    uint32_t chain = 0;                     // tcx, XDP multiprog: programs in the chain
    // XDP multiprog (inside libxdp's dispatcher, through tcd's entry shim):
    uint32_t priority = 0;                  // libxdp run priority of tcd's entry
    uint32_t entry_id = 0;                  // the entry shim's program id
    std::vector<std::string> chain_call;    // tcd's verdicts that go on to the next program
    std::vector<XdpNeighbour> others;       // the other programs there, in run order
    std::string entry_pin;                  // PINDIR/maps/mp_entry (its slot 0 is the dispatcher)
    // XDP alone: why not inside libxdp's dispatcher, when tcd knows ("" else).
    std::string alone_reason;
    bool alone_asked = false;  // XDP alone because the request asked for it (cli/ words it)
};

struct AttachRequest {
    std::string ifname;
    std::string netns;  // as given on the command line
    AttachMode mode = AttachMode::auto_mode;
    bool force = false;
    Direction direction = Direction::none;  // tc instances: ingress when none
    std::optional<Placement> order{};       // tcx; last when not given
    std::optional<uint32_t> priority{};     // XDP multiprog: libxdp run priority (its default 50)
    bool alone = false;                     // XDP: attach alone, not through libxdp's dispatcher
};

// libxdp's run priority when none is given (its XDP_DEFAULT_RUN_PRIO).
inline constexpr uint32_t kXdpDefaultPriority = 50;

struct AttachResult {
    bool changed = false;
    Attachment where;
    std::optional<std::string> replaced;  // "NAME (id N)" of a foreign program
};

Result<AttachResult> attach(const Instance& in, const AttachRequest& opt);

struct DetachResult {
    bool changed = false;
    Attachment where;
    std::string stale;  // non-empty: an attach record that led nowhere, cleared; why it was stale
};
// tc instances: direction none means both.
Result<std::vector<DetachResult>> detach(const Instance& in, const std::string& ifname, const std::string& netns,
                                         Direction direction = Direction::none);

// Every interface running this instance's dispatcher: those tcd recorded
// (checked against the kernel) and any in tcd's own namespace.
std::vector<Attachment> attachments(const Instance& in);

// Attach records that do not match what runs (namespace or interface gone, or
// the dispatcher not there: an attach or detach cut short), one finding each
// (core/reasons.h).
std::vector<Error> stale_attachments(const Instance& in);

// The attach records that lead nowhere (namespace or interface gone, or the
// dispatcher not running there), as detach --all clears them: where (the
// interface's name where it still exists, else its ifindex) and why.
std::vector<DetachResult> stale_records(const Instance& in);

// Takes the dispatcher off every interface (unload, detach --all).
Result<std::vector<Attachment>> detach_all(const Instance& in);

// Replaces the dispatcher on every interface it runs on with new_fd in one
// atomic step each (XDP_FLAGS_REPLACE, tc's filter replace, BPF_LINK_UPDATE);
// on failure puts the old one back.
Result<std::vector<Attachment>> swap_dispatcher(const Instance& in, int new_fd);

// Whether the program prog_id itself (by id, not by name and tag) runs at a
// hook where the instance is recorded as attached, or on an interface of
// tcd's own namespace.
bool runs_where_attached(const Instance& in, uint32_t prog_id);

// The same on a given list of interfaces (each in its own mode): old_fd is
// what runs there now. Rolling a swap back is this call with the two fds
// exchanged, on what the forward call returned.
Result<std::vector<Attachment>> swap_dispatcher_on(const std::vector<Attachment>& where, Hook hook, int new_fd,
                                                   int old_fd);

// Whether this kernel attaches tc programs through tcx links (probed, not
// read off the version). TCD_TEST_NO_TCX=1 in the environment makes it say
// no, so the clsact fallback is tested on kernels that have tcx (a test
// knob; see the README).
bool tcx_supported();

}  // namespace tcd
