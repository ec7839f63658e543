#include "core/attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <net/if.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <set>
#include <tuple>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

std::string ns_words(const std::string& netns) {
    return netns.empty() ? std::string() : " in network namespace " + netns;
}

uint64_t netns_inode(const std::string& path) {
    struct stat st {};
    if (stat(path.empty() ? "/proc/self/ns/net" : path.c_str(), &st) != 0) return 0;
    return st.st_ino;
}

const char* mode_name(uint8_t attach_mode) {
    switch (attach_mode) {
    case XDP_ATTACHED_DRV: return "native";
    case XDP_ATTACHED_SKB: return "skb";
    case XDP_ATTACHED_HW: return "hw";
    default: return "unknown";
    }
}

enum xdp_attach_mode to_libxdp(XdpMode m) {
    switch (m) {
    case XdpMode::native: return XDP_MODE_NATIVE;
    case XdpMode::skb: return XDP_MODE_SKB;
    case XdpMode::hw: return XDP_MODE_HW;
    default: return XDP_MODE_UNSPEC;
    }
}

uint32_t mode_flags(const std::string& mode) {
    if (mode == "native") return XDP_FLAGS_DRV_MODE;
    if (mode == "skb") return XDP_FLAGS_SKB_MODE;
    if (mode == "hw") return XDP_FLAGS_HW_MODE;
    return 0;
}

bool same_prog(uint32_t id, const std::string& name, const std::string& tag, const ProgInfo& ours) {
    return id == ours.id || (name == ours.name && tag == ours.tag);
}

// Must be called inside the interface's namespace.
XdpState query(uint32_t ifindex, const ProgInfo& ours) {
    XdpState st;
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(static_cast<int>(ifindex), 0, &q) != 0) return st;
    uint32_t id = q.prog_id;
    uint8_t mode = q.attach_mode;
    if (!id) {  // several modes at once: report the first
        if (q.drv_prog_id) id = q.drv_prog_id, mode = XDP_ATTACHED_DRV;
        else if (q.skb_prog_id) id = q.skb_prog_id, mode = XDP_ATTACHED_SKB;
        else if (q.hw_prog_id) id = q.hw_prog_id, mode = XDP_ATTACHED_HW;
    }
    if (!id) return st;
    st.attached = true;
    st.prog_id = id;
    st.mode = mode_name(mode);
    if (id == ours.id) {
        st.prog_name = ours.name;
        st.ours = true;
        return st;
    }
    if (auto fd = prog_fd_by_id(id)) {
        if (auto info = prog_info(fd->get())) st.prog_name = info->name;
    }
    if (st.prog_name == "xdp_dispatcher") {  // libxdp's multi-program dispatcher
        XdpMultiprogPtr mp(xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex)));
        if (mp && !libxdp_get_error(mp.get()) && !xdp_multiprog__is_legacy(mp.get())) {
            st.multiprog = true;
            for (auto* p = xdp_multiprog__next_prog(nullptr, mp.get()); p;
                 p = xdp_multiprog__next_prog(p, mp.get())) {
                std::string tag;
                const unsigned char* t = xdp_program__tag(p);
                for (int i = 0; t && i < 8; i++) tag += fmt::format("{:02x}", t[i]);
                if (same_prog(xdp_program__id(p), xdp_program__name(p), tag, ours)) st.ours = true;
            }
        } else if (mp && libxdp_get_error(mp.get())) {
            mp.release();
        }
    }
    return st;
}

Result<uint32_t> find_ifindex(const std::string& ifname, const std::string& netns) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ)
        return usage_error("interface " + ifname, "not a valid interface name");
    unsigned idx = if_nametoindex(ifname.c_str());
    if (!idx)
        return fail("interface " + ifname, "no such interface" + ns_words(netns),
                    netns.empty() ? "see 'ip link'" : "see 'ip -n NAME link' or nsenter");
    return idx;
}


uint32_t direction_code(const std::string& d) { return d == "ingress" ? 1 : d == "egress" ? 2 : 0; }
const char* direction_name(uint32_t code) { return code == 1 ? "ingress" : code == 2 ? "egress" : ""; }

Result<> record(const Instance& in, const Attachment& a, uint64_t ino) {
    if (in.attach_fd() < 0) return {};
    tcd_attach_key k{};
    k.netns_ino = ino;
    k.ifindex = a.ifindex;
    k.direction = direction_code(a.direction);
    tcd_attach_val v{};
    std::snprintf(v.ifname, sizeof v.ifname, "%s", a.ifname.c_str());
    std::snprintf(v.netns, sizeof v.netns, "%s", a.netns.c_str());
    v.mode = static_cast<uint32_t>(a.mode == "native" ? XDP_MODE_NATIVE
                                   : a.mode == "skb"  ? XDP_MODE_SKB
                                   : a.mode == "hw"   ? XDP_MODE_HW
                                                      : XDP_MODE_UNSPEC);
    v.multiprog = a.multiprog ? 1 : 0;
    v.made_qdisc = a.made_qdisc ? 1 : 0;
    if (bpf_map_update_elem(in.attach_fd(), &k, &v, BPF_ANY) != 0)
        return fail_errno("record attachment of " + a.ifname, errno);
    return {};
}

void forget(const Instance& in, uint64_t ino, uint32_t ifindex, const std::string& direction = "") {
    if (in.attach_fd() < 0) return;
    tcd_attach_key k{};
    k.netns_ino = ino;
    k.ifindex = ifindex;
    k.direction = direction_code(direction);
    bpf_map_delete_elem(in.attach_fd(), &k);
}

// ---- tc: a direct-action filter on the clsact qdisc -----------------------
// tcd's filter is the one with this handle and priority.
constexpr uint32_t kTcHandle = 0x7cd;
constexpr uint32_t kTcPriority = 0x7cd;

bpf_tc_attach_point tc_point(const std::string& direction) {
    return direction == "egress" ? BPF_TC_EGRESS : BPF_TC_INGRESS;
}

// The program id of tcd's filter at ifindex/direction, or 0.
uint32_t tc_query(uint32_t ifindex, const std::string& direction) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = tc_point(direction));
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = kTcHandle, .priority = kTcPriority);
    if (bpf_tc_query(&hook, &o) != 0) return 0;
    return o.prog_id;
}

Result<bool> tc_attach_here(int prog_fd, uint32_t ifindex, const std::string& ifname, const std::string& direction,
                            bool replace) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = tc_point(direction));
    int err = bpf_tc_hook_create(&hook);
    bool made = err == 0;
    if (err && err != -EEXIST) return fail_errno("create the clsact qdisc on " + ifname, -err);
    LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = prog_fd, .flags = replace ? static_cast<__u32>(BPF_TC_F_REPLACE) : 0u,
                .handle = kTcHandle, .priority = kTcPriority);
    if ((err = bpf_tc_attach(&hook, &o)) != 0) {
        if (made) {
            hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
            bpf_tc_hook_destroy(&hook);
        }
        return fail_errno("attach " + ifname + " " + direction, -err);
    }
    return made;
}

Result<> tc_detach_here(uint32_t ifindex, const std::string& ifname, const std::string& direction) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = tc_point(direction));
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = kTcHandle, .priority = kTcPriority);
    if (int err = bpf_tc_detach(&hook, &o); err && err != -ENOENT)
        return fail_errno("detach " + ifname + " " + direction, -err);
    return {};
}

// Whether the clsact qdisc on ifindex holds filters other than tcd's (asked
// with a netlink filter dump; when in doubt, yes).
bool tc_other_filters(uint32_t ifindex) {
    UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!s) return true;
    uint32_t seq = 0;
    for (uint32_t parent : {TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)}) {
        struct {
            nlmsghdr nh;
            tcmsg t;
        } req{};
        req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
        req.nh.nlmsg_type = RTM_GETTFILTER;
        req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req.nh.nlmsg_seq = ++seq;
        req.t.tcm_family = AF_UNSPEC;
        req.t.tcm_ifindex = static_cast<int>(ifindex);
        req.t.tcm_parent = parent;
        if (::send(s.get(), &req, req.nh.nlmsg_len, 0) < 0) return true;
        alignas(nlmsghdr) char buf[32768];
        for (bool done = false; !done;) {
            ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
            if (n <= 0) return true;
            for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<unsigned>(n));
                 nh = NLMSG_NEXT(nh, n)) {
                if (nh->nlmsg_type == NLMSG_DONE) {
                    done = true;
                    break;
                }
                if (nh->nlmsg_type == NLMSG_ERROR) return true;
                if (nh->nlmsg_type != RTM_NEWTFILTER) continue;
                auto* t = static_cast<tcmsg*>(NLMSG_DATA(nh));
                uint32_t prio = TC_H_MAJ(t->tcm_info) >> 16;
                if (t->tcm_handle != 0 && !(t->tcm_handle == kTcHandle && prio == kTcPriority)) return true;
            }
        }
    }
    return false;
}

// Removes the clsact qdisc tcd made, once neither direction has tcd's filter
// and nothing else uses it; true when it is gone.
bool tc_drop_qdisc_if_unused(uint32_t ifindex) {
    if (tc_query(ifindex, "ingress") || tc_query(ifindex, "egress")) return false;
    if (tc_other_filters(ifindex)) return false;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    int err = bpf_tc_hook_destroy(&hook);
    return err == 0 || err == -ENOENT || err == -EINVAL;
}

// Whether tcd made an interface's clsact qdisc belongs to the interface, not
// to an instance: instance A may make it for its ingress filter and instance
// B attach egress beside it; whichever takes tcd's last filter off removes
// it. The mark is a file /run/tcd/qdisc/NETNS_INODE-IFINDEX (tmpfs, gone
// after a reboot like the qdisc), made when tcd creates the qdisc and removed
// with it. Instances do not share a lock, so the decisions are taken under a
// flock on that directory.
constexpr const char* kRunDir = "/run/tcd";
constexpr const char* kQdiscDir = "/run/tcd/qdisc";

class QdiscMarks {
public:
    QdiscMarks() {
        ::mkdir(kRunDir, 0755);
        ::mkdir(kQdiscDir, 0755);
        fd_ = UniqueFd(::open(kQdiscDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (fd_) (void)::flock(fd_.get(), LOCK_EX);
        prune();
    }
    ~QdiscMarks() {
        if (fd_) (void)::flock(fd_.get(), LOCK_UN);
    }
    QdiscMarks(const QdiscMarks&) = delete;
    QdiscMarks& operator=(const QdiscMarks&) = delete;

    static std::string path(uint64_t ino, uint32_t ifindex) { return fmt::format("{}/{}-{}", kQdiscDir, ino, ifindex); }
    bool marked(uint64_t ino, uint32_t ifindex) const { return ::access(path(ino, ifindex).c_str(), F_OK) == 0; }
    // The file names the namespace path (pruning reads it) and the interface.
    void mark(uint64_t ino, uint32_t ifindex, const std::string& ifname, const std::string& netns) const {
        UniqueFd f(::open(path(ino, ifindex).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!f) return;
        std::string text = (netns.empty() ? "-" : netns) + "\n" + ifname + "\n";
        (void)!::write(f.get(), text.data(), text.size());
    }
    void unmark(uint64_t ino, uint32_t ifindex) const { ::unlink(path(ino, ifindex).c_str()); }

private:
    // Marks of namespaces that are gone (their path no longer leads to the
    // inode in the name): the qdisc went with them.
    void prune() const {
        DIR* d = ::opendir(kQdiscDir);
        if (!d) return;
        while (dirent* e = ::readdir(d)) {
            unsigned long long ino = 0;
            unsigned ifindex = 0;
            if (std::sscanf(e->d_name, "%llu-%u", &ino, &ifindex) != 2) continue;
            std::string file = std::string(kQdiscDir) + "/" + e->d_name;
            char text[256] = {};
            UniqueFd f(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
            if (!f || ::read(f.get(), text, sizeof text - 1) <= 0) continue;
            std::string netns(text, std::strcspn(text, "\n"));  // first line: the path, "-" for tcd's own
            if (netns.empty() || netns == "-") continue;
            if (netns_inode(netns) != ino) ::unlink(file.c_str());
        }
        ::closedir(d);
    }

    UniqueFd fd_;
};

struct Record {
    tcd_attach_key key;
    tcd_attach_val val;
};

std::vector<Record> records(const Instance& in) {
    std::vector<Record> out;
    if (in.attach_fd() < 0) return out;
    tcd_attach_key k{}, next{};
    void* prev = nullptr;
    while (bpf_map_get_next_key(in.attach_fd(), prev, &next) == 0) {
        Record r{next, {}};
        if (bpf_map_lookup_elem(in.attach_fd(), &next, &r.val) == 0) out.push_back(r);
        k = next;
        prev = &k;
    }
    return out;
}

tl::unexpected<Error> explain_attach(int err, const std::string& ifname, XdpMode mode) {
    err = err < 0 ? -err : err;
    std::string what = "attach " + ifname;
    if (err == EOPNOTSUPP && mode == XdpMode::native)
        return fail(what, "the driver has no native XDP support", "try --mode skb", err);
    if (err == EOPNOTSUPP || (err == EINVAL && mode == XdpMode::hw))
        return fail(what, "this mode is not supported by the device", "try --mode skb", err);
    if (err == ERANGE || err == E2BIG)
        return fail(what, "the MTU is too large for XDP on this device", "lower the MTU", err);
    if (err == EEXIST || err == EBUSY)
        return fail(what, "another XDP program is attached in another mode",
                    "detach it first ('ip link set dev " + ifname + " xdp off')", err)
            ;
    return fail_errno(what, err);
}

}  // namespace

Result<std::string> resolve_netns(const std::string& spec) {
    if (spec.empty()) return std::string();
    std::string path = spec.find('/') != std::string::npos ? spec : "/run/netns/" + spec;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
        return fail("network namespace " + spec, "not found",
                    spec.find('/') != std::string::npos ? "give a path such as /proc/PID/ns/net"
                                                        : "see 'ip netns list'");
    if (path.size() >= TCD_NETNS_PATH_MAX)
        return usage_error("network namespace " + spec, "path too long");
    return path;
}

Result<NetnsGuard> NetnsGuard::enter(const std::string& path) {
    NetnsGuard g;
    if (path.empty()) return g;
    UniqueFd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!self) return fail_errno("network namespace", errno);
    UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target) return fail_errno("network namespace " + path, errno);
    if (setns(target.get(), CLONE_NEWNET) != 0) {
        int err = errno;
        if (err == EINVAL)
            return fail("network namespace " + path, "not a network namespace file");
        return fail_errno("enter network namespace " + path, err);
    }
    g.saved_ = std::move(self);
    return g;
}

NetnsGuard::~NetnsGuard() {
    if (saved_) (void)setns(saved_.get(), CLONE_NEWNET);
}

Result<XdpMode> parse_xdp_mode(const std::string& text) {
    if (text == "auto" || text.empty()) return XdpMode::auto_mode;
    if (text == "native" || text == "drv") return XdpMode::native;
    if (text == "skb" || text == "generic") return XdpMode::skb;
    if (text == "hw" || text == "offload") return XdpMode::hw;
    return usage_error("mode " + text, "unknown XDP mode", "one of auto, native, skb, hw");
}

Result<AttachResult> attach(const Instance& in, const AttachOptions& opt) {
    auto ns = resolve_netns(opt.netns);
    if (!ns) return tl::unexpected(ns.error());
    uint64_t ino = netns_inode(*ns);
    auto guard = NetnsGuard::enter(*ns);
    if (!guard) return tl::unexpected(guard.error());
    auto ifindex = find_ifindex(opt.ifname, *ns);
    if (!ifindex) return tl::unexpected(ifindex.error());

    AttachResult res;
    res.where = {opt.ifname, *ifindex, *ns, "", false, "", false};
    if (in.kind().hook == Hook::tc) {
        std::string dir = opt.direction.empty() ? "ingress" : opt.direction;
        res.where.mode = "tc";
        res.where.direction = dir;
        QdiscMarks marks;
        uint32_t id = tc_query(*ifindex, dir);
        if (id == in.dispatcher().id) {  // already there
            res.where.made_qdisc = marks.marked(ino, *ifindex);
            if (auto r = record(in, res.where, ino); !r) return tl::unexpected(r.error());
            return res;
        }
        if (id && !opt.force) {
            std::string who = fmt::format("id {}", id);
            if (auto fd = prog_fd_by_id(id))
                if (auto info = prog_info(fd->get())) who = fmt::format("{} (id {})", info->name, id);
            return fail("interface " + opt.ifname, "another program holds tcd's tc filter slot: " + who,
                        "use --force to replace it");
        }
        // A clsact qdisc with no tcd filter in either direction was not
        // made by tcd as far as anyone can tell (a mark left from a qdisc
        // that was deleted and made again by someone else): keep it then.
        bool tcd_filters = id != 0 || tc_query(*ifindex, dir == "ingress" ? "egress" : "ingress") != 0;
        // Recorded first: a kill between the two leaves a record that
        // status checks against the kernel, never an unrecorded filter.
        if (auto r = record(in, res.where, ino); !r) return tl::unexpected(r.error());
        crash_point("attach");
        auto made = tc_attach_here(in.dispatcher_fd(), *ifindex, opt.ifname, dir, id != 0);
        if (!made) {
            forget(in, ino, *ifindex, dir);
            return tl::unexpected(made.error());
        }
        if (*made) marks.mark(ino, *ifindex, opt.ifname, *ns);
        else if (!tcd_filters) marks.unmark(ino, *ifindex);
        crash_point("attach");
        // Whether tcd made the clsact qdisc belongs to the interface (another
        // direction or another instance may have made it).
        res.where.made_qdisc = marks.marked(ino, *ifindex);
        res.changed = true;
        if (auto r = record(in, res.where, ino); !r) {
            (void)tc_detach_here(*ifindex, opt.ifname, dir);
            if (*made && tc_drop_qdisc_if_unused(*ifindex)) marks.unmark(ino, *ifindex);
            return tl::unexpected(r.error());
        }
        return res;
    }
    XdpState st = query(*ifindex, in.dispatcher());
    if (st.ours && opt.mode != XdpMode::auto_mode) {
        // Asked for one mode where it runs in another: that state does not
        // hold, and changing it silently would drop packets in between.
        const char* want = opt.mode == XdpMode::native ? "native" : opt.mode == XdpMode::skb ? "skb" : "hw";
        if (st.mode != want)
            return fail("interface " + opt.ifname, "already attached in " + st.mode + " mode", "detach first");
    }
    if (st.ours) {  // already there: the state asked for holds
        res.where.mode = st.mode;
        res.where.multiprog = st.multiprog;
        if (auto r = record(in, res.where, ino); !r) return tl::unexpected(r.error());
        return res;
    }

    XdpProgramPtr foreign;
    enum xdp_attach_mode foreign_mode = XDP_MODE_UNSPEC;
    if (st.attached) {
        std::string who = fmt::format("{} (id {})", st.prog_name, st.prog_id);
        if (!opt.force)
            return fail("interface " + opt.ifname, "another XDP program runs there: " + who,
                        "use --force to replace it");
        XdpMultiprogPtr mp(xdp_multiprog__get_from_ifindex(static_cast<int>(*ifindex)));
        if (long err = libxdp_get_error(mp.get())) {
            mp.release();
            return fail_errno("query " + opt.ifname, static_cast<int>(-err));
        }
        foreign_mode = xdp_multiprog__attach_mode(mp.get());
        if (xdp_multiprog__is_legacy(mp.get())) {
            foreign.reset(xdp_program__from_id(st.prog_id));
            if (libxdp_get_error(foreign.get())) foreign.release();
        }
        if (int err = xdp_multiprog__detach(mp.get()))
            return fail_errno("detach " + who + " from " + opt.ifname, -err);
        res.replaced = who;
    }
    auto restore_foreign = [&] {
        if (foreign) xdp_program__attach(foreign.get(), static_cast<int>(*ifindex), foreign_mode, 0);
    };

    XdpProgramPtr prog(xdp_program__from_fd(in.dispatcher_fd()));
    if (long err = libxdp_get_error(prog.get())) {
        prog.release();
        restore_foreign();
        return fail_errno("attach " + opt.ifname, static_cast<int>(-err));
    }
    // Recorded first (the mode is filled in after): a kill between the two
    // leaves a record that status checks against the kernel.
    if (auto r = record(in, res.where, ino); !r) {
        restore_foreign();
        return tl::unexpected(r.error());
    }
    crash_point("attach");
    if (int err = xdp_program__attach(prog.get(), static_cast<int>(*ifindex), to_libxdp(opt.mode), 0)) {
        forget(in, ino, *ifindex);
        restore_foreign();
        return explain_attach(err, opt.ifname, opt.mode);
    }
    crash_point("attach");
    XdpState after = query(*ifindex, in.dispatcher());
    res.where.mode = after.mode;
    res.where.multiprog = after.multiprog;
    res.changed = true;
    if (auto r = record(in, res.where, ino); !r) {
        xdp_program__detach(prog.get(), static_cast<int>(*ifindex), XDP_MODE_UNSPEC, 0);
        restore_foreign();
        return tl::unexpected(r.error());
    }
    return res;
}

// Inside the interface's namespace: takes our dispatcher off ifindex.
static Result<> detach_here(const Instance& in, const Attachment& a) {
    XdpProgramPtr prog(xdp_program__from_fd(in.dispatcher_fd()));
    if (long err = libxdp_get_error(prog.get())) {
        prog.release();
        return fail_errno("detach " + a.ifname, static_cast<int>(-err));
    }
    if (int err = xdp_program__detach(prog.get(), static_cast<int>(a.ifindex), XDP_MODE_UNSPEC, 0)) {
        // libxdp refuses a program it did not attach itself in some cases;
        // a plain netlink detach of exactly our program is still right.
        LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = in.dispatcher_fd());
        if (a.multiprog ||
            bpf_xdp_detach(static_cast<int>(a.ifindex), mode_flags(a.mode) | XDP_FLAGS_REPLACE, &o) != 0)
            return fail_errno("detach " + a.ifname, -err);
    }
    return {};
}

Result<std::vector<DetachResult>> detach(const Instance& in, const std::string& ifname, const std::string& netns,
                                         const std::string& direction) {
    auto ns = resolve_netns(netns);
    if (!ns) return tl::unexpected(ns.error());
    uint64_t ino = netns_inode(*ns);
    auto guard = NetnsGuard::enter(*ns);
    if (!guard) return tl::unexpected(guard.error());
    auto ifindex = find_ifindex(ifname, *ns);
    if (!ifindex) return tl::unexpected(ifindex.error());

    std::vector<DetachResult> out;
    if (in.kind().hook == Hook::tc) {
        QdiscMarks marks;
        // The interface's mark; a record of this instance saying so counts
        // too (attached by a tcd that kept it per instance).
        bool made = marks.marked(ino, *ifindex);
        for (const auto& r : records(in))
            if (r.key.netns_ino == ino && r.key.ifindex == *ifindex && r.val.made_qdisc) made = true;
        for (const char* dir : {"ingress", "egress"}) {
            if (!direction.empty() && direction != dir) continue;
            DetachResult res;
            res.where = {ifname, *ifindex, *ns, "tc", false, dir, made};
            if (tc_query(*ifindex, dir) == in.dispatcher().id) {
                if (auto r = tc_detach_here(*ifindex, ifname, dir); !r) return tl::unexpected(r.error());
                res.changed = true;
            }
            forget(in, ino, *ifindex, dir);
            if (res.changed || direction == dir) out.push_back(res);
        }
        if (made && tc_drop_qdisc_if_unused(*ifindex)) marks.unmark(ino, *ifindex);
        if (out.empty()) out.push_back({false, {ifname, *ifindex, *ns, "tc", false, direction, false}});
        return out;
    }
    DetachResult res;
    XdpState st = query(*ifindex, in.dispatcher());
    res.where = {ifname, *ifindex, *ns, st.mode, st.multiprog, "", false};
    if (!st.ours) {
        forget(in, ino, *ifindex);
        out.push_back(res);
        return out;
    }
    if (auto r = detach_here(in, res.where); !r) return tl::unexpected(r.error());
    forget(in, ino, *ifindex);
    res.changed = true;
    out.push_back(res);
    return out;
}

std::vector<Attachment> attachments(const Instance& in) {
    std::vector<Attachment> out;
    std::set<std::tuple<uint64_t, uint32_t, uint32_t>> seen;
    uint64_t own = netns_inode("");
    bool tc = in.kind().hook == Hook::tc;
    // What runs at one interface of the current namespace, per hook.
    auto look = [&](uint32_t ifindex, const std::string& name, const std::string& ns, bool made,
                    std::optional<uint32_t> only_dir) {
        if (tc) {
            for (uint32_t d : {1u, 2u}) {
                if (only_dir && *only_dir != d) continue;
                if (tc_query(ifindex, direction_name(d)) == in.dispatcher().id)
                    out.push_back({name, ifindex, ns, "tc", false, direction_name(d), made});
            }
            return;
        }
        XdpState st = query(ifindex, in.dispatcher());
        if (st.ours) out.push_back({name, ifindex, ns, st.mode, st.multiprog, "", false});
    };
    for (const auto& r : records(in)) {
        std::string ns = r.val.netns;
        if (netns_inode(ns) != r.key.netns_ino) continue;  // namespace gone
        auto guard = NetnsGuard::enter(r.key.netns_ino == own ? "" : ns);
        if (!guard) continue;
        char name[IF_NAMESIZE] = {};
        if (!if_indextoname(r.key.ifindex, name)) continue;
        look(r.key.ifindex, name, r.key.netns_ino == own ? "" : ns, r.val.made_qdisc,
             tc ? std::optional<uint32_t>(r.key.direction) : std::nullopt);
        seen.insert({r.key.netns_ino, r.key.ifindex, r.key.direction});
    }
    // Interfaces of tcd's own namespace that run it without a record (ip, bpftool).
    if (struct if_nameindex* list = if_nameindex()) {
        for (auto* i = list; i->if_index; ++i) {
            if (!tc && seen.count({own, i->if_index, 0})) continue;
            if (tc && seen.count({own, i->if_index, 1}) && seen.count({own, i->if_index, 2})) continue;
            std::optional<uint32_t> only;
            if (tc && seen.count({own, i->if_index, 1})) only = 2;
            if (tc && seen.count({own, i->if_index, 2})) only = 1;
            look(i->if_index, i->if_name, "", false, only);
        }
        if_freenameindex(list);
    }
    return out;
}

std::vector<std::string> stale_attachments(const Instance& in) {
    std::vector<std::string> out;
    uint64_t own = netns_inode("");
    bool tc = in.kind().hook == Hook::tc;
    const std::string fix = "; 'tcd unload' or 'tcd detach --all' clears it";
    // The new dispatcher of a load --force killed between its swap and its
    // rename, pinned under its staged name.
    std::string staged = bpffs::staged_path(in.dispatcher_path());
    std::optional<ProgInfo> next;
    if (UniqueFd fd{bpf_obj_get(staged.c_str())})
        if (auto info = prog_info(fd.get())) next = *info;
    for (const auto& r : records(in)) {
        std::string ns = r.key.netns_ino == own ? "" : r.val.netns;
        std::string where = "ifindex " + std::to_string(r.key.ifindex) + (ns.empty() ? "" : " in " + ns);
        if (tc) where += std::string(" ") + direction_name(r.key.direction);
        if (netns_inode(r.val.netns) != r.key.netns_ino) {
            out.push_back("stale attach record (" + where + "): the network namespace is gone" + fix);
            continue;
        }
        auto guard = NetnsGuard::enter(ns);
        char name[IF_NAMESIZE] = {};
        if (!guard || !if_indextoname(r.key.ifindex, name)) {
            out.push_back("stale attach record (" + where + "): the interface is gone" + fix);
            continue;
        }
        bool runs = tc ? tc_query(r.key.ifindex, direction_name(r.key.direction)) == in.dispatcher().id
                       : query(r.key.ifindex, in.dispatcher()).ours;
        std::string here = std::string(name) + (ns.empty() ? "" : " in " + ns) +
                           (tc ? std::string(" ") + direction_name(r.key.direction) : "");
        bool runs_next = !runs && next &&
                         (tc ? tc_query(r.key.ifindex, direction_name(r.key.direction)) == next->id
                             : query(r.key.ifindex, *next).ours);
        if (runs_next)
            out.push_back("interrupted load --force: " + here + " runs the new dispatcher, still pinned as " +
                          staged.substr(staged.rfind('/') + 1) + "; 'tcd load --force' or 'tcd unload' finishes it");
        else if (!runs)
            out.push_back("stale attach record (" + here + "): the dispatcher does not run there" + fix);
    }
    return out;
}

Result<std::vector<Attachment>> detach_all(const Instance& in) {
    std::vector<Attachment> done;
    for (const auto& a : attachments(in)) {
        auto guard = NetnsGuard::enter(a.netns);
        if (!guard) return tl::unexpected(guard.error());
        if (in.kind().hook == Hook::tc) {
            QdiscMarks marks;
            uint64_t ino = netns_inode(a.netns);
            if (auto r = tc_detach_here(a.ifindex, a.ifname, a.direction); !r) return tl::unexpected(r.error());
            if ((a.made_qdisc || marks.marked(ino, a.ifindex)) && tc_drop_qdisc_if_unused(a.ifindex))
                marks.unmark(ino, a.ifindex);
            done.push_back(a);
            continue;
        }
        if (auto r = detach_here(in, a); !r) {
            // Put back what this call took away, so a failed command changes nothing.
            for (const auto& d : done) {
                auto g = NetnsGuard::enter(d.netns);
                XdpProgramPtr prog(xdp_program__from_fd(in.dispatcher_fd()));
                if (g && !libxdp_get_error(prog.get()))
                    xdp_program__attach(prog.get(), static_cast<int>(d.ifindex), XDP_MODE_UNSPEC, 0);
                else
                    prog.release();
            }
            return tl::unexpected(r.error());
        }
        done.push_back(a);
    }
    for (auto r : records(in))  // every record, tc directions included
        if (in.attach_fd() >= 0) bpf_map_delete_elem(in.attach_fd(), &r.key);
    return done;
}

bool runs_where_attached(const Instance& in, uint32_t prog_id) {
    bool tc = in.kind().hook == Hook::tc;
    uint64_t own = netns_inode("");
    auto runs_here = [&](uint32_t ifindex, uint32_t direction) {
        if (tc) return tc_query(ifindex, direction_name(direction)) == prog_id;
        return query(ifindex, in.dispatcher()).prog_id == prog_id;
    };
    for (const auto& r : records(in)) {
        if (netns_inode(r.val.netns) != r.key.netns_ino) continue;  // namespace gone
        auto guard = NetnsGuard::enter(r.key.netns_ino == own ? "" : r.val.netns);
        if (guard && runs_here(r.key.ifindex, r.key.direction)) return true;
    }
    bool found = false;
    if (struct if_nameindex* list = if_nameindex()) {
        for (auto* i = list; i->if_index && !found; ++i)
            for (uint32_t d : tc ? std::vector<uint32_t>{1, 2} : std::vector<uint32_t>{0})
                found = found || runs_here(i->if_index, d);
        if_freenameindex(list);
    }
    return found;
}

Result<std::vector<Attachment>> swap_dispatcher_on(const std::vector<Attachment>& where, Hook hook, int new_fd,
                                                   int old_fd) {
    std::vector<Attachment> done;
    bool tc = hook == Hook::tc;
    auto swap = [tc](const Attachment& a, int fd, int old) -> Result<> {
        auto guard = NetnsGuard::enter(a.netns);
        if (!guard) return tl::unexpected(guard.error());
        if (tc) {  // the same filter slot, replaced in one step
            auto r = tc_attach_here(fd, a.ifindex, a.ifname, a.direction, true);
            if (!r) return tl::unexpected(r.error());
            return {};
        }
        LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old);
        if (bpf_xdp_attach(static_cast<int>(a.ifindex), fd, mode_flags(a.mode) | XDP_FLAGS_REPLACE, &o) != 0)
            return fail_errno("replace the dispatcher on " + a.ifname, errno);
        return {};
    };
    for (const auto& a : where) {
        Result<> r = a.multiprog
                         ? fail("replace the dispatcher on " + a.ifname,
                                "it runs inside libxdp's multi-program dispatcher",
                                "detach it, reload, attach again")
                         : swap(a, new_fd, old_fd);
        if (!r) {
            for (const auto& d : done) (void)swap(d, old_fd, new_fd);
            return tl::unexpected(r.error());
        }
        done.push_back(a);
    }
    return done;
}

Result<std::vector<Attachment>> swap_dispatcher(const Instance& in, int new_fd) {
    return swap_dispatcher_on(attachments(in), in.kind().hook, new_fd, in.dispatcher_fd());
}

}  // namespace tcd
