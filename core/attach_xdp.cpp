// XDP through libxdp: alone on the interface, or inside libxdp's
// multi-program dispatcher when one is there.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <fmt/format.h>

#include "core/attach_impl.h"
#include "core/attach_records.h"
#include "core/crashpoint.h"

namespace tcd {
namespace {

// What runs at an interface's XDP hook.
struct XdpState {
    bool attached = false;  // any program
    uint32_t prog_id = 0;   // the program at the hook (libxdp's dispatcher in multiprog mode)
    std::string prog_name;
    bool ours = false;  // the program asked about runs there (alone or in libxdp's dispatcher)
    bool multiprog = false;
    AttachMode mode = AttachMode::auto_mode;  // native, skb, hw
};

AttachMode mode_of(uint8_t attach_mode) {
    switch (attach_mode) {
    case XDP_ATTACHED_DRV: return AttachMode::native;
    case XDP_ATTACHED_SKB: return AttachMode::skb;
    case XDP_ATTACHED_HW: return AttachMode::hw;
    default: return AttachMode::auto_mode;
    }
}

enum xdp_attach_mode to_libxdp(AttachMode m) {
    switch (m) {
    case AttachMode::native: return XDP_MODE_NATIVE;
    case AttachMode::skb: return XDP_MODE_SKB;
    case AttachMode::hw: return XDP_MODE_HW;
    default: return XDP_MODE_UNSPEC;
    }
}

uint32_t mode_flags(AttachMode m) {
    switch (m) {
    case AttachMode::native: return XDP_FLAGS_DRV_MODE;
    case AttachMode::skb: return XDP_FLAGS_SKB_MODE;
    case AttachMode::hw: return XDP_FLAGS_HW_MODE;
    default: return 0;
    }
}

bool same_prog(uint32_t id, const std::string& name, const std::string& tag, const ProgInfo& ours) {
    return id == ours.id || (name == ours.name && tag == ours.tag);
}

// ours: the program asked about; in multiprog mode matched by name and tag too.
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
    st.mode = mode_of(mode);
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

tl::unexpected<Error> explain_attach(int err, const std::string& ifname, AttachMode mode) {
    err = err < 0 ? -err : err;
    std::string what = "attach " + ifname;
    if (err == EOPNOTSUPP && mode == AttachMode::native)
        return fail(what, "the driver has no native XDP support", "try --mode skb", err);
    if (err == EOPNOTSUPP || (err == EINVAL && mode == AttachMode::hw))
        return fail(what, "this mode is not supported by the device", "try --mode skb", err);
    if (err == ERANGE || err == E2BIG)
        return fail(what, "the MTU is too large for XDP on this device", "lower the MTU", err);
    if (err == EEXIST || err == EBUSY)
        return fail(what, "another XDP program is attached in another mode",
                    "detach it first ('ip link set dev " + ifname + " xdp off')", err);
    return fail_errno(what, err);
}

Attachment where_of(const Place& at) { return attachment_at(at, AttachMode::auto_mode); }

class XdpAttacher final : public HookAttacher {
public:
    std::optional<Attachment> find(const Instance& in, const Place& at, uint32_t prog_id) const override {
        ProgInfo who = in.dispatcher();
        if (prog_id != who.id) {
            who = ProgInfo{};
            who.id = prog_id;
        }
        XdpState st = query(at.ifindex, who);
        // By id only for another program than the dispatcher (a staged one).
        if (!st.ours || (prog_id != in.dispatcher().id && st.prog_id != prog_id)) return std::nullopt;
        Attachment a = where_of(at);
        a.mode = st.mode;
        a.multiprog = st.multiprog;
        return a;
    }

    Result<AttachResult> attach(const Instance& in, const Place& at, const AttachOptions& opt) const override;

    Result<> detach(const Instance& in, const Attachment& a) const override {
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

    Result<> swap(const Attachment& a, int new_fd, int old_fd) const override {
        if (a.multiprog)
            return fail("replace the dispatcher on " + a.ifname, "it runs inside libxdp's multi-program dispatcher",
                        "detach it, reload, attach again");
        LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd);
        if (bpf_xdp_attach(static_cast<int>(a.ifindex), new_fd, mode_flags(a.mode) | XDP_FLAGS_REPLACE, &o) != 0)
            return fail_errno("replace the dispatcher on " + a.ifname, errno);
        return {};
    }
};

Result<AttachResult> XdpAttacher::attach(const Instance& in, const Place& at, const AttachOptions& opt) const {
    AttachResult res;
    res.where = where_of(at);
    XdpState st = query(at.ifindex, in.dispatcher());
    XdpProgramPtr foreign;
    enum xdp_attach_mode foreign_mode = XDP_MODE_UNSPEC;
    if (st.attached) {
        std::string who = fmt::format("{} (id {})", st.prog_name, st.prog_id);
        if (!opt.force)
            return fail("interface " + opt.ifname, "another XDP program runs there: " + who,
                        "use --force to replace it");
        XdpMultiprogPtr mp(xdp_multiprog__get_from_ifindex(static_cast<int>(at.ifindex)));
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
        if (foreign) xdp_program__attach(foreign.get(), static_cast<int>(at.ifindex), foreign_mode, 0);
    };

    XdpProgramPtr prog(xdp_program__from_fd(in.dispatcher_fd()));
    if (long err = libxdp_get_error(prog.get())) {
        prog.release();
        restore_foreign();
        return fail_errno("attach " + opt.ifname, static_cast<int>(-err));
    }
    // Recorded first (the mode is filled in after): a kill between the two
    // leaves a record that status checks against the kernel.
    if (auto r = record(in, res.where, at.netns_ino); !r) {
        restore_foreign();
        return propagate(r);
    }
    crash_point("attach");
    if (int err = xdp_program__attach(prog.get(), static_cast<int>(at.ifindex), to_libxdp(opt.mode), 0)) {
        forget(in, at.netns_ino, at.ifindex, Direction::none);
        restore_foreign();
        return explain_attach(err, opt.ifname, opt.mode);
    }
    crash_point("attach");
    XdpState after = query(at.ifindex, in.dispatcher());
    res.where.mode = after.mode;
    res.where.multiprog = after.multiprog;
    res.changed = true;
    if (auto r = record(in, res.where, at.netns_ino); !r) {
        xdp_program__detach(prog.get(), static_cast<int>(at.ifindex), XDP_MODE_UNSPEC, 0);
        restore_foreign();
        return propagate(r);
    }
    return res;
}

}  // namespace

const HookAttacher& xdp_attacher() {
    static const XdpAttacher a;
    return a;
}

}  // namespace tcd
