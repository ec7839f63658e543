#include "core/wiring.h"

#include <bpf/bpf.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/lifecycle.h"
#include "core/lock.h"
#include "core/rollback.h"
#include "core/specialise.h"
#include "core/tree.h"

namespace tcd {
namespace {

// A map set of several pairs is all or nothing under a kill too
// (docs/datapath.md, "Several pairs under a kill"): before its first write it
// records each key's prior program id (0: not wired) and, on a port instance,
// whether the port had a counter slot, in the symlink PINDIR/undo/map-set;
// it removes the record once every key is written. The next command that
// takes the instance's lock finds a record left by a kill and puts the keys
// back.
std::string undo_dir(const std::string& dir) { return dir + "/undo"; }
std::string undo_path(const std::string& dir) { return undo_dir(dir) + "/map-set"; }
std::string undo_part(const std::string& dir, size_t i) { return fmt::format("{}/part-{}", undo_dir(dir), i); }

Result<> put_link(const std::string& path, const std::string& text) {
    return bpffs::put_symlink(path, text, "map set: record the prior wiring in " + path);
}

// The record: the entries in symlinks undo/part-0, part-1, ... (a symlink
// holds less than 4096 bytes), then undo/map-set naming how many parts.
// Only a complete record has map-set, and it is written before any key.
void remove_undo(const std::string& dir) {
    ::unlink(undo_path(dir).c_str());
    for (const auto& name : bpffs::list_pins(undo_dir(dir))) ::unlink((undo_dir(dir) + "/" + name).c_str());
    ::rmdir(undo_dir(dir).c_str());
}

Result<> write_undo(const Instance& in, const std::vector<uint32_t>& keys) {
    const std::string dir = in.paths().dir;
    remove_undo(dir);  // parts a kill left before their record was complete
    std::vector<std::string> parts(1);
    for (uint32_t key : keys) {
        auto id = wired_prog_id(in, key);
        if (!id) return propagate(id);
        uint32_t slot = 0;
        if (in.kind().key == KeyKind::port && in.port_slot_fd() >= 0)
            bpf_map_lookup_elem(in.port_slot_fd(), &key, &slot);
        if (parts.back().size() > 3000) parts.emplace_back();
        parts.back() += fmt::format("{}:{}:{};", key, id->value_or(0), slot ? 1 : 0);
    }
    if (::mkdir(undo_dir(dir).c_str(), 0700) != 0 && errno != EEXIST)
        return fail_errno("map set: record the prior wiring in " + undo_dir(dir), errno);
    for (size_t i = 0; i < parts.size(); i++)
        if (auto r = put_link(undo_part(dir, i), parts[i]); !r) return r;
    if (auto r = put_link(undo_path(dir), std::to_string(parts.size())); !r) return r;
    crash_point("map");
    return {};
}

// Puts back the keys of a map set that a kill cut short (its record), then
// removes the record; a kill in here leaves the record for the next command.
void roll_back_map_set(const Instance& in) {
    const std::string dir = in.paths().dir;
    auto link = [](const std::string& path) -> std::optional<std::string> {
        char buf[4096];
        ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
        if (n < 0) return std::nullopt;
        return std::string(buf, static_cast<size_t>(n));
    };
    auto count = link(undo_path(dir));
    if (!count) {
        remove_undo(dir);  // no record, or an incomplete one: no key was written
        return;
    }
    for (size_t i = 0; i < std::strtoul(count->c_str(), nullptr, 10); i++) {
        std::istringstream text(link(undo_part(dir, i)).value_or(""));
        for (std::string entry; std::getline(text, entry, ';');) {
            unsigned key = 0, id = 0, had_slot = 0;
            if (std::sscanf(entry.c_str(), "%u:%u:%u", &key, &id, &had_slot) != 3) continue;
            uint32_t k = key;
            int err = -1;
            if (id)
                if (auto fd = prog_fd_by_id(id)) {
                    int f = fd->get();
                    err = bpf_map_update_elem(in.jt_fd(), &k, &f, BPF_ANY);
                }
            if (err != 0) bpf_map_delete_elem(in.jt_fd(), &k);  // not wired before (or its program is gone)
            if (!had_slot && in.kind().key == KeyKind::port) (void)write_port_slot(in, k, 0);
            crash_point("undo");
        }
    }
    remove_undo(dir);
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
    // A map set of several pairs that a kill cut short: all back to before it.
    roll_back_map_set(fresh ? *fresh : in);
    // Link records that no longer hold (a key unwired, a kill after it):
    // under this instance's lock, before anything changes.
    tree::prune(dir);
    return locks;
}

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
    if (!r.old && in.kind().key == KeyKind::port) (void)write_port_slot(in, key, 0);
}

}  // namespace

Result<std::vector<SetResult>> wire_keys(const Instance& in0,
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
    // A failure puts every key written back, last first, then drops the record.
    Rollback undo;
    if (pairs.size() > 1) {  // one pair is one atomic update
        std::vector<uint32_t> keys;
        for (const auto& p : pairs) keys.push_back(p.first);
        if (auto r = write_undo(in, keys); !r) return propagate(r);
        undo.push([&] { remove_undo(in.paths().dir); });
    }
    undo.push([&] {
        for (auto it = done.rbegin(); it != done.rend(); ++it) put_back(in, *it);
    });
    SetBatch batch;  // a port instance's slots read once for every pair
    for (const auto& [key, spec] : pairs) {
        auto r = set_handler(in, key, spec, &batch);
        if (!r) return propagate(r);
        done.push_back(std::move(*r));
        crash_point("map");
    }
    // Every key written: a kill from here on leaves all of them (the next
    // map set or del respecialises the dispatcher if the kill came before).
    if (pairs.size() > 1) remove_undo(in.paths().dir);
    // Every pair rewires (or leaves) a key that is direct already (wired
    // before, a port keeping its slot): the wired keys (and the ports with a
    // slot) are the same, so the direct keys are; the respecialise, which
    // reads the wiring to choose them (256 lookups on a proto instance), is
    // skipped. A key wired but not direct (a kill before the respecialise)
    // is respecialised by any map set of it.
    Result<Respecialised> sp = Respecialised{};
    auto live = read_direct_keys(in.dispatcher());
    const bool same_direct = live && std::all_of(done.begin(), done.end(), [&](const SetResult& r) {
        return (!r.changed || r.old) && !r.new_slot &&
               std::any_of(live->begin(), live->end(), [&](auto& d) { return d.key == r.key; });
    });
    if (same_direct)
        sp->before = sp->after = *live;
    else
        sp = respecialise(in, false);  // a set frees no slot
    if (!sp) return propagate(sp);
    undo.commit();
    for (auto& r : done) {
        r.respecialised = sp->swapped;
        r.direct = std::any_of(sp->after.begin(), sp->after.end(), [k = r.key](auto& d) { return d.key == k; });
    }
    return done;
}

Result<SetResult> wire_key(const Instance& in, uint32_t key, const HandlerSpec& spec) {
    auto r = wire_keys(in, std::vector<std::pair<uint32_t, HandlerSpec>>{{key, spec}});
    if (!r) return propagate(r);
    return std::move(r->front());
}

Result<DelResult> unwire_keys(const Instance& in0, const std::vector<uint32_t>& keys) {
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