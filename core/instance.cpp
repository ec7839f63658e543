#include "core/instance.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "core/bpffs.h"
#include "tcd_proto.skel.h"
#include "tcd/shared.h"

namespace tcd {

const std::vector<std::string>& builtin_handlers() {
    static const std::vector<std::string> names = {"tcp_handler", "udp_handler", "pass", "drop"};
    return names;
}

std::string Paths::dispatcher() const { return dir + "/" TCD_PROG_DISPATCH; }

const char* miss_action_name(MissAction a) { return a == MissAction::drop ? "drop" : "pass"; }
uint32_t miss_action_verdict(MissAction a) { return a == MissAction::drop ? XDP_DROP : XDP_PASS; }

void SkelDeleter::operator()(tcd_proto* s) const { tcd_proto__destroy(s); }

Result<SkelPtr> open_skeleton() {
    tcd_proto* skel = tcd_proto__open();
    if (!skel) return fail_errno("open the embedded dispatcher", errno);
    return SkelPtr(skel);
}

void set_skeleton_config(tcd_proto* skel, MissAction miss, bool trace_mode) {
    skel->rodata->tcd_miss_action = miss_action_verdict(miss);
    skel->rodata->tcd_trace_mode = trace_mode ? 1 : 0;
}

bool Instance::is_loaded(const std::string& dir) { return bpffs::exists(Paths{dir}.dispatcher()); }

Result<Instance> Instance::open(const std::string& dir) {
    Instance in;
    in.paths_ = Paths{dir};
    if (!is_loaded(dir))
        return fail("instance " + dir, "not loaded", "run 'tcd load' or 'tcd attach IFACE' first");
    auto want = [&](const std::string& path, UniqueFd& out) -> Result<> {
        auto fd = bpffs::get(path);
        if (!fd) {
            if (fd.error().err == ENOENT)
                return fail("instance " + dir, path + " is missing (half-made instance)",
                            "run 'tcd unload' then 'tcd load'");
            return tl::unexpected(fd.error());
        }
        out = std::move(*fd);
        return {};
    };
    if (auto r = want(in.paths_.dispatcher(), in.dispatcher_); !r) return tl::unexpected(r.error());
    if (auto r = want(in.paths_.jt(), in.jt_); !r) return tl::unexpected(r.error());
    if (auto r = want(in.paths_.stats(), in.stats_); !r) return tl::unexpected(r.error());
    if (auto fd = bpffs::get(in.paths_.attach())) in.attach_ = std::move(*fd);
    auto info = prog_info(in.dispatcher_.get());
    if (!info) return tl::unexpected(with_what(info.error(), in.paths_.dispatcher()));
    in.info_ = std::move(*info);
    auto miss = read_miss_action(in.info_);
    if (miss) in.miss_ = *miss;
    return in;
}

Result<MissAction> read_miss_action(const ProgInfo& dispatcher) {
    for (uint32_t id : dispatcher.map_ids) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        if (!fd) continue;
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        std::string name = info.name;
        if (name.size() < 7 || name.compare(name.size() - 7, 7, ".rodata") != 0) continue;
        constexpr size_t at = offsetof(tcd_proto::tcd_proto__rodata, tcd_miss_action);
        if (info.value_size < at + sizeof(uint32_t)) continue;
        std::vector<char> value(info.value_size);
        uint32_t zero = 0;
        if (bpf_map_lookup_elem(fd.get(), &zero, value.data()) != 0) continue;
        uint32_t verdict = 0;
        std::memcpy(&verdict, value.data() + at, sizeof verdict);
        return verdict == XDP_DROP ? MissAction::drop : MissAction::pass;
    }
    return fail("dispatcher", "cannot read its miss action");
}

std::vector<PinnedProg> pinned_programs(const std::string& dir) {
    std::vector<PinnedProg> out;
    for (const auto& name : bpffs::list_pins(dir)) {
        if (name.find("~tmp-") != std::string::npos) continue;
        auto fd = bpffs::get(dir + "/" + name);
        if (!fd || fd_kind(fd->get()) != ObjKind::prog) continue;
        auto info = prog_info(fd->get());
        if (!info) continue;
        out.push_back({name, std::move(*info)});
    }
    return out;
}

}  // namespace tcd
