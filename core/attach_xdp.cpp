// XDP through libxdp: alone on the interface, or inside libxdp's
// multi-program dispatcher when one is there.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>

#include "core/attach_impl.h"
#include "core/attach_records.h"
#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/jumptable.h"
#include "core/probe.h"
#include "core/reasons.h"
#include "core/rollback.h"
#include "core/tree.h"
#include "tcd/shared.h"
#include "tcd_entry.skel.h"

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
    // multiprog: tcd's entry shim there (found by its mp_entry map), and the rest.
    uint32_t entry_id = 0;
    uint32_t priority = 0;
    uint32_t position = 0, chain = 0;
    std::vector<std::string> chain_call;
    std::vector<XdpNeighbour> others;
};

// libxdp's chain-call actions of a program, by verdict name.
std::vector<std::string> chain_call_of(const xdp_program* p) {
    static const std::pair<xdp_action, const char*> kActions[] = {
        {XDP_ABORTED, "aborted"}, {XDP_DROP, "drop"}, {XDP_PASS, "pass"}, {XDP_TX, "tx"}, {XDP_REDIRECT, "redirect"}};
    std::vector<std::string> out;
    for (auto [a, name] : kActions)
        if (xdp_program__chain_call_enabled(p, a)) out.push_back(name);
    return out;
}

// The instance's mp_entry map id (0: none pinned).
uint32_t entry_map_id(const Instance& in) {
    auto fd = bpffs::get(in.paths().mp_entry());
    return fd ? map_id(fd->get()) : 0;
}

// The program id in slot 0 of the instance's mp_entry (0: empty or none).
uint32_t entry_target(const std::string& pin) {
    auto fd = bpffs::get(pin);
    if (!fd) return 0;
    uint32_t k = 0, id = 0;
    return bpf_map_lookup_elem(fd->get(), &k, &id) == 0 ? id : 0;
}

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

// ours: the program asked about (alone at the hook); in a libxdp dispatcher
// tcd's entry shim is the component that uses the map entry_map (the
// instance's mp_entry), and a dispatcher itself linked there by an older tcd
// or by hand is matched by name and tag.
XdpState query(uint32_t ifindex, const ProgInfo& ours, uint32_t entry_map = 0) {
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
        if (auto info = prog_info(fd->get())) {
            st.prog_name = info->name;
            // tcd's entry shim alone at the hook: the one that uses this
            // instance's mp_entry.
            if (entry_map && std::find(info->map_ids.begin(), info->map_ids.end(), entry_map) != info->map_ids.end()) {
                st.ours = true;
                st.entry_id = id;
                return st;
            }
        }
    }
    if (st.prog_name == "xdp_dispatcher") {  // libxdp's multi-program dispatcher
        XdpMultiprogPtr mp(xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex)));
        if (mp && !libxdp_get_error(mp.get()) && !xdp_multiprog__is_legacy(mp.get())) {
            st.multiprog = true;
            uint32_t pos = 0;
            for (auto* p = xdp_multiprog__next_prog(nullptr, mp.get()); p;
                 p = xdp_multiprog__next_prog(p, mp.get())) {
                pos++;
                std::string tag;
                const unsigned char* t = xdp_program__tag(p);
                for (int i = 0; t && i < 8; i++) tag += fmt::format("{:02x}", t[i]);
                uint32_t pid = xdp_program__id(p);
                bool entry = false;
                if (entry_map && !st.entry_id)
                    if (auto fd = prog_fd_by_id(pid))
                        if (auto info = prog_info(fd->get()))
                            entry = std::find(info->map_ids.begin(), info->map_ids.end(), entry_map) !=
                                    info->map_ids.end();
                if (entry || (!st.ours && same_prog(pid, xdp_program__name(p), tag, ours))) {
                    st.ours = true;
                    if (entry) st.entry_id = pid;
                    st.priority = xdp_program__run_prio(p);
                    st.position = pos;
                    st.chain_call = chain_call_of(p);
                } else {
                    st.others.push_back({xdp_program__name(p), pid, xdp_program__run_prio(p), chain_call_of(p)});
                }
            }
            st.chain = pos;
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
        return worded(fail(what, "the driver has no native XDP support", "", err), Reason::try_skb);
    if (err == EOPNOTSUPP || (err == EINVAL && mode == AttachMode::hw))
        return worded(fail(what, "this mode is not supported by the device", "", err), Reason::try_skb);
    if (err == ERANGE || err == E2BIG)
        return fail(what, "the MTU is too large for XDP on this device", "lower the MTU", err);
    if (err == EEXIST || err == EBUSY)
        return fail(what, "another XDP program is attached in another mode",
                    "detach it first ('ip link set dev " + ifname + " xdp off')", err);
    return fail_errno(what, err);
}

std::string alone_reason();

// The program in slot 0 of a tcd entry shim's one-slot prog array
// (mp_entry), when prog is such a shim (0 else).
uint32_t behind_entry(const ProgInfo& prog) {
    if (prog.name != TCD_PROG_ENTRY || prog.map_ids.size() != 1) return 0;
    UniqueFd m(bpf_map_get_fd_by_id(prog.map_ids[0]));
    if (!m) return 0;
    bpf_map_info mi{};
    uint32_t len = sizeof mi;
    if (bpf_obj_get_info_by_fd(m.get(), &mi, &len) != 0 || mi.type != BPF_MAP_TYPE_PROG_ARRAY || mi.max_entries != 1)
        return 0;
    uint32_t k = 0, id = 0;
    return bpf_map_lookup_elem(m.get(), &k, &id) == 0 ? id : 0;
}

// The tcd instance (its pin dir) whose dispatcher prog_id is, or whose
// dispatcher an entry shim prog_id runs: the one whose jump table it uses.
// Instance dirs are found on bpffs (pins only). *through: the dispatcher's
// name and id with the shim's, when prog_id is an entry shim.
std::optional<std::string> tcd_instance_running(uint32_t prog_id, const std::string& self,
                                                std::string* through = nullptr) {
    auto fd = prog_fd_by_id(prog_id);
    if (!fd) return std::nullopt;
    auto info = prog_info(fd->get());
    if (!info) return std::nullopt;
    if (uint32_t d = behind_entry(*info)) {
        fd = prog_fd_by_id(d);
        if (!fd) return std::nullopt;
        info = prog_info(fd->get());
        if (!info) return std::nullopt;
        if (through) *through = fmt::format("{} (id {}) through {} (id {})", info->name, d, TCD_PROG_ENTRY, prog_id);
    }
    for (const auto& [dir, jt] : tree::instance_jts())
        if (dir != self && std::find(info->map_ids.begin(), info->map_ids.end(), jt) != info->map_ids.end())
            return dir;
    return std::nullopt;
}

// Another program is on the interface, found before the attach or when the
// kernel refused it because one came first (EEXIST, EBUSY: another command
// attached between the query and the attach). Another tcd instance is named,
// with a hint that leaves it running; another tool's program can be replaced.
tl::unexpected<Error> occupied(const Instance& in, const std::string& ifname, const XdpState& st,
                               const std::string& why_alone, bool alone_asked) {
    std::string who = fmt::format("{} (id {})", st.prog_name, st.prog_id);
    if (auto dir = tcd_instance_running(st.prog_id, in.paths().dir, &who))
        return worded(fail("interface " + ifname, "the tcd instance " + *dir + " runs there: " + who),
                      Reason::other_instance_runs, {*dir});
    auto e = fail("interface " + ifname, "another XDP program runs there: " + who);
    if (st.multiprog && alone_asked) return worded(std::move(e), Reason::force_replaces_asked_alone);
    return worded(std::move(e), Reason::force_replaces,
                  st.multiprog ? std::vector<std::string>{why_alone} : std::vector<std::string>{});
}

Attachment where_of(const Place& at) { return attachment_at(at, AttachMode::auto_mode); }

Result<UniqueFd> load_alone_entry(int dispatcher_fd, int entry_map);

// The dispatcher itself at the hook (attached by ip, or by an older tcd)
// replaced by tcd's entry shim with the new dispatcher in its slot: this
// swap waits for a grace period, as replacing the dispatcher would, and the
// next ones are slot updates. A shim of this instance at the hook already
// (this swap rolled back, or a swap killed after its attach): the slot
// only. nullopt where the kernel refuses the shim or the dispatcher into
// mp_entry (then the dispatcher is replaced at the hook), and in hw mode.
std::optional<Result<>> move_behind_entry(const Attachment& a, int new_fd, int old_fd) {
    if (a.mode == AttachMode::hw || a.entry_pin.empty()) return std::nullopt;
    UniqueFd arr;
    if (bpffs::exists(a.entry_pin)) {
        auto fd = bpffs::get(a.entry_pin);
        if (!fd) return std::nullopt;
        arr = std::move(*fd);
    } else {
        arr = UniqueFd(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, TCD_MAP_MP_ENTRY, 4, 4, 1, nullptr));
        if (!arr || !bpffs::pin(arr.get(), a.entry_pin)) return std::nullopt;  // pinned before it is written
    }
    uint32_t at_hook = 0;
    {
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        if (bpf_xdp_query(static_cast<int>(a.ifindex), 0, &q) == 0) at_hook = q.prog_id;
    }
    bool shim_there = false;
    if (at_hook && at_hook != static_cast<uint32_t>(-1))
        if (auto fd = prog_fd_by_id(at_hook))
            if (auto info = prog_info(fd->get()))
                shim_there = std::find(info->map_ids.begin(), info->map_ids.end(), map_id(arr.get())) !=
                             info->map_ids.end();
    uint32_t k = 0;
    if (bpf_map_update_elem(arr.get(), &k, &new_fd, BPF_ANY) != 0) {
        if (shim_there) return fail_errno("replace the dispatcher in " + a.entry_pin, errno);
        return std::nullopt;
    }
    if (shim_there) return Result<>{};
    auto shim = load_alone_entry(new_fd, arr.get());
    if (!shim) return std::nullopt;
    crash_point("load");  // the new dispatcher in the slot, the old one still at the hook
    LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd);
    if (bpf_xdp_attach(static_cast<int>(a.ifindex), shim->get(), mode_flags(a.mode) | XDP_FLAGS_REPLACE, &o) != 0)
        return Result<>{fail_errno("replace the dispatcher on " + a.ifname + " by tcd's entry", errno)};
    return Result<>{};
}

class XdpAttacher final : public HookAttacher {
public:
    std::optional<Attachment> find(const Instance& in, const Place& at, uint32_t prog_id) const override {
        ProgInfo who = in.dispatcher();
        if (prog_id != who.id) {
            who = ProgInfo{};
            who.id = prog_id;
        }
        XdpState st = query(at.ifindex, who, entry_map_id(in));
        if (!st.ours) return std::nullopt;
        // By id only for another program than the dispatcher (a staged one):
        // at the hook, or in the entry shim's slot.
        if (prog_id != in.dispatcher().id) {
            bool runs = st.entry_id ? entry_target(in.paths().mp_entry()) == prog_id : st.prog_id == prog_id;
            if (!runs) return std::nullopt;
        }
        Attachment a = where_of(at);
        a.mode = st.mode;
        a.multiprog = st.multiprog;
        if (st.multiprog) {
            a.priority = st.priority;
            a.position = st.position;
            a.chain = st.chain;
            a.chain_call = st.chain_call;
            a.others = st.others;
        } else {
            a.alone_reason = alone_reason();
        }
        a.entry_id = st.entry_id;
        a.entry_pin = in.paths().mp_entry();  // a dispatcher at the hook moves behind it at its next swap
        return a;
    }

    Result<AttachResult> attach(const Instance& in, const Place& at, const AttachRequest& opt) const override;

    Result<> detach(const Instance& in, const Attachment& a) const override {
        if (a.entry_id && !a.multiprog) {
            // tcd's entry shim alone at the hook: exactly that program off.
            auto entry = prog_fd_by_id(a.entry_id);
            if (!entry) return propagate(entry, "detach " + a.ifname);
            crash_point("detach");
            LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = entry->get());
            if (bpf_xdp_detach(static_cast<int>(a.ifindex), mode_flags(a.mode) | XDP_FLAGS_REPLACE, &o) != 0)
                return fail_errno("detach " + a.ifname, errno);
            return {};
        }
        if (a.entry_id) {
            // Only tcd's entry: libxdp builds its dispatcher again without it
            // (and takes the dispatcher away when it was the last program).
            XdpProgramPtr entry(xdp_program__from_id(a.entry_id));
            if (long err = libxdp_get_error(entry.get())) {
                entry.release();
                return fail_errno("detach " + a.ifname, static_cast<int>(-err));
            }
            crash_point("detach");
            // In the dispatcher's own mode: libxdp re-attaches its new
            // dispatcher with the mode given (unspec would mean native).
            if (int err = xdp_program__detach(entry.get(), static_cast<int>(a.ifindex), to_libxdp(a.mode), 0))
                return fail_errno("detach " + a.ifname + " from libxdp's dispatcher", -err);
            return {};
        }
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
        if (a.entry_id) {
            // The entry shim tail-calls slot 0: one atomic update, no gap.
            auto fd = bpffs::get(a.entry_pin);
            if (!fd) return propagate(fd);
            uint32_t k = 0;
            if (bpf_map_update_elem(fd->get(), &k, &new_fd, BPF_ANY) != 0)
                return fail_errno("replace the dispatcher in " + a.entry_pin, errno);
            return {};
        }
        if (a.multiprog)
            return fail("replace the dispatcher on " + a.ifname, "it runs inside libxdp's multi-program dispatcher",
                        "detach it, reload, attach again");
        if (auto moved = move_behind_entry(a, new_fd, old_fd)) return *moved;
        LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd);
        if (bpf_xdp_attach(static_cast<int>(a.ifindex), new_fd, mode_flags(a.mode) | XDP_FLAGS_REPLACE, &o) != 0)
            return fail_errno("replace the dispatcher on " + a.ifname, errno);
        return {};
    }
};

// Why tcd would attach alone ("" when libxdp's dispatcher can take it): the
// kernel refuses freplace (lockdown), libxdp's dispatcher cannot take tcd's
// entry on this kernel (probe::Feature::libxdp_entry), or a probe could not
// run.
std::string alone_reason() {
    auto fr = probe::has(probe::Feature::freplace);
    if (!fr) return "the freplace probe could not run: " + fr.error().message();
    if (!*fr) {
        std::string why = probe::freplace_refusal();
        return why.empty() ? "this kernel refuses freplace programs, which libxdp's dispatcher needs" : why;
    }
    auto entry = probe::has(probe::Feature::libxdp_entry);
    if (!entry) return "the probe of libxdp's dispatcher could not run: " + entry.error().message();
    if (*entry) return "";
    std::string why = probe::libxdp_entry_refusal();
    return why.empty() ? "libxdp's dispatcher cannot take tcd's entry here" : why;
}

// The reason to attach alone that the request itself gives ("" = none, or
// the request's alone, which the caller reads itself).
std::string asked_alone(const AttachRequest& opt) {
    if (opt.mode == AttachMode::hw) return "libxdp has no multi-program dispatcher in hw mode";
    if (const char* e = secure_getenv("LIBXDP_SKIP_DISPATCHER"); e && std::string(e) == "1")
        return "LIBXDP_SKIP_DISPATCHER=1 is set";
    return "";
}

// The instance's mp_entry, pinned (made, and pinned before anything is
// written to it, if it is not there yet), with slot 0 = the dispatcher.
Result<UniqueFd> entry_array(const Instance& in, const std::string& ifname) {
    const std::string pin = in.paths().mp_entry();
    UniqueFd arr;
    if (bpffs::exists(pin)) {
        auto fd = bpffs::get(pin);
        if (!fd) return propagate(fd);
        arr = std::move(*fd);
    } else {
        arr = UniqueFd(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, TCD_MAP_MP_ENTRY, 4, 4, 1, nullptr));
        if (!arr) return fail_errno("create " + pin, errno);
        if (auto r = bpffs::pin(arr.get(), pin); !r) return propagate(r);
        crash_point("attach");
    }
    uint32_t k = 0;
    int dfd = in.dispatcher_fd();
    if (bpf_map_update_elem(arr.get(), &k, &dfd, BPF_ANY) != 0) {
        int err = errno;
        if (err == EINVAL)
            return worded(fail("attach " + ifname,
                               "the entry shim's prog array (maps/mp_entry) refuses the dispatcher: its program type, "
                               "expected attach type, frags flag or JIT status differ from the array's owner",
                               "", err),
                          Reason::reload_or_alone);
        return fail_errno("attach " + ifname + ": write " + pin, err);
    }
    return arr;
}

// Hands libxdp tcd's entry shim, unloaded, to load as a freplace program
// into a dispatcher of its own (kept programs there, or a new one). The
// entry's program id, once it runs.
Result<uint32_t> attach_entry(int entry_map, const Place& at, const AttachRequest& opt, AttachMode mode) {
    size_t sz = 0;
    const void* elf = tcd_entry__elf_bytes(&sz);
    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "tcd_entry");
    BpfObjectPtr obj(bpf_object__open_mem(elf, sz, &oo));  // outlives prog: libxdp does not own it
    if (!obj) return fail_errno("open the embedded entry shim", errno);
    bpf_map* m = bpf_object__find_map_by_name(obj.get(), TCD_MAP_MP_ENTRY);
    if (!m) return fail("open the embedded entry shim", "it has no map " TCD_MAP_MP_ENTRY);
    if (int err = bpf_map__reuse_fd(m, entry_map)) return fail_errno("reuse maps/" TCD_MAP_MP_ENTRY, -err);
    DECLARE_LIBXDP_OPTS(xdp_program_opts, xo, .obj = obj.get(), .prog_name = TCD_PROG_ENTRY);
    XdpProgramPtr prog(xdp_program__create(&xo));
    if (long err = libxdp_get_error(prog.get())) {
        prog.release();
        return fail_errno("open the entry shim for libxdp", static_cast<int>(-err));
    }
    if (int err = xdp_program__set_run_prio(prog.get(), opt.priority.value_or(kXdpDefaultPriority)))
        return fail_errno("set the run priority", -err);
    if (int err = xdp_program__attach(prog.get(), static_cast<int>(at.ifindex), to_libxdp(mode), 0))
        return explain_attach(err, opt.ifname, mode);
    return xdp_program__id(prog.get());
}

// tcd's entry shim loaded as a plain XDP program (to run alone at the
// hook), its mp_entry reused: loaded with the dispatcher's expected attach
// type, so the prog array (owned by the dispatcher written into it first)
// takes it. Fails where the kernel refuses either (the caller then attaches
// the dispatcher itself).
Result<UniqueFd> load_alone_entry(int dispatcher_fd, int entry_map) {
    size_t sz = 0;
    const void* elf = tcd_entry__elf_bytes(&sz);
    LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "tcd_entry");
    BpfObjectPtr obj(bpf_object__open_mem(elf, sz, &oo));
    if (!obj) return fail_errno("open the embedded entry shim", errno);
    bpf_map* m = bpf_object__find_map_by_name(obj.get(), TCD_MAP_MP_ENTRY);
    bpf_program* p = bpf_object__find_program_by_name(obj.get(), TCD_PROG_ENTRY);
    if (!m || !p) return fail("open the embedded entry shim", "it has no map " TCD_MAP_MP_ENTRY " or no program");
    if (int err = bpf_map__reuse_fd(m, entry_map)) return fail_errno("reuse maps/" TCD_MAP_MP_ENTRY, -err);
    bpf_program__set_expected_attach_type(
        p, static_cast<bpf_attach_type>(xdp_table_attach_type(dispatcher_fd).value_or(0)));
    if (int err = bpf_object__load(obj.get())) return fail_errno("load the entry shim", -err);
    UniqueFd fd(dup(bpf_program__fd(p)));
    if (!fd) return fail_errno("load the entry shim", errno);
    return fd;
}

Result<AttachResult> XdpAttacher::attach(const Instance& in, const Place& at, const AttachRequest& opt) const {
    AttachResult res;
    res.where = where_of(at);
    XdpState st = query(at.ifindex, in.dispatcher(), entry_map_id(in));
    const std::string asked = asked_alone(opt);
    std::string why_alone = opt.alone || !asked.empty() ? asked : alone_reason();
    bool multi = !opt.alone && why_alone.empty();
    if (multi && probe::has(probe::Feature::prog_array_attach_check).value_or(true)) {
        // The entry shim is a freplace program (expected attach type none);
        // its prog array takes only a dispatcher loaded the same way.
        auto at_type = xdp_table_attach_type(in.dispatcher_fd());
        if (at_type && *at_type != 0)
            return worded(fail("attach " + opt.ifname,
                               "this instance's dispatcher has expected attach type BPF_XDP (loaded by an older tcd), "
                               "and the prog array of tcd's entry into libxdp's dispatcher takes only none"),
                          Reason::reload_or_alone);
    }
    // A libxdp dispatcher is joined; anything else there is another tool's
    // program: refused, or replaced with --force.
    const bool join = multi && st.attached && st.multiprog;
    XdpProgramPtr foreign;
    enum xdp_attach_mode foreign_mode = XDP_MODE_UNSPEC;
    if (st.attached && !join) {
        std::string who = fmt::format("{} (id {})", st.prog_name, st.prog_id);
        if (!opt.force && st.multiprog && !opt.alone && asked.empty()) {
            // Programs in libxdp's dispatcher that tcd cannot join here (the
            // kernel or the installed libxdp): the cause, and no change.
            std::vector<std::string> others;
            for (const auto& o : st.others) others.push_back(o.name);
            const std::string names = fmt::format("{}", fmt::join(others, ", "));
            return worded(fail("attach " + opt.ifname,
                               fmt::format("tcd's entry cannot join libxdp's dispatcher there ({}): {}",
                                           names.empty() ? who : "running " + names, why_alone)),
                          Reason::detach_or_force);
        }
        if (!opt.force) return occupied(in, opt.ifname, st, why_alone, opt.alone);
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
    // Every failure from here puts back what was there (a replaced program)
    // and forgets the record.
    Rollback undo;
    undo.push([&] {
        if (foreign) xdp_program__attach(foreign.get(), static_cast<int>(at.ifindex), foreign_mode, 0);
    });

    // Recorded first (the mode is filled in after): a kill between the two
    // leaves a record that status checks against the kernel.
    if (auto r = record(in, res.where, at.netns_ino); !r) return propagate(r);
    undo.push([&] { forget(in, at.netns_ino, at.ifindex, Direction::none); });
    crash_point("attach");
    XdpProgramPtr prog;
    if (multi) {
        auto arr = entry_array(in, opt.ifname);
        if (!arr) return propagate(arr);
        // Joining: in the dispatcher's mode unless one is asked for (libxdp
        // replaces its dispatcher with the mode given; unspec means native).
        AttachMode mode = join && opt.mode == AttachMode::auto_mode ? st.mode : opt.mode;
        auto id = attach_entry(arr->get(), at, opt, mode);
        if (!id) {
            undo.run();  // as it was, before asking who is there
            if (id.error().err == EEXIST || id.error().err == EBUSY) {
                XdpState now = query(at.ifindex, in.dispatcher(), entry_map_id(in));
                if (now.attached && !now.ours && !now.multiprog) return occupied(in, opt.ifname, now, why_alone, opt.alone);
            }
            return propagate(id);
        }
    } else {
        // Alone: tcd's entry shim at the hook, the dispatcher in its slot,
        // so a new dispatcher is one prog-array update and the program at
        // the hook is never replaced (which waits for an RCU grace period).
        // In hw mode (offloaded programs cannot tail-call host ones), or
        // where the kernel refuses the shim, the dispatcher itself.
        UniqueFd entry;
        if (opt.mode != AttachMode::hw)
            if (auto arr = entry_array(in, opt.ifname))
                if (auto e = load_alone_entry(in.dispatcher_fd(), arr->get())) entry = std::move(*e);
        int err = 0;
        if (entry) {
            LIBBPF_OPTS(bpf_xdp_attach_opts, o);
            err = bpf_xdp_attach(static_cast<int>(at.ifindex), entry.get(),
                                 mode_flags(opt.mode) | XDP_FLAGS_UPDATE_IF_NOEXIST, &o);
        } else {
            prog.reset(xdp_program__from_fd(in.dispatcher_fd()));
            if (long e = libxdp_get_error(prog.get())) {
                prog.release();
                return fail_errno("attach " + opt.ifname, static_cast<int>(-e));
            }
            // libxdp would try (and fail) to link the loaded dispatcher into its own.
            err = xdp_program__attach(prog.get(), static_cast<int>(at.ifindex), to_libxdp(opt.mode), 0);
        }
        if (err) {
            undo.run();  // as it was, before asking who is there
            if (err == -EEXIST || err == -EBUSY) {
                // Another attach came first: the same answer as when it is found above.
                XdpState now = query(at.ifindex, in.dispatcher(), entry_map_id(in));
                if (now.attached && !now.ours) return occupied(in, opt.ifname, now, why_alone, opt.alone);
            }
            return explain_attach(err, opt.ifname, opt.mode);
        }
    }
    crash_point("attach");
    XdpState after = query(at.ifindex, in.dispatcher(), entry_map_id(in));
    if (auto a = find(in, at, in.dispatcher().id)) res.where = *a;
    res.where.mode = after.mode;
    res.where.multiprog = after.multiprog;
    if (!multi) {
        res.where.alone_reason = why_alone;
        res.where.alone_asked = opt.alone;
    }
    res.changed = true;
    if (multi && !after.entry_id) {
        // libxdp fell back to running the entry alone (its own compatibility
        // check failed): take it off, say so.
        if (XdpProgramPtr e{xdp_program__from_id(after.prog_id)}; e && !libxdp_get_error(e.get()))
            xdp_program__detach(e.get(), static_cast<int>(at.ifindex), XDP_MODE_UNSPEC, 0);
        else
            e.release();
        return worded(fail("attach " + opt.ifname, "libxdp did not link tcd's entry into its dispatcher"),
                      Reason::verbose_or_alone);
    }
    undo.push([&] {
        if (prog) xdp_program__detach(prog.get(), static_cast<int>(at.ifindex), XDP_MODE_UNSPEC, 0);
        else if (res.where.entry_id) (void)detach(in, res.where);
    });
    if (auto r = record(in, res.where, at.netns_ino); !r) return propagate(r);
    undo.commit();
    return res;
}

}  // namespace

const HookAttacher& xdp_attacher() {
    static const XdpAttacher a;
    return a;
}

}  // namespace tcd
