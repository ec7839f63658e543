#include "core/specialise.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/crashpoint.h"
#include "core/lifecycle.h"
#include "core/phases.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

constexpr uint32_t kHot[] = {6, 17, 1, 58};  // tcp, udp, icmp, icmpv6

// Ports with a counter slot that nothing is wired at any more (a map del, or
// one cut short) give it back.
void release_unwired_slots(const Instance& in) {
    if (in.kind().key != KeyKind::port || in.port_slot_fd() < 0) return;
    auto slots = slotted_ports(in);
    if (!slots) return;
    for (const auto& [port, slot] : *slots) {
        auto id = wired_prog_id(in, port);
        if (!id || *id) continue;
        (void)write_port_slot(in, port, 0);
    }
}

}  // namespace

std::vector<DirectKey> default_direct(KeyKind kind) { return choose_direct(kind, {}); }

std::vector<DirectKey> choose_direct(KeyKind kind, const std::vector<WiredEntry>& wiring) {
    std::vector<DirectKey> out;
    auto has = [&](uint32_t k) { return std::any_of(out.begin(), out.end(), [k](auto& d) { return d.key == k; }); };
    auto add = [&](uint32_t k, uint32_t slot) {
        if (out.size() < TCD_DIRECT_MAX && !has(k)) out.push_back({k, slot});
    };
    if (kind == KeyKind::proto) {
        std::set<uint32_t> wired;
        for (const auto& w : wiring) wired.insert(w.key);
        for (uint32_t k : kHot)
            if (wired.count(k)) add(k, k);
        for (uint32_t k : wired) add(k, k);
        for (uint32_t k : kHot) add(k, k);
    } else {
        for (const auto& w : wiring)
            if (w.slot) add(w.key, w.slot);
    }
    std::sort(out.begin(), out.end());
    return out;
}

Result<std::vector<DirectKey>> wanted_direct(const Instance& in) {
    auto w = list_wiring(in, in.kind().key == KeyKind::port);
    if (!w) return propagate(w);
    return choose_direct(in.kind().key, *w);
}

Result<Respecialised> respecialise(const Instance& in, bool release_slots) {
    Respecialised res;
    phases::Timer timer;
    auto want = wanted_direct(in);
    if (!want) return propagate(want);
    res.after = *want;
    auto live = read_direct_keys(in.dispatcher());
    if (live) res.before = *live;
    timer.mark("read the wiring");
    if (!live || *live != *want) {
        LoadOptions o;
        o.miss = in.miss_action();
        o.force = true;
        o.kind = in.kind();
        o.upgrade_builtins = false;
        o.direct = *want;
        o.relock = false;  // the wiring has changed: the parents' locks are held (wire_keys, unwire_keys)
        auto r = load(in.paths().dir, o);
        if (!r) return propagate(r);
        res.swapped = true;
        crash_point("map");
        timer = phases::Timer();
    }
    if (release_slots) release_unwired_slots(in);
    timer.mark("release slots");
    return res;
}

}  // namespace tcd
