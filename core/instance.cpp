#include "core/instance.h"

#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/bpffs.h"
#include "tcd/shared.h"
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

const char* miss_action_name(MissAction a) {
    return a == MissAction::drop ? "drop" : a == MissAction::next ? "next" : "pass";
}
MissAction default_miss_action(Hook h) { return h == Hook::tc ? MissAction::next : MissAction::pass; }
Result<MissAction> parse_miss_action(const std::string& text, Hook h) {
    if (text == "pass") return MissAction::pass;
    if (text == "drop") return MissAction::drop;
    if (text == "next" && h == Hook::tc) return MissAction::next;
    if (text == "next")
        return usage_error("--miss-action next", "is for tc instances (the next tcx program); XDP has pass and drop");
    return usage_error("--miss-action " + text, "not pass, drop or next");
}
uint32_t miss_action_verdict(MissAction a, Hook h) {
    if (a == MissAction::drop) return verdict_drop(h);
    if (a == MissAction::next && h == Hook::tc) return static_cast<uint32_t>(TC_ACT_UNSPEC);
    return verdict_pass(h);
}
uint32_t undispatched_verdict(MissAction a, Hook h) {
    return a == MissAction::next ? miss_action_verdict(a, h) : verdict_pass(h);
}

std::string_view embedded_elf(Kind k) {
    size_t sz = 0;
    const void* p = nullptr;
    if (k.hook == Hook::tc)
        p = k.key == KeyKind::port ? tcd_tcport__elf_bytes(&sz) : tcd_tcproto__elf_bytes(&sz);
    else
        p = k.key == KeyKind::port ? tcd_port__elf_bytes(&sz) : tcd_proto__elf_bytes(&sz);
    return {static_cast<const char*>(p), sz};
}

Result<DispatcherObject> DispatcherObject::open(Kind kind) {
    DispatcherObject d;
    d.kind_ = kind;
    std::string_view elf = embedded_elf(kind);
    LIBBPF_OPTS(bpf_object_open_opts, o, .object_name = object_name(kind));
    d.obj_.reset(bpf_object__open_mem(elf.data(), elf.size(), &o));
    if (!d.obj_) return fail_errno("open the embedded dispatcher", errno);
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
    if (!kind) return fail("instance " + dir, "not loaded", "run 'tcd load' or 'tcd attach IFACE' first");
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
                             std::pair{in.paths_.port_slot(), &in.port_slot_}, std::pair{in.paths_.attach(), &in.attach_}})
        if (auto m = bpffs::get(path)) *out = std::move(*m);
    return in;
}

Result<Instance> Instance::open(const std::string& dir) {
    Instance in;
    in.paths_ = Paths{dir};
    auto kind = pinned_kind(dir);
    if (!kind) return fail("instance " + dir, "not loaded", "run 'tcd load' or 'tcd attach IFACE' first");
    in.kind_ = *kind;
    auto want = [&](const std::string& path, UniqueFd& out) -> Result<> {
        auto fd = bpffs::get(path);
        if (!fd) {
            if (fd.error().err == ENOENT)
                return fail("instance " + dir, path + " is missing (half-made instance)",
                            "run 'tcd unload' then 'tcd load'");
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
    if (in.kind_.key == KeyKind::port)
        if (auto r = want(in.paths_.port_slot(), in.port_slot_); !r) return propagate(r);
    if (auto fd = bpffs::get(in.paths_.attach())) in.attach_ = std::move(*fd);
    auto info = prog_info(in.dispatcher_.get());
    if (!info) return propagate(info, in.dispatcher_path());
    in.info_ = std::move(*info);
    if (auto miss = read_miss_action(in.info_, in.kind_.hook)) in.miss_ = *miss;
    return in;
}

Result<MissAction> read_miss_action(const ProgInfo& dispatcher, Hook hook) {
    for (uint32_t id : dispatcher.map_ids) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        if (!fd) continue;
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        if (!ends_with(info.name, ".rodata")) continue;
        constexpr size_t at = offsetof(Rodata, tcd_miss_action);
        if (info.value_size < at + sizeof(uint32_t)) continue;
        std::vector<char> value(info.value_size);
        uint32_t zero = 0;
        if (bpf_map_lookup_elem(fd.get(), &zero, value.data()) != 0) continue;
        uint32_t verdict = 0;
        std::memcpy(&verdict, value.data() + at, sizeof verdict);
        if (verdict == verdict_drop(hook)) return MissAction::drop;
        if (hook == Hook::tc && verdict == static_cast<uint32_t>(TC_ACT_UNSPEC)) return MissAction::next;
        return MissAction::pass;
    }
    return fail("dispatcher", "cannot read its miss action");
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
