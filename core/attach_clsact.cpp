// tc through the clsact qdisc: a direct-action filter in one fixed slot
// (handle and priority 0x7cd), so one tcd instance per interface and
// direction. The qdisc is made when missing and removed again by whichever
// tcd takes the last tcd filter off, if nothing else uses it.
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "core/attach_impl.h"
#include "core/attach_records.h"
#include "core/crashpoint.h"
#include "core/reasons.h"
#include "core/tc_filters.h"

namespace tcd {
namespace {

// tcd's filter is the one with this handle and priority.
constexpr uint32_t kTcHandle = 0x7cd;
constexpr uint32_t kTcPriority = 0x7cd;

bpf_tc_attach_point tc_point(Direction d) { return d == Direction::egress ? BPF_TC_EGRESS : BPF_TC_INGRESS; }
Direction other(Direction d) { return d == Direction::egress ? Direction::ingress : Direction::egress; }

// The program id in tcd's filter slot at ifindex/direction, or 0.
uint32_t slot_prog(uint32_t ifindex, Direction d) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = tc_point(d));
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = kTcHandle, .priority = kTcPriority);
    if (bpf_tc_query(&hook, &o) != 0) return 0;
    return o.prog_id;
}

// Puts prog_fd in tcd's slot (replacing what is there with replace); true
// when it made the clsact qdisc.
Result<bool> put_filter(int prog_fd, uint32_t ifindex, const std::string& ifname, Direction d, bool replace) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = tc_point(d));
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
        return fail_errno("attach " + ifname + " " + direction_name(d), -err);
    }
    return made;
}

Result<> remove_filter(uint32_t ifindex, const std::string& ifname, Direction d) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex), .attach_point = tc_point(d));
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = kTcHandle, .priority = kTcPriority);
    if (int err = bpf_tc_detach(&hook, &o); err && err != -ENOENT)
        return fail_errno("detach " + ifname + " " + direction_name(d), -err);
    return {};
}

// Whether the clsact qdisc on ifindex holds filters other than tcd's (when
// in doubt, yes).
bool other_filters(uint32_t ifindex) {
    for (bool ingress : {true, false}) {
        auto fs = dump_tc_filters(ifindex, ingress);
        if (!fs) return true;
        for (const auto& f : *fs)
            if (!(f.handle == kTcHandle && f.priority == kTcPriority)) return true;
    }
    return false;
}

// Removes the clsact qdisc tcd made, once neither direction has tcd's filter
// and nothing else uses it; true when it is gone.
bool drop_qdisc_if_unused(uint32_t ifindex) {
    if (slot_prog(ifindex, Direction::ingress) || slot_prog(ifindex, Direction::egress)) return false;
    if (other_filters(ifindex)) return false;
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

class ClsactAttacher final : public HookAttacher {
public:
    std::optional<Attachment> find(const Instance& in, const Place& at, uint32_t prog_id) const override {
        if (slot_prog(at.ifindex, at.direction) != prog_id) return std::nullopt;
        Attachment a = attachment_at(at, AttachMode::tc);
        QdiscMarks marks;
        a.made_qdisc = marks.marked(at.netns_ino, at.ifindex);
        for (const auto& r : records(in))
            if (r.key.netns_ino == at.netns_ino && r.key.ifindex == at.ifindex && r.val.made_qdisc)
                a.made_qdisc = true;
        return a;
    }

    Result<AttachResult> attach(const Instance& in, const Place& at, const AttachRequest& opt) const override {
        AttachResult res;
        res.where = attachment_at(at, AttachMode::tc);
        QdiscMarks marks;
        uint32_t id = slot_prog(at.ifindex, at.direction);
        if (id && !opt.force)
            return worded(fail("interface " + opt.ifname, "another program holds tcd's tc filter slot: " + prog_label(id)),
                          Reason::force_replaces_slot);
        if (id) res.replaced = prog_label(id);
        // A clsact qdisc with no tcd filter in either direction was not
        // made by tcd as far as anyone can tell (a mark left from a qdisc
        // that was deleted and made again by someone else): keep it then.
        bool tcd_filters = id != 0 || slot_prog(at.ifindex, other(at.direction)) != 0;
        // Recorded first: a kill between the two leaves a record that
        // status checks against the kernel, never an unrecorded filter.
        if (auto r = record(in, res.where, at.netns_ino); !r) return propagate(r);
        crash_point("attach");
        auto made = put_filter(in.dispatcher_fd(), at.ifindex, opt.ifname, at.direction, id != 0);
        if (!made) {
            forget(in, at.netns_ino, at.ifindex, at.direction);
            return propagate(made);
        }
        if (*made) marks.mark(at.netns_ino, at.ifindex, opt.ifname, at.netns);
        else if (!tcd_filters) marks.unmark(at.netns_ino, at.ifindex);
        crash_point("attach");
        // Whether tcd made the clsact qdisc belongs to the interface (another
        // direction or another instance may have made it).
        res.where.made_qdisc = marks.marked(at.netns_ino, at.ifindex);
        res.changed = true;
        if (auto r = record(in, res.where, at.netns_ino); !r) {
            (void)remove_filter(at.ifindex, opt.ifname, at.direction);
            if (*made && drop_qdisc_if_unused(at.ifindex)) marks.unmark(at.netns_ino, at.ifindex);
            return propagate(r);
        }
        return res;
    }

    Result<> detach(const Instance&, const Attachment& a) const override {
        QdiscMarks marks;
        uint64_t ino = netns_inode(a.netns);
        if (auto r = remove_filter(a.ifindex, a.ifname, a.direction); !r) return r;
        if ((a.made_qdisc || marks.marked(ino, a.ifindex)) && drop_qdisc_if_unused(a.ifindex))
            marks.unmark(ino, a.ifindex);
        return {};
    }

    Result<> swap(const Attachment& a, int new_fd, int) const override {
        // The same filter slot, replaced in one step.
        auto r = put_filter(new_fd, a.ifindex, a.ifname, a.direction, true);
        if (!r) return propagate(r);
        return {};
    }
};

}  // namespace

const HookAttacher& clsact_attacher() {
    static const ClsactAttacher a;
    return a;
}

}  // namespace tcd
