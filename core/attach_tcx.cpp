// tc through a tcx link (kernel 6.6+): tcd's program joins the interface's
// chain of tcx programs at its head or tail, beside other agents' programs
// and other tcd instances. The link is pinned in the instance's links/
// directory so that it outlives tcd; unpinning it detaches. libbpf 1.1 and
// Debian 12's headers know nothing of tcx, so the few commands and
// constants used are spelled out here (from the kernel's uapi linux/bpf.h).
#include <bpf/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/attach_impl.h"
#include "core/probe.h"
#include "core/attach_records.h"
#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/progs.h"
#include "core/reasons.h"

namespace tcd {
namespace {

constexpr uint32_t kBpfTcxIngress = 46;  // enum bpf_attach_type
constexpr uint32_t kBpfTcxEgress = 47;
constexpr uint32_t kBpfLinkTypeTcx = 11;  // enum bpf_link_type
constexpr uint32_t kBpfFBefore = 1u << 3;
constexpr uint32_t kBpfFAfter = 1u << 4;
constexpr uint32_t kBpfFId = 1u << 5;  // relative_fd holds a program id
constexpr int kCmdProgQuery = 16;   // BPF_PROG_QUERY
constexpr int kCmdLinkCreate = 28;  // BPF_LINK_CREATE

uint32_t attach_type(Direction d) { return d == Direction::egress ? kBpfTcxEgress : kBpfTcxIngress; }

// union bpf_attr, the link_create part with its tcx member.
struct LinkCreateAttr {
    uint32_t prog_fd;
    uint32_t target_ifindex;
    uint32_t attach_type;
    uint32_t flags;
    uint32_t relative_fd;  // or relative_id, with BPF_F_ID
    uint32_t pad;
    uint64_t expected_revision;
};

// union bpf_attr, the query part as tcx fills it.
struct QueryAttr {
    uint32_t target_ifindex;
    uint32_t attach_type;
    uint32_t query_flags;
    uint32_t attach_flags;
    uint64_t prog_ids;
    uint32_t count;
    uint32_t pad;
    uint64_t prog_attach_flags;
    uint64_t link_ids;
    uint64_t link_attach_flags;
    uint64_t revision;
};

// struct bpf_link_info with its tcx member.
struct LinkInfo {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t pad;
    uint32_t ifindex;
    uint32_t attach_type;
    uint64_t rest[6];
};

long sys_bpf(int cmd, void* attr, unsigned size) { return ::syscall(__NR_bpf, cmd, attr, size); }

// The chain at ifindex/direction, head first: each program's id and the id
// of the link that holds it (0: attached without a link, as
// `bpftool net attach tcx_ingress` does).
struct Entry {
    uint32_t prog_id = 0, link_id = 0;
};
Result<std::vector<Entry>> entries(uint32_t ifindex, Direction d) {
    std::vector<uint32_t> ids(64), links(64);
    QueryAttr q{};
    q.target_ifindex = ifindex;
    q.attach_type = attach_type(d);
    q.prog_ids = reinterpret_cast<uint64_t>(ids.data());
    q.link_ids = reinterpret_cast<uint64_t>(links.data());
    q.count = static_cast<uint32_t>(ids.size());
    if (sys_bpf(kCmdProgQuery, &q, sizeof q) != 0) return fail_errno("query the tcx chain", errno);
    std::vector<Entry> out;
    for (size_t i = 0; i < std::min<size_t>(q.count, ids.size()); i++) out.push_back({ids[i], links[i]});
    return out;
}

// The program ids of the chain, head first.
Result<std::vector<uint32_t>> chain(uint32_t ifindex, Direction d) {
    auto e = entries(ifindex, d);
    if (!e) return propagate(e);
    std::vector<uint32_t> ids;
    for (const auto& x : *e) ids.push_back(x.prog_id);
    return ids;
}

// Where prog_id is in the chain without tcd's own link: its entry.
std::optional<Entry> foreign_entry(uint32_t ifindex, Direction d, uint32_t prog_id) {
    auto e = entries(ifindex, d);
    if (!e) return std::nullopt;
    for (const auto& x : *e)
        if (x.prog_id == prog_id) return x;
    return std::nullopt;
}

std::optional<LinkInfo> link_info(int fd) {
    LinkInfo info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return std::nullopt;
    return info;
}

class TcxAttacher final : public HookAttacher {
public:
    std::optional<Attachment> find(const Instance& in, const Place& at, uint32_t prog_id) const override {
        std::string pin = tcx_link_pin(in, at.netns_ino, at.ifindex, at.direction);
        UniqueFd fd(bpf_obj_get(pin.c_str()));
        auto info = fd ? link_info(fd.get()) : std::nullopt;
        // A link whose interface went away stays pinned but defunct (ifindex 0).
        bool own = info && info->type == kBpfLinkTypeTcx && info->ifindex == at.ifindex &&
                   info->attach_type == attach_type(at.direction) && info->prog_id == prog_id;
        // Not through tcd's link: another tool's link to the dispatcher, or
        // the dispatcher attached without a link (bpftool net attach). It
        // runs there all the same (link_pin stays empty: not tcd's link).
        if (!own && !foreign_entry(at.ifindex, at.direction, prog_id)) return std::nullopt;
        Attachment a = attachment_at(at, AttachMode::tcx);
        if (own) a.link_pin = pin;
        if (auto ids = chain(at.ifindex, at.direction)) {
            a.chain = static_cast<uint32_t>(ids->size());
            for (size_t i = 0; i < ids->size(); i++)
                if ((*ids)[i] == prog_id) a.position = static_cast<uint32_t>(i + 1);
        }
        return a;
    }

    Result<AttachResult> attach(const Instance& in, const Place& at, const AttachRequest& opt) const override {
        AttachResult res;
        res.where = attachment_at(at, AttachMode::tcx);
        std::string dir = tcx_links_dir(in);
        std::string pin = tcx_link_pin(in, at.netns_ino, at.ifindex, at.direction);
        res.where.link_pin = pin;
        auto made = bpffs::make_dirs(dir);
        if (!made) return propagate(made);
        // Recorded first: a kill before the link is pinned leaves a record
        // (status calls it stale), and the link goes with the process.
        if (auto r = record(in, res.where, at.netns_ino); !r) return propagate(r);
        crash_point("attach");
        LinkCreateAttr a{};
        a.prog_fd = static_cast<uint32_t>(in.dispatcher_fd());
        a.target_ifindex = at.ifindex;
        a.attach_type = attach_type(at.direction);
        Placement where = opt.order.value_or(Placement{});
        a.flags = where.order == Order::first || where.order == Order::before ? kBpfFBefore : kBpfFAfter;
        if (where.is_relative()) {
            a.flags |= kBpfFId;
            a.relative_fd = where.relative_id;
        }
        UniqueFd link(static_cast<int>(sys_bpf(kCmdLinkCreate, &a, sizeof a)));
        if (!link) {
            int err = errno;
            forget(in, at.netns_ino, at.ifindex, at.direction);
            return fail_errno("attach " + at.ifname + " " + direction_name(at.direction) + " (tcx link)", err);
        }
        crash_point("attach");  // the link made, not pinned yet
        ::unlink(pin.c_str());  // a defunct link of an interface that went away
        if (bpf_obj_pin(link.get(), pin.c_str()) != 0) {
            int err = errno;
            forget(in, at.netns_ino, at.ifindex, at.direction);
            return fail_errno("pin the tcx link at " + pin, err);
        }
        crash_point("attach");
        res.changed = true;
        if (auto found = find(in, at, in.dispatcher().id)) res.where = *found;
        return res;
    }

    Result<> detach(const Instance& in, const Attachment& a) const override {
        if (a.link_pin.empty()) return detach_foreign(in, a);
        UniqueFd fd(bpf_obj_get(a.link_pin.c_str()));
        if (fd && bpf_link_detach(fd.get()) != 0 && errno != ENOLINK)
            return fail_errno("detach " + a.ifname + " " + direction_name(a.direction) + " (tcx link)", errno);
        if (::unlink(a.link_pin.c_str()) != 0 && errno != ENOENT)
            return fail_errno("remove the link pin " + a.link_pin, errno);
        std::string dir = a.link_pin.substr(0, a.link_pin.rfind('/'));
        if (bpffs::list_pins(dir).empty()) ::rmdir(dir.c_str());
        return {};
    }

    Result<> swap(const Attachment& a, int new_fd, int old_fd) const override {
        std::string what = "replace the dispatcher on " + a.ifname + " " + direction_name(a.direction);
        UniqueFd fd;
        if (!a.link_pin.empty()) {
            fd.reset(bpf_obj_get(a.link_pin.c_str()));
            if (!fd) return fail_errno("open the tcx link " + a.link_pin, errno);
        } else {
            // Not tcd's link: the one that holds the old program, or none.
            auto old = prog_info(old_fd);
            if (!old) return propagate(old);
            auto e = foreign_entry(a.ifindex, a.direction, old->id);
            if (!e) return fail(what, "the dispatcher no longer runs there");
            if (!e->link_id) {
                LIBBPF_OPTS(bpf_prog_attach_opts, o, .flags = BPF_F_REPLACE, .replace_prog_fd = old_fd);
                if (bpf_prog_attach_opts(new_fd, static_cast<int>(a.ifindex),
                                         static_cast<bpf_attach_type>(attach_type(a.direction)), &o) != 0)
                    return fail_errno(what, errno);
                return {};
            }
            fd.reset(bpf_link_get_fd_by_id(e->link_id));
            if (!fd) return fail_errno("open the tcx link id " + std::to_string(e->link_id), errno);
        }
        LIBBPF_OPTS(bpf_link_update_opts, o, .flags = BPF_F_REPLACE, .old_prog_fd = static_cast<__u32>(old_fd));
        if (bpf_link_update(fd.get(), new_fd, &o) != 0) return fail_errno(what, errno);
        return {};
    }

private:
    // The dispatcher through another tool's link (detached: the link stays,
    // defunct, with its owner) or attached without a link (detached by
    // program).
    static Result<> detach_foreign(const Instance& in, const Attachment& a) {
        std::string what = "detach " + a.ifname + " " + direction_name(a.direction) + " (tcx)";
        auto e = foreign_entry(a.ifindex, a.direction, in.dispatcher().id);
        if (!e) return {};  // gone already
        if (e->link_id) {
            UniqueFd fd(bpf_link_get_fd_by_id(e->link_id));
            if (!fd) return fail_errno(what, errno);
            if (bpf_link_detach(fd.get()) != 0 && errno != ENOLINK) return fail_errno(what, errno);
            return {};
        }
        if (bpf_prog_detach2(in.dispatcher_fd(), static_cast<int>(a.ifindex),
                             static_cast<bpf_attach_type>(attach_type(a.direction))) != 0)
            return fail_errno(what, errno);
        return {};
    }
};

}  // namespace

Result<uint32_t> tcx_relative_id(const Place& at, const std::string& prog) {
    auto ids = chain(at.ifindex, at.direction);
    if (!ids) return propagate(ids);
    std::string here = fmt::format("the tcx chain of {} {}", at.ifname, direction_name(at.direction));
    bool numeric = !prog.empty() && prog.find_first_not_of("0123456789") == std::string::npos;
    std::vector<uint32_t> named;
    std::string chain;  // "name (id N), ...": what runs there, for the hint
    for (uint32_t id : *ids) {
        if (numeric && std::to_string(id) == prog) return id;
        auto fd = prog_fd_by_id(id);
        if (!fd) continue;  // gone in between
        auto info = prog_info(fd->get());
        if (!info) continue;
        chain += fmt::format("{}{} (id {})", chain.empty() ? "" : ", ", info->name.empty() ? "-" : info->name, id);
        if (numeric) continue;
        if (info->name == prog || (prog.size() > 15 && info->name == prog.substr(0, 15))) named.push_back(id);
    }
    if (named.size() == 1) return named[0];
    // Named here rather than through bpftool: Debian 12's 'bpftool net show'
    // does not list tcx programs.
    if (named.empty()) {
        auto e = about(fail("attach", fmt::format("no program {} {} runs in {}", numeric ? "with id" : "named", prog, here),
                            chain.empty() ? "" : "it holds, first to last: " + chain),
                       Flag::order);
        return chain.empty() ? worded(e, Reason::order_first_last) : e;
    }
    return about(fail("attach",
                      fmt::format("{} programs named {} run in {} (ids {})", named.size(), prog, here, fmt::join(named, ", ")),
                      "name one by its id"),
                 Flag::order);
}

bool tcx_next_to(const Place& at, uint32_t prog_id, const Placement& p) {
    auto ids = chain(at.ifindex, at.direction);
    if (!ids) return false;
    for (size_t i = 0; i + 1 < ids->size(); i++) {
        auto [first, second] = std::pair{(*ids)[i], (*ids)[i + 1]};
        if (p.order == Order::before && first == prog_id && second == p.relative_id) return true;
        if (p.order == Order::after && first == p.relative_id && second == prog_id) return true;
    }
    return false;
}

const HookAttacher& tcx_attacher() {
    static const TcxAttacher a;
    return a;
}

std::string tcx_links_dir(const Instance& in) { return in.paths().dir + "/links"; }

std::string tcx_link_pin(const Instance& in, uint64_t netns_ino, uint32_t ifindex, Direction d) {
    return fmt::format("{}/tcx-{}-{}-{}", tcx_links_dir(in), netns_ino, ifindex, direction_name(d));
}

bool tcx_supported() {
    if (const char* knob = std::getenv("TCD_TEST_NO_TCX"); knob && std::strcmp(knob, "1") == 0) return false;
    // The kernel's answer, asked once (core/probe.h); a probe that could not
    // run counts as no tcx, and tc falls back to clsact.
    auto has = probe::has(probe::Feature::tcx);
    return has && *has;
}

}  // namespace tcd
