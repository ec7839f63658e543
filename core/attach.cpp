// The orchestration: which implementation (core/attach_impl.h) does the
// work, in which namespace, and the walks over attach records and
// interfaces that status, detach --all, unload and load --force make.
#include "core/attach.h"

#include <bpf/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <array>
#include <optional>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <set>
#include <tuple>
#include <vector>

#include "core/attach_impl.h"
#include "core/attach_records.h"
#include "core/bpffs.h"
#include "core/reasons.h"
#include "core/tc_filters.h"

namespace tcd {

const HookAttacher& xdp_attacher();
const HookAttacher& clsact_attacher();
const HookAttacher& tcx_attacher();

namespace {

Result<uint32_t> find_ifindex(const std::string& ifname, const std::string& netns) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ)
        return usage_error("interface " + ifname, "not a valid interface name");
    unsigned idx = if_nametoindex(ifname.c_str());
    if (!idx)
        return fail("interface " + ifname, "no such interface" + ns_words(netns),
                    netns.empty() ? "see 'ip link'" : "see 'ip -n NAME link' or nsenter");
    return idx;
}

// The driver's name (ethtool), "" when it does not say.
std::string driver_name(const std::string& ifname) {
    UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) return "";
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&info);
    if (ioctl(s.get(), SIOCETHTOOL, &ifr) != 0) return "";
    return std::string(info.driver, strnlen(info.driver, sizeof info.driver));
}

// Whether the device takes offloaded programs: a two-instruction XDP
// program loaded for it (prog_ifindex) is refused with EINVAL by the kernel
// unless its driver registered for BPF offload.
Result<> check_xdp_offload(const std::string& ifname, uint32_t ifindex) {
    const bpf_insn insns[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = XDP_PASS},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_ifindex = ifindex);
    UniqueFd fd(bpf_prog_load(BPF_PROG_TYPE_XDP, "tcd_hw_probe", "GPL", insns, 2, &o));
    if (fd) return {};
    int err = errno;
    if (err == EINVAL || err == EOPNOTSUPP) {
        std::string driver = driver_name(ifname);
        return worded(about(fail("attach " + ifname,
                                 "this device " + (driver.empty() ? std::string() : "(driver " + driver + ") ") +
                                     "has no XDP offload"),
                            Flag::mode, "hw"),
                      Reason::xdp_modes_other);
    }
    return about(fail_errno("attach " + ifname, err), Flag::mode, "hw: probe for XDP offload");
}

// The tc ways of attaching, the one a new attach uses first.
std::vector<const HookAttacher*> tc_attachers() { return {&tcx_attacher(), &clsact_attacher()}; }

// What of the instance (prog_id: its dispatcher, or a staged one) runs at a
// place of the current namespace, in any of the hook's ways.
std::optional<Attachment> find_at(const Instance& in, const Place& at, uint32_t prog_id) {
    if (in.kind().hook == Hook::xdp) return xdp_attacher().find(in, at, prog_id);
    for (const auto* impl : tc_attachers())
        if (auto a = impl->find(in, at, prog_id)) return a;
    return std::nullopt;
}

std::vector<Direction> directions(Hook h) {
    return h == Hook::tc ? std::vector<Direction>{Direction::ingress, Direction::egress}
                         : std::vector<Direction>{Direction::none};
}

// The interfaces of the current namespace that run an XDP program in any
// mode, from one netlink link dump (IFLA_XDP_ATTACHED); bpf_xdp_query, which
// find_at asks per interface, dumps every interface each time, so asking it
// of each cost n dumps of n interfaces. nullopt when the dump fails (then
// every interface is asked, as before).
std::optional<std::set<uint32_t>> xdp_ifindexes() {
    struct {
        nlmsghdr nh;
        ifinfomsg ifi;
    } req{};
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
    req.nh.nlmsg_type = RTM_GETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = 1;
    req.ifi.ifi_family = AF_UNSPEC;
    std::set<uint32_t> out;
    auto r = netlink_dump(&req, req.nh.nlmsg_len, RTM_NEWLINK, "dump links", [&](const nlmsghdr* nh) {
        const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(nh));
        int len = static_cast<int>(IFLA_PAYLOAD(nh));
        for (const rtattr* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
            if ((a->rta_type & ~NLA_F_NESTED) != IFLA_XDP) continue;
            int xlen = static_cast<int>(RTA_PAYLOAD(a));
            for (const auto* x = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(x, xlen); x = RTA_NEXT(x, xlen))
                if (x->rta_type == IFLA_XDP_ATTACHED && RTA_PAYLOAD(x) >= 1 &&
                    *static_cast<const uint8_t*>(RTA_DATA(x)) != XDP_ATTACHED_NONE)
                    out.insert(static_cast<uint32_t>(ifi->ifi_index));
        }
    });
    if (!r) return std::nullopt;
    return out;
}

// Calls fn(place) for every recorded place whose namespace and interface
// still exist (inside that namespace), then for every interface and
// direction of tcd's own namespace without a record (on XDP, those that run
// an XDP program); stale(record, why) for records that lead nowhere.
template <typename Fn, typename Stale>
void walk(const Instance& in, Fn&& fn, Stale&& stale) {
    std::set<std::tuple<uint64_t, uint32_t, uint32_t>> seen;
    uint64_t own = netns_inode("");
    for (const auto& r : records(in)) {
        seen.insert({r.key.netns_ino, r.key.ifindex, r.key.direction});
        std::string ns = r.key.netns_ino == own ? "" : std::string(r.val.netns);
        if (netns_inode(r.val.netns) != r.key.netns_ino) {
            stale(r, ns, "the network namespace is gone");
            continue;
        }
        auto guard = NetnsGuard::enter(ns);
        char name[IF_NAMESIZE] = {};
        if (!guard || !if_indextoname(r.key.ifindex, name)) {
            stale(r, ns, "the interface is gone");
            continue;
        }
        fn(Place{name, r.key.ifindex, ns, r.key.netns_ino, r.direction()}, &r);
    }
    // Interfaces of tcd's own namespace that run it without a record (ip, bpftool).
    std::optional<std::set<uint32_t>> with_xdp;
    if (in.kind().hook == Hook::xdp) with_xdp = xdp_ifindexes();
    if (struct if_nameindex* list = if_nameindex()) {
        for (auto* i = list; i->if_index; ++i)
            for (Direction d : directions(in.kind().hook)) {
                if (with_xdp && !with_xdp->count(i->if_index)) continue;  // nothing at its XDP hook
                uint32_t code = d == Direction::ingress ? 1 : d == Direction::egress ? 2 : 0;
                if (seen.count({own, i->if_index, code})) continue;
                fn(Place{i->if_name, i->if_index, "", own, d}, nullptr);
            }
        if_freenameindex(list);
    }
}

}  // namespace

const HookAttacher& attacher_for(AttachMode mode) {
    if (mode == AttachMode::tc) return clsact_attacher();
    if (mode == AttachMode::tcx) return tcx_attacher();
    return xdp_attacher();
}

std::string prog_label(uint32_t id) {
    if (auto fd = prog_fd_by_id(id))
        if (auto info = prog_info(fd->get())) return fmt::format("{} (id {})", info->name, id);
    return fmt::format("id {}", id);
}

bool is_tc_mode(AttachMode m) { return m == AttachMode::tc || m == AttachMode::tcx; }

Result<AttachMode> parse_xdp_mode(const std::string& text) {
    if (text.empty()) return AttachMode::auto_mode;
    if (auto m = from_name<AttachMode>(text); m && is_xdp_mode(*m)) return *m;
    return usage_error("mode " + text, "unknown XDP mode", "one of " + fmt::format("{}", fmt::join(names_of<AttachMode>(is_xdp_mode), ", ")));
}

Result<Direction> parse_direction(const std::string& text) {
    if (auto d = from_name<Direction>(text)) return *d;
    return about(usage_error("", "not " + or_list(names_of<Direction>())), Flag::direction, text);
}

Result<Placement> parse_order(const std::string& text) {
    for (Order o : {Order::first, Order::last})
        if (text == order_name(o)) return Placement{o};
    for (Order o : {Order::before, Order::after}) {
        std::string prefix = std::string(order_name(o)) + ":";
        if (text.rfind(prefix, 0) != 0) continue;
        std::string prog = text.substr(prefix.size());
        if (prog.empty())
            return about(usage_error("", "names no program", prefix + "ID or " + prefix + "NAME"), Flag::order, text);
        return Placement{o, prog};
    }
    return about(usage_error("", "not first, last, before:PROG or after:PROG"), Flag::order, text);
}

Result<> check_xdp_mode(const std::string& ifname, const std::string& netns, AttachMode mode) {
    if (mode != AttachMode::hw) return {};
    auto ns = resolve_netns(netns);
    if (!ns) return propagate(ns);
    auto guard = NetnsGuard::enter(*ns);
    if (!guard) return propagate(guard);
    auto ifindex = find_ifindex(ifname, *ns);
    if (!ifindex) return propagate(ifindex);
    return check_xdp_offload(ifname, *ifindex);
}

Result<AttachResult> attach(const Instance& in, const AttachRequest& opt) {
    auto ns = resolve_netns(opt.netns);
    if (!ns) return propagate(ns);
    uint64_t ino = netns_inode(*ns);
    auto guard = NetnsGuard::enter(*ns);
    if (!guard) return propagate(guard);
    auto ifindex = find_ifindex(opt.ifname, *ns);
    if (!ifindex) return propagate(ifindex);
    bool tc = in.kind().hook == Hook::tc;
    Direction dir = tc ? (opt.direction == Direction::none ? Direction::ingress : opt.direction) : Direction::none;
    Place at{opt.ifname, *ifindex, *ns, ino, dir};
    if (!tc && opt.mode == AttachMode::hw)
        if (auto r = check_xdp_offload(opt.ifname, *ifindex); !r) return propagate(r);

    // Before or after a program of the tcx chain: that program found (by id,
    // or by a name exactly one program there has) before anything changes.
    AttachRequest o = opt;
    if (o.order && o.order->is_relative() && tc && tcx_supported()) {
        auto id = tcx_relative_id(at, o.order->relative);
        if (!id) return propagate(id);
        if (*id == in.dispatcher().id)
            return about(fail("attach", "that is this instance's own dispatcher", "name another program of the chain"),
                         Flag::order, std::string(order_name(o.order->order)) + ":" + o.order->relative);
        o.order->relative_id = *id;
    }

    if (auto now = find_at(in, at, in.dispatcher().id)) {
        // Already there: the state asked for holds, or the command says why not
        // (changing it silently would drop packets in between).
        if (!tc && opt.mode != AttachMode::auto_mode && now->mode != opt.mode)
            return fail("interface " + opt.ifname, fmt::format("already attached in {} mode", mode_name(now->mode)),
                        "detach first");
        if (!tc && opt.priority && now->multiprog && now->entry_id && now->priority != *opt.priority)
            return fail("interface " + opt.ifname,
                        fmt::format("already attached at libxdp run priority {}", now->priority),
                        "detach first to change it");
        if (!tc && opt.alone && now->multiprog)
            return fail("interface " + opt.ifname, "already attached inside libxdp's dispatcher", "detach first");
        if (o.order && now->mode == AttachMode::tcx) {
            bool holds = o.order->order == Order::first  ? now->position == 1
                         : o.order->order == Order::last ? now->position == now->chain
                                                         : tcx_next_to(at, in.dispatcher().id, *o.order);
            if (!holds)
                return fail("interface " + opt.ifname,
                            fmt::format("already attached at place {} of {} in the tcx chain", now->position,
                                        now->chain),
                            "detach first to move it");
        }
        AttachResult res;
        res.where = *now;
        if (auto r = record(in, res.where, ino); !r) return propagate(r);
        return res;
    }
    if (!tc) return xdp_attacher().attach(in, at, o);
    if (tcx_supported()) return tcx_attacher().attach(in, at, o);
    if (opt.order)
        return worded(about(fail("attach", "this kernel has no tcx links; tcd attaches through tc's clsact, which has no order"),
                            Flag::order),
                      Reason::leave_flag_out);
    return clsact_attacher().attach(in, at, opt);
}

Result<std::vector<DetachResult>> detach(const Instance& in, const std::string& ifname, const std::string& netns,
                                         Direction direction) {
    auto ns = resolve_netns(netns);
    if (!ns) return propagate(ns);
    uint64_t ino = netns_inode(*ns);
    auto guard = NetnsGuard::enter(*ns);
    if (!guard) return propagate(guard);
    auto ifindex = find_ifindex(ifname, *ns);
    if (!ifindex) return propagate(ifindex);

    std::vector<DetachResult> out;
    bool tc = in.kind().hook == Hook::tc;
    for (Direction d : directions(in.kind().hook)) {
        if (direction != Direction::none && direction != d) continue;
        Place at{ifname, *ifindex, *ns, ino, d};
        DetachResult res;
        res.where = attachment_at(at, tc ? AttachMode::tc : AttachMode::auto_mode);
        if (auto a = find_at(in, at, in.dispatcher().id)) {
            res.where = *a;
            if (auto r = attacher_for(a->mode).detach(in, *a); !r) return propagate(r);
            res.changed = true;
        }
        forget(in, ino, *ifindex, d);
        if (res.changed || direction == d || !tc) out.push_back(res);
    }
    if (out.empty()) out.push_back({false, attachment_at(Place{ifname, *ifindex, *ns, ino, direction}, AttachMode::tc), {}});
    return out;
}

std::vector<Attachment> attachments(const Instance& in) {
    std::vector<Attachment> out;
    walk(
        in,
        [&](const Place& at, const AttachRecord*) {
            if (auto a = find_at(in, at, in.dispatcher().id)) out.push_back(*a);
        },
        [](const AttachRecord&, const std::string&, const char*) {});
    return out;
}

std::vector<Error> stale_attachments(const Instance& in) {
    std::vector<Error> out;
    bool tc = in.kind().hook == Hook::tc;
    // The new dispatcher of a load --force killed between its swap and its
    // rename, pinned under its staged name.
    std::string staged = bpffs::staged_path(in.dispatcher_path());
    std::optional<ProgInfo> next;
    if (UniqueFd fd{bpf_obj_get(staged.c_str())})
        if (auto info = prog_info(fd.get())) next = *info;
    auto dir_words = [tc](Direction d) { return tc ? std::string(" ") + direction_name(d) : std::string(); };
    walk(
        in,
        [&](const Place& at, const AttachRecord* r) {
            if (!r) return;
            if (find_at(in, at, in.dispatcher().id)) return;
            std::string here = at.ifname + (at.netns.empty() ? "" : " in " + at.netns) + dir_words(at.direction);
            if (next && find_at(in, at, next->id))
                out.push_back(finding("an interrupted reload: " + here + " runs the new dispatcher, still pinned as " +
                                          staged.substr(staged.rfind('/') + 1),
                                      Reason::interrupted_force, {here, staged.substr(staged.rfind('/') + 1)}));
            else
                out.push_back(finding("stale attach record (" + here + "): the dispatcher does not run there",
                                      Reason::unload_or_detach_all));
        },
        [&](const AttachRecord& r, const std::string& ns, const char* why) {
            std::string where = "ifindex " + std::to_string(r.key.ifindex) + (ns.empty() ? "" : " in " + ns) +
                                dir_words(r.direction());
            out.push_back(finding("stale attach record (" + where + "): " + why, Reason::unload_or_detach_all));
        });
    return out;
}

std::vector<DetachResult> stale_records(const Instance& in) {
    std::vector<DetachResult> out;
    auto add = [&](const AttachRecord& r, const std::string& ifname, const std::string& ns, const char* why) {
        DetachResult d;
        d.changed = true;
        d.where.ifname = ifname;
        d.where.ifindex = r.key.ifindex;
        d.where.netns = ns;
        d.where.mode = r.mode();
        d.where.direction = r.direction();
        d.stale = why;
        out.push_back(std::move(d));
    };
    walk(
        in,
        [&](const Place& at, const AttachRecord* r) {
            if (r && !find_at(in, at, in.dispatcher().id)) add(*r, at.ifname, at.netns, "the dispatcher does not run there");
        },
        [&](const AttachRecord& r, const std::string& ns, const char* why) { add(r, "", ns, why); });
    return out;
}

Result<std::vector<Attachment>> detach_all(const Instance& in) {
    std::vector<Attachment> done;
    for (const auto& a : attachments(in)) {
        auto guard = NetnsGuard::enter(a.netns);
        if (!guard) return propagate(guard);
        if (auto r = attacher_for(a.mode).detach(in, a); !r) {
            // Put back what this call took away, so a failed command changes
            // nothing (XDP; tc filters and links are made again).
            for (const auto& d : done) {
                auto g = NetnsGuard::enter(d.netns);
                if (!g) continue;
                AttachRequest again{.ifname = d.ifname, .netns = d.netns, .mode = d.mode, .direction = d.direction};
                Place at{d.ifname, d.ifindex, d.netns, netns_inode(d.netns), d.direction};
                (void)attacher_for(d.mode).attach(in, at, again);
            }
            return propagate(r);
        }
        done.push_back(a);
    }
    forget_all(in);  // every record, stale ones included
    // Links whose interface went away stay pinned, defunct.
    std::string links = tcx_links_dir(in);
    for (const auto& name : bpffs::list_pins(links)) (void)bpffs::remove(links + "/" + name);
    (void)bpffs::remove(links);
    return done;
}

bool runs_where_attached(const Instance& in, uint32_t prog_id) {
    bool found = false;
    walk(
        in,
        [&](const Place& at, const AttachRecord*) {
            if (!found && find_at(in, at, prog_id)) found = true;
        },
        [](const AttachRecord&, const std::string&, const char*) {});
    return found;
}

Result<std::vector<Attachment>> swap_dispatcher_on(const std::vector<Attachment>& where, Hook, int new_fd,
                                                   int old_fd) {
    std::vector<Attachment> done;
    auto swap = [](const Attachment& a, int fd, int old) -> Result<> {
        auto guard = NetnsGuard::enter(a.netns);
        if (!guard) return propagate(guard);
        return attacher_for(a.mode).swap(a, fd, old);
    };
    for (const auto& a : where) {
        if (auto r = swap(a, new_fd, old_fd); !r) {
            for (const auto& d : done) (void)swap(d, old_fd, new_fd);
            return propagate(r);
        }
        done.push_back(a);
    }
    return done;
}

Result<std::vector<Attachment>> swap_dispatcher(const Instance& in, int new_fd) {
    return swap_dispatcher_on(attachments(in), in.kind().hook, new_fd, in.dispatcher_fd());
}

}  // namespace tcd
