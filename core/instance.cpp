#include "core/instance.h"

#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/bpffs.h"
#include "core/reasons.h"
#include "tcd/shared.h"
#include "tcd_mport.skel.h"
#include "tcd_mproto.skel.h"
#include "tcd_mtcport.skel.h"
#include "tcd_mtcproto.skel.h"
#include "tcd_port.skel.h"
#include "tcd_proto.skel.h"
#include "tcd_tcport.skel.h"
#include "tcd_tcproto.skel.h"

namespace tcd {
namespace {

// Every build shares the source, so one layout serves for .rodata.
using Rodata = tcd_proto::tcd_proto__rodata;

const char* object_name(Kind k) {
    if (k.hook == Hook::tc) return k.key == KeyKind::port ? "tcd_tcport" : "tcd_tcproto";
    return k.key == KeyKind::port ? "tcd_port" : "tcd_proto";
}

bool ends_with(const std::string& s, const char* suffix) {
    size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

const std::vector<std::string>& builtin_handlers() {
    static const std::vector<std::string> names = {"tcp_handler", "udp_handler", "pass", "drop"};
    return names;
}

MissAction default_miss_action(Hook h) { return h == Hook::tc ? MissAction::next : MissAction::pass; }
Result<MissAction> parse_miss_action(const std::string& text, Hook h) {
    auto a = from_name<MissAction>(text);
    if (!a) return about(usage_error("", "not " + or_list(names_of<MissAction>())), Flag::miss_action, text);
    if (auto r = miss_action_fits(*a, h); !r) return propagate(r);
    return *a;
}
Result<> miss_action_fits(MissAction a, Hook h) {
    if (a == MissAction::next && h != Hook::tc)
        return about(usage_error("", "is for tc instances (the next tcx program); XDP has pass and drop"), Flag::miss_action,
                     "next");
    return {};
}
uint32_t miss_action_verdict(MissAction a, Hook h) {
    if (a == MissAction::drop) return verdict_drop(h);
    if (a == MissAction::next && h == Hook::tc) return static_cast<uint32_t>(TC_ACT_UNSPEC);
    return verdict_pass(h);
}
uint32_t undispatched_verdict(MissAction a, Hook h) {
    return a == MissAction::next ? miss_action_verdict(a, h) : verdict_pass(h);
}

std::string_view embedded_elf(Kind k, bool monitoring) {
    size_t sz = 0;
    const void* p = nullptr;
    if (monitoring && k.hook == Hook::tc)
        p = k.key == KeyKind::port ? tcd_mtcport__elf_bytes(&sz) : tcd_mtcproto__elf_bytes(&sz);
    else if (monitoring)
        p = k.key == KeyKind::port ? tcd_mport__elf_bytes(&sz) : tcd_mproto__elf_bytes(&sz);
    else if (k.hook == Hook::tc)
        p = k.key == KeyKind::port ? tcd_tcport__elf_bytes(&sz) : tcd_tcproto__elf_bytes(&sz);
    else
        p = k.key == KeyKind::port ? tcd_port__elf_bytes(&sz) : tcd_proto__elf_bytes(&sz);
    return {static_cast<const char*>(p), sz};
}

Result<DispatcherObject> DispatcherObject::open(Kind kind, bool monitoring) {
    DispatcherObject d;
    d.kind_ = kind;
    std::string_view elf = embedded_elf(kind, monitoring);
    LIBBPF_OPTS(bpf_object_open_opts, o, .object_name = object_name(kind));
    d.obj_.reset(bpf_object__open_mem(elf.data(), elf.size(), &o));
    if (!d.obj_) return fail_errno("open the embedded dispatcher", errno);
    // Expected attach type none: what the prog array of tcd's entry into
    // libxdp's dispatcher takes (docs/datapath.md). TCD_TEST_OLD_XDP_ATTACH=1
    // loads BPF_XDP instead, as tcd did before multi-program support, so
    // the tests can make the instance an older tcd left behind.
    const char* old = std::getenv("TCD_TEST_OLD_XDP_ATTACH");
    d.set_xdp_attach_type(old && std::strcmp(old, "1") == 0 ? uint32_t(BPF_XDP) : 0u);
    return d;
}

bpf_program* DispatcherObject::dispatcher() const { return program(dispatcher_name(kind_.hook)); }

bpf_program* DispatcherObject::program(const std::string& name) const {
    return bpf_object__find_program_by_name(obj_.get(), name.c_str());
}

bpf_map* DispatcherObject::map(const std::string& name) const {
    return bpf_object__find_map_by_name(obj_.get(), name.c_str());
}

void DispatcherObject::configure(MissAction miss, bool trace_mode) {
    bpf_map* m;
    bpf_object__for_each_map(m, obj_.get()) {
        if (!ends_with(bpf_map__name(m), ".rodata")) continue;
        size_t size = 0;
        auto* ro = static_cast<char*>(const_cast<void*>(bpf_map__initial_value(m, &size)));
        if (!ro || size < offsetof(Rodata, tcd_trace_mode) + 1) continue;
        uint32_t verdict = miss_action_verdict(miss, kind_.hook);
        std::memcpy(ro + offsetof(Rodata, tcd_miss_action), &verdict, sizeof verdict);
        ro[offsetof(Rodata, tcd_trace_mode)] = trace_mode ? 1 : 0;
    }
}

Result<> DispatcherObject::monitor(const MonitorBuild& mb) {
    bpf_map* m;
    bpf_object__for_each_map(m, obj_.get()) {
        if (!ends_with(bpf_map__name(m), ".rodata")) continue;
        size_t size = 0;
        auto* ro = static_cast<char*>(const_cast<void*>(bpf_map__initial_value(m, &size)));
        if (!ro || size < sizeof(Rodata)) continue;
        auto* r = reinterpret_cast<Rodata*>(ro);
        r->tcd_monitor = 1;
        r->tcd_mon_misses = mb.misses ? 1 : 0;
        r->tcd_mon_level = mb.level;
        r->tcd_mon_inst = mb.inst;
        r->tcd_mon_sample = mb.sample ? mb.sample : 1;
        r->tcd_mon_snaplen = std::min<uint32_t>(mb.snaplen, TCD_MON_SNAP_MAX);
        r->tcd_mon_ifindex = mb.ifindex;
        r->tcd_mon_gap_ns = mb.gap_ns;
        r->tcd_mon_burst_ns = mb.burst_ns;
        size_t n = std::min<size_t>(mb.keys.size(), TCD_MON_KEYS);
        r->tcd_mon_nkeys = static_cast<uint32_t>(n);
        for (size_t i = 0; i < n; i++) r->tcd_mon_keys[i] = mb.keys[i];
    }
    for (auto [name, fd] : {std::pair{TCD_MAP_MON_EV, mb.ev_fd}, std::pair{TCD_MAP_MON_CPU, mb.cpu_fd}}) {
        if (fd < 0) continue;
        if (int err = bpf_map__reuse_fd(map(name), fd)) return fail_errno(std::string("reuse the monitor's map ") + name, -err);
    }
    return {};
}

void DispatcherObject::specialise(std::vector<DirectKey> keys) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end(), [](auto& a, auto& b) { return a.key == b.key; }), keys.end());
    if (keys.size() > TCD_DIRECT_MAX) keys.resize(TCD_DIRECT_MAX);
    bpf_map* m;
    bpf_object__for_each_map(m, obj_.get()) {
        if (!ends_with(bpf_map__name(m), ".rodata")) continue;
        size_t size = 0;
        auto* ro = static_cast<char*>(const_cast<void*>(bpf_map__initial_value(m, &size)));
        if (!ro || size < offsetof(Rodata, tcd_direct_slot) + sizeof(Rodata::tcd_direct_slot)) continue;
        for (uint32_t i = 0; i < TCD_DIRECT_MAX; i++) {
            uint32_t k = i < keys.size() ? keys[i].key : TCD_DIRECT_NONE;
            uint32_t s = i < keys.size() ? keys[i].slot : 0;
            std::memcpy(ro + offsetof(Rodata, tcd_direct_key) + i * sizeof k, &k, sizeof k);
            std::memcpy(ro + offsetof(Rodata, tcd_direct_slot) + i * sizeof s, &s, sizeof s);
        }
    }
}

void DispatcherObject::set_xdp_attach_type(uint32_t attach_type) {
    if (kind_.hook != Hook::xdp) return;
    bpf_program* p;
    bpf_object__for_each_program(p, obj_.get()) {
        if (bpf_program__type(p) == BPF_PROG_TYPE_XDP)
            bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(attach_type));
    }
}

Result<> DispatcherObject::load() {
    if (int err = bpf_object__load(obj_.get())) return fail_errno("load the dispatcher", -err);
    return {};
}

std::optional<Kind> pinned_kind(const std::string& dir) {
    Paths p{dir};
    Kind k;
    if (bpffs::exists(p.dispatcher(Hook::xdp))) k.hook = Hook::xdp;
    else if (bpffs::exists(p.dispatcher(Hook::tc))) k.hook = Hook::tc;
    else return std::nullopt;
    if (auto fd = bpffs::get(p.jt())) {
        bpf_map_info info{};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) == 0 && info.max_entries == TCD_PORT_JT_ENTRIES)
            k.key = KeyKind::port;
    }
    return k;
}

bool Instance::is_loaded(const std::string& dir) { return pinned_kind(dir).has_value(); }

Result<Instance> Instance::open_for_teardown(const std::string& dir) {
    Instance in;
    in.paths_ = Paths{dir};
    auto kind = pinned_kind(dir);
    if (!kind) return worded(fail("instance " + dir, "not loaded"), Reason::not_loaded);
    in.kind_ = *kind;
    auto fd = bpffs::get(in.dispatcher_path());
    if (!fd) return propagate(fd);
    in.dispatcher_ = std::move(*fd);
    if (fd_kind(in.dispatcher_.get()) != ObjKind::prog)
        return fail("instance " + dir, in.dispatcher_path() + " is not a program", "look at it with bpftool");
    auto info = prog_info(in.dispatcher_.get());
    if (!info) return propagate(info, in.dispatcher_path());
    in.info_ = std::move(*info);
    for (auto [path, out] : {std::pair{in.paths_.jt(), &in.jt_}, std::pair{in.paths_.stats(), &in.stats_},
                             std::pair{in.paths_.port_slot(), &in.port_slot_}, std::pair{in.paths_.attach(), &in.attach_},
                             std::pair{in.paths_.slot_port(), &in.slot_port_}})
        if (auto m = bpffs::get(path)) *out = std::move(*m);
    return in;
}

Result<Instance> Instance::open(const std::string& dir) {
    Instance in;
    in.paths_ = Paths{dir};
    auto kind = pinned_kind(dir);
    if (!kind) return worded(fail("instance " + dir, "not loaded"), Reason::not_loaded);
    in.kind_ = *kind;
    auto want = [&](const std::string& path, UniqueFd& out) -> Result<> {
        auto fd = bpffs::get(path);
        if (!fd) {
            if (fd.error().err == ENOENT)
                return worded(fail("instance " + dir, path + " is missing (half-made instance)"), Reason::reload);
            return propagate(fd);
        }
        out = std::move(*fd);
        return {};
    };
    if (auto r = want(in.dispatcher_path(), in.dispatcher_); !r) return propagate(r);
    if (fd_kind(in.dispatcher_.get()) != ObjKind::prog)
        return fail("instance " + dir, in.dispatcher_path() + " is not a program", "look at it with bpftool");
    if (auto r = want(in.paths_.jt(), in.jt_); !r) return propagate(r);
    if (auto r = want(in.paths_.stats(), in.stats_); !r) return propagate(r);
    if (in.kind_.key == KeyKind::port) {
        if (auto r = want(in.paths_.port_slot(), in.port_slot_); !r) return propagate(r);
        if (auto fd = bpffs::get(in.paths_.slot_port())) in.slot_port_ = std::move(*fd);  // older instances: none
    }
    if (auto fd = bpffs::get(in.paths_.attach())) in.attach_ = std::move(*fd);
    auto info = prog_info(in.dispatcher_.get());
    if (!info) return propagate(info, in.dispatcher_path());
    in.info_ = std::move(*info);
    if (auto miss = read_miss_action(in.info_, in.kind_.hook)) in.miss_ = *miss;
    return in;
}

namespace {

// Each map a loaded dispatcher uses, with its info, handed to on (those the
// kernel will not open or describe are passed over); on returns true to stop.
template <typename On>
void for_each_map(const ProgInfo& dispatcher, On&& on) {
    for (uint32_t id : dispatcher.map_ids) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        if (!fd) continue;
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        if (on(fd, info)) return;
    }
}

// The value of a loaded dispatcher's .rodata map, at least `need` bytes.
std::optional<std::vector<char>> read_rodata(const ProgInfo& dispatcher, size_t need) {
    std::optional<std::vector<char>> value;
    for_each_map(dispatcher, [&](UniqueFd& fd, const bpf_map_info& info) {
        if (!ends_with(info.name, ".rodata") || info.value_size < need) return false;
        std::vector<char> v(info.value_size);
        uint32_t zero = 0;
        if (bpf_map_lookup_elem(fd.get(), &zero, v.data()) != 0) return false;
        value = std::move(v);
        return true;
    });
    return value;
}

}  // namespace

Result<MissAction> read_miss_action(const ProgInfo& dispatcher, Hook hook) {
    constexpr size_t at = offsetof(Rodata, tcd_miss_action);
    auto value = read_rodata(dispatcher, at + sizeof(uint32_t));
    if (!value) return fail("dispatcher", "cannot read its miss action");
    uint32_t verdict = 0;
    std::memcpy(&verdict, value->data() + at, sizeof verdict);
    if (verdict == verdict_drop(hook)) return MissAction::drop;
    if (hook == Hook::tc && verdict == static_cast<uint32_t>(TC_ACT_UNSPEC)) return MissAction::next;
    return MissAction::pass;
}

Result<std::optional<MonitorBuild>> read_monitor_build(const ProgInfo& dispatcher, std::vector<UniqueFd>* fds) {
    auto value = read_rodata(dispatcher, sizeof(Rodata));
    if (!value) return std::optional<MonitorBuild>{};  // an older tcd's dispatcher: no monitoring build
    Rodata r;
    std::memcpy(&r, value->data(), sizeof r);
    if (!r.tcd_monitor) return std::optional<MonitorBuild>{};
    MonitorBuild mb;
    mb.misses = r.tcd_mon_misses;
    mb.level = r.tcd_mon_level;
    mb.inst = r.tcd_mon_inst;
    mb.sample = r.tcd_mon_sample;
    mb.snaplen = r.tcd_mon_snaplen;
    mb.ifindex = r.tcd_mon_ifindex;
    mb.gap_ns = r.tcd_mon_gap_ns;
    mb.burst_ns = r.tcd_mon_burst_ns;
    for (uint32_t i = 0; i < r.tcd_mon_nkeys && i < TCD_MON_KEYS; i++) mb.keys.push_back(r.tcd_mon_keys[i]);
    if (fds) {
        for_each_map(dispatcher, [&](UniqueFd& fd, const bpf_map_info& info) {
            if (std::strcmp(info.name, TCD_MAP_MON_EV) == 0) mb.ev_fd = fd.get();
            else if (std::strcmp(info.name, TCD_MAP_MON_CPU) == 0) mb.cpu_fd = fd.get();
            else return false;
            fds->push_back(std::move(fd));
            return false;
        });
        if (mb.ev_fd < 0 || mb.cpu_fd < 0) return fail("dispatcher", "its monitor maps are not found");
    }
    return std::optional<MonitorBuild>{std::move(mb)};
}

Result<std::vector<DirectKey>> read_direct_keys(const ProgInfo& dispatcher) {
    auto value = read_rodata(dispatcher, offsetof(Rodata, tcd_direct_slot) + sizeof(Rodata::tcd_direct_slot));
    if (!value) return fail("dispatcher", "cannot read its direct keys (a dispatcher of an older tcd?)");
    std::vector<DirectKey> out;
    for (uint32_t i = 0; i < TCD_DIRECT_MAX; i++) {
        DirectKey d;
        std::memcpy(&d.key, value->data() + offsetof(Rodata, tcd_direct_key) + i * 4, 4);
        std::memcpy(&d.slot, value->data() + offsetof(Rodata, tcd_direct_slot) + i * 4, 4);
        if (d.key != TCD_DIRECT_NONE) out.push_back(d);
    }
    return out;
}

std::vector<PinnedProg> pinned_programs(const std::string& dir) {
    std::vector<PinnedProg> out;
    for (const auto& name : bpffs::list_pins(dir)) {
        if (bpffs::is_temp_pin(name)) continue;
        auto fd = bpffs::get(dir + "/" + name);
        if (!fd || fd_kind(fd->get()) != ObjKind::prog) continue;
        auto info = prog_info(fd->get());
        if (!info) continue;
        out.push_back({name, std::move(*info)});
    }
    return out;
}

}  // namespace tcd
