#include "core/specialise.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include <fmt/format.h>

#include "core/crashpoint.h"
#include "core/lifecycle.h"
#include "core/lock.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

constexpr uint32_t kHot[] = {6, 17, 1, 58};  // tcp, udp, icmp, icmpv6

// Ports with a counter slot that nothing is wired at any more (a map del, or
// one cut short) give it back.
void release_unwired_slots(const Instance& in) {
    if (in.kind().key != KeyKind::port || in.port_slot_fd() < 0) return;
    auto slots = read_port_slots(in);
    if (!slots) return;
    for (uint32_t port = 0; port < slots->size(); port++) {
        if (!(*slots)[port]) continue;
        auto id = wired_prog_id(in, port);
        if (!id || *id) continue;
        uint32_t zero = 0;
        bpf_map_update_elem(in.port_slot_fd(), &port, &zero, BPF_ANY);
    }
}

// The locks a map set or del takes besides its own, before it changes
// anything: the instances the new handler enters (a child, whose unload
// checks for parents under its own lock) and this instance's parents (a
// respecialise repoints their keys). Lost and retaken in order, this
// instance's lock let others in: then it is opened again (`fresh`).
Result<LockSet> lock_related(const Instance& in, const std::vector<const HandlerSpec*>& specs,
                             std::optional<Instance>& fresh) {
    const std::string dir = in.paths().dir;
    bool relocked = false;
    auto locks = LockSet::acquire_stable(
        [&]() -> Result<std::vector<std::string>> {
            auto out = tree::parent_dirs(dir);
            if (!out) return propagate(out);
            for (const HandlerSpec* spec : specs)
                if (auto h = open_handler(*spec, dir); h) {  // a bad handler: set_handler says why
                    for (auto& c : tree::instances_used_by(h->info, dir, {h->instance})) out->push_back(c);
                    if (!h->instance.empty() && h->instance != InstanceLock::canonical_dir(dir))
                        out->push_back(h->instance);
                }
            return out;
        },
        true, &relocked);
    if (!locks) return propagate(locks, specs.empty() ? "map del" : "map set");
    if (relocked) {
        recover_interrupted(dir);
        auto f = Instance::open(dir);
        if (!f) return propagate(f);
        fresh = std::move(*f);
    }
    // Link records that no longer hold (a key unwired, a kill after it):
    // under this instance's lock, before anything changes.
    tree::prune(dir);
    return locks;
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
    auto want = wanted_direct(in);
    if (!want) return propagate(want);
    res.after = *want;
    auto live = read_direct_keys(in.dispatcher());
    if (live) res.before = *live;
    if (!live || *live != *want) {
        LoadOptions o;
        o.miss = in.miss_action();
        o.force = true;
        o.kind = in.kind();
        o.upgrade_builtins = false;
        o.direct = *want;
        o.relock = false;  // the wiring has changed: the parents' locks are held (set_wired, del_wired)
        auto r = load(in.paths().dir, o);
        if (!r) return propagate(r);
        res.swapped = true;
        crash_point("map");
    }
    if (release_slots) release_unwired_slots(in);
    return res;
}

namespace {

// A key written by set_handler back as it was: the old program, or nothing
// (and, on a port that had no slot before, no slot).
void put_back(const Instance& in, const SetResult& r) {
    if (!r.changed) return;
    uint32_t key = r.key;
    int err = -1;
    if (r.old)
        if (auto fd = prog_fd_by_id(r.old->prog_id)) {
            int f = fd->get();
            err = bpf_map_update_elem(in.jt_fd(), &key, &f, BPF_ANY);
        }
    if (err != 0) bpf_map_delete_elem(in.jt_fd(), &key);
    if (!r.old && in.kind().key == KeyKind::port) {
        uint32_t zero = 0;
        bpf_map_update_elem(in.port_slot_fd(), &key, &zero, BPF_ANY);
    }
}

}  // namespace

Result<std::vector<SetResult>> set_wired(const Instance& in0,
                                         const std::vector<std::pair<uint32_t, HandlerSpec>>& pairs) {
    std::set<uint32_t> seen;
    for (const auto& [key, spec] : pairs)
        if (!seen.insert(key).second)
            return fail("map set", fmt::format("key {} is given twice", key), "give each key once");
    std::vector<const HandlerSpec*> specs;
    for (const auto& p : pairs) specs.push_back(&p.second);
    std::optional<Instance> fresh;
    auto locks = lock_related(in0, specs, fresh);
    if (!locks) return propagate(locks);
    const Instance& in = fresh ? *fresh : in0;
    std::vector<SetResult> done;
    auto undo = [&] {
        for (auto it = done.rbegin(); it != done.rend(); ++it) put_back(in, *it);
    };
    SetBatch batch;  // a port instance's slots read once for every pair
    for (const auto& [key, spec] : pairs) {
        auto r = set_handler(in, key, spec, &batch);
        if (!r) {
            undo();
            return propagate(r);
        }
        done.push_back(std::move(*r));
        crash_point("map");
    }
    auto sp = respecialise(in, false);  // a set frees no slot
    if (!sp) {
        undo();
        return propagate(sp);
    }
    for (auto& r : done) {
        r.respecialised = sp->swapped;
        r.direct = std::any_of(sp->after.begin(), sp->after.end(), [k = r.key](auto& d) { return d.key == k; });
    }
    return done;
}

Result<SetResult> set_wired(const Instance& in, uint32_t key, const HandlerSpec& spec) {
    auto r = set_wired(in, std::vector<std::pair<uint32_t, HandlerSpec>>{{key, spec}});
    if (!r) return propagate(r);
    return std::move(r->front());
}

Result<DelResult> del_wired(const Instance& in0, const std::vector<uint32_t>& keys) {
    std::optional<Instance> fresh;
    auto locks = lock_related(in0, {}, fresh);
    if (!locks) return propagate(locks);
    const Instance& in = fresh ? *fresh : in0;
    auto r = del_keys(in, keys, false);
    if (!r) return r;
    crash_point("map");
    auto sp = respecialise(in);
    if (!sp) {
        for (const auto& e : r->removed)
            if (auto fd = prog_fd_by_id(e.prog_id)) {
                int f = fd->get();
                uint32_t k = e.key;
                bpf_map_update_elem(in.jt_fd(), &k, &f, BPF_ANY);
            }
        return propagate(sp);
    }
    r->respecialised = sp->swapped;
    return r;
}

}  // namespace tcd
