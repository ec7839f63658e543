#include "core/lifecycle.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <unistd.h>
#include <map>
#include <fmt/format.h>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/log.h"
#include "core/reasons.h"
#include "core/rollback.h"
#include "core/specialise.h"
#include "core/upgrade.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lock.h"
#include "core/ownership.h"
#include "core/handler_paths.h"
#include "core/phases.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

// A pin made by this command, taken away again unless the rollback is
// committed.
Result<> pin_undone(Rollback& undo, int fd, const std::string& path) {
    if (auto r = bpffs::pin(fd, path); !r) return r;
    undo.push([path] { (void)bpffs::remove(path); });
    crash_point("load");
    return {};
}

UniqueFd create_attach_map() {
    LIBBPF_OPTS(bpf_map_create_opts, o);
    return UniqueFd(bpf_map_create(BPF_MAP_TYPE_HASH, TCD_MAP_ATTACH, sizeof(tcd_attach_key),
                                   sizeof(tcd_attach_val), 1024, &o));
}

// Port instances: maps/slot_port, port_slot's index (slot -> port), filled
// from `port_slot` when that holds slots already (an instance an older tcd
// loaded, upgraded by load --force).
Result<UniqueFd> create_slot_index(int port_slot, bool fill) {
    LIBBPF_OPTS(bpf_map_create_opts, o);
    UniqueFd idx(bpf_map_create(BPF_MAP_TYPE_ARRAY, TCD_MAP_SLOT_PORT, 4, 4, TCD_PORT_SLOTS, &o));
    if (!idx) return fail_errno("create the port slot index", errno);
    if (!fill) return idx;
    std::vector<uint32_t> keys(TCD_PORT_JT_ENTRIES), slots(TCD_PORT_JT_ENTRIES);
    uint32_t count = TCD_PORT_JT_ENTRIES, next = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    if (bpf_map_lookup_batch(port_slot, nullptr, &next, keys.data(), slots.data(), &count, &bo) != 0 &&
        !(errno == ENOENT && count > 0)) {
        count = 0;
        for (uint32_t port = 0; port < TCD_PORT_JT_ENTRIES; port++, count++) {
            keys[port] = port;
            if (bpf_map_lookup_elem(port_slot, &port, &slots[port]) != 0)
                return fail_errno("read the port slots", errno);
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t slot = slots[i], entry = TCD_SLOT_TAKEN | keys[i];
        if (slot && slot < TCD_PORT_SLOTS && bpf_map_update_elem(idx.get(), &slot, &entry, BPF_ANY) != 0)
            return fail_errno("fill the port slot index", errno);
    }
    return idx;
}

tl::unexpected<Error> load_failure(std::string what, std::string why, int err) {
    return or_verbose(fail(std::move(what), std::move(why), errno_hint(err), err), "libbpf's log",
                      last_library_warning());
}

// The name load --force pins its new dispatcher under until it is swapped in.
std::string staged_dispatcher(const Paths& paths, Hook h) { return bpffs::staged_path(paths.dispatcher(h)); }

// A parent's key that wires this instance's dispatcher: load --force moves
// it to the new one (docs/datapath.md, "Instance trees").
struct ParentKey {
    std::string parent;
    uint32_t key = 0;
    UniqueFd jt;
};

// The keys of parents that wire program `id`, or with `earlier` any
// dispatcher of this instance (one an interrupted or an older tcd's reload
// left there: it still runs on this instance's maps).
Result<std::vector<ParentKey>> parent_keys(const std::string& dir, uint32_t id, bool earlier = false) {
    auto ps = tree::parents(dir);
    if (!ps) return propagate(ps);
    std::vector<ParentKey> out;
    for (const auto& e : *ps) {
        if (e.prog_id != id && !(earlier && tree::is_dispatcher(e.prog_id))) continue;
        auto jt = bpffs::get(Paths{e.parent}.jt());
        if (!jt) return propagate(jt);
        out.push_back({e.parent, e.key, std::move(*jt)});
    }
    return out;
}

// prog at each of keys, one atomic jump-table update each (a packet of the
// parent runs the old dispatcher or the new one, both on the same maps).
// The first failure's errno; *done counts the keys moved.
int repoint_parents(std::vector<ParentKey>& keys, int prog, size_t* done, bool crash) {
    for (auto& k : keys) {
        uint32_t key = k.key;
        if (bpf_map_update_elem(k.jt.get(), &key, &prog, BPF_ANY) != 0) return errno;
        if (done) ++*done;
        if (crash) crash_point("load");
    }
    return 0;
}

// The locks of the instances that wire this one.
Result<LockSet> lock_parents(const std::string& dir, bool relock) {
    return LockSet::acquire_stable([&] { return tree::parent_dirs(dir); }, relock);
}

// A load --force killed between its swap and its rename leaves the new
// dispatcher running under its staged pin while the pin proper is the old
// one. When the staged program itself runs where the instance is attached, or
// a parent wires it, it is the live dispatcher: the parents' keys still at the
// old one are moved to it (under their locks), then the pin is renamed. In
// that order, so that a kill in between leaves the staged pin to say so.
// Otherwise it goes with the other temporary pins.
void adopt_staged_dispatcher(const std::string& dir, bool relock) {
    Paths paths{dir};
    for (Hook h : {Hook::xdp, Hook::tc}) {
        std::string staged = staged_dispatcher(paths, h);
        if (!bpffs::exists(staged) || !bpffs::exists(paths.dispatcher(h))) continue;
        auto fd = bpffs::get(staged);
        if (!fd || fd_kind(fd->get()) != ObjKind::prog) continue;
        auto info = prog_info(fd->get());
        auto in = Instance::open_for_teardown(dir);
        if (!info || !in || in->kind().hook != h) continue;
        auto locks = lock_parents(dir, relock);
        std::vector<ParentKey> at_old;
        bool wired = false;
        if (locks) {
            if (auto old = bpffs::get(paths.dispatcher(h)))
                if (auto oi = prog_info(old->get()))
                    if (auto k = parent_keys(dir, oi->id, true)) at_old = std::move(*k);
            if (auto k = parent_keys(dir, info->id)) wired = !k->empty();
        }
        if (!wired && !runs_where_attached(*in, info->id)) continue;
        (void)repoint_parents(at_old, fd->get(), nullptr, false);
        (void)bpffs::rename(staged, paths.dispatcher(h));
    }
}

// An instance loaded already is of the kind asked for, and has the miss
// action asked for unless --force is to change it.
Result<> check_loaded(const std::string& dir, const Instance& in, const LoadOptions& opt, MissAction miss) {
    if (!(in.kind() == opt.kind))
        return worded(fail("load", fmt::format("{} holds a {} dispatcher on {}", dir, key_kind_name(in.kind().key),
                                               hook_name(in.kind().hook))),
                      Reason::unload_or_other_dir);
    if (!opt.force && in.miss_action() != miss)
        return worded(fail("load", fmt::format("{} is loaded with miss action {}", dir, miss_action_name(in.miss_action()))),
                      Reason::force_reloads);
    return {};
}

// The dispatcher object's maps and built-in handlers. What is pinned already
// is kept: the jump table (its wiring), the counters, the port slots, and the
// handlers (the jump table may point at them); the rest is new, to be pinned.
struct Parts {
    struct Map {
        bpf_map* map;
        std::string path;
        UniqueFd pinned;  // set when reused
    };
    std::vector<Map> maps;
    std::vector<std::pair<bpf_program*, std::string>> handlers;  // new ones keep autoload
    bool reused_maps = false;
};

// Built-ins already pinned are kept, unless `replace_builtins` (load --force
// with this tcd's built-ins).
Result<Parts> reuse_pinned(DispatcherObject& d, const Paths& paths, KeyKind key, bool replace_builtins) {
    Parts parts;
    parts.maps.push_back({d.map(TCD_MAP_JT), paths.jt(), {}});
    parts.maps.push_back({d.map(TCD_MAP_STATS), paths.stats(), {}});
    if (key == KeyKind::port) parts.maps.push_back({d.map(TCD_MAP_PORT_SLOT), paths.port_slot(), {}});
    for (auto& m : parts.maps) {
        if (!bpffs::exists(m.path)) continue;
        auto fd = bpffs::get(m.path);
        if (!fd) return propagate(fd);
        if (int err = bpf_map__reuse_fd(m.map, fd->get())) return fail_errno("reuse " + m.path, -err);
        m.pinned = std::move(*fd);
        parts.reused_maps = true;
    }
    for (const auto& name : builtin_handlers()) {
        bpf_program* p = d.program(name);
        if (bpffs::exists(paths.handler(name)) && !replace_builtins) bpf_program__set_autoload(p, false);
        parts.handlers.emplace_back(p, name);
    }
    return parts;
}

Result<> load_dispatcher(DispatcherObject& d, bool reused_maps) {
    auto r = d.load();
    if (r) return {};
    int err = r.error().err;
    if (err == EINVAL && reused_maps)
        return worded(fail("load", "the pinned maps do not match this tcd's dispatcher", "", err),
                      Reason::unload_first_drops);
    return load_failure("load", "the kernel refused the dispatcher: " + errno_words(err), err);
}

// Pins what is new: the directories, the maps (the jump table before anything
// is written to it), the attach map, a port instance's slot index. Their
// names go to `pinned`.
Result<> pin_new_maps(Rollback& tx, const Parts& parts, const Paths& paths, KeyKind key,
                      std::vector<std::string>& pinned) {
    auto made = bpffs::make_dirs(paths.maps_dir());
    if (!made) return propagate(made);
    for (const auto& d : *made) tx.push([d] { (void)bpffs::remove(d); });
    crash_point("load");
    for (const auto& m : parts.maps) {
        if (m.pinned) continue;
        if (auto r = pin_undone(tx, bpf_map__fd(m.map), m.path); !r) return propagate(r);
        pinned.push_back("maps/" + std::string(bpf_map__name(m.map)));
    }
    if (!bpffs::exists(paths.attach())) {
        UniqueFd am = create_attach_map();
        if (!am) return fail_errno("create the attach map", errno);
        if (auto r = pin_undone(tx, am.get(), paths.attach()); !r) return propagate(r);
        pinned.push_back("maps/attach");
    }
    if (key == KeyKind::port && !bpffs::exists(paths.slot_port())) {
        const Parts::Map& slots = parts.maps.back();  // port_slot, reused or new
        auto idx = create_slot_index(bpf_map__fd(slots.map), bool(slots.pinned));
        if (!idx) return propagate(idx);
        if (auto r = pin_undone(tx, idx->get(), paths.slot_port()); !r) return propagate(r);
        pinned.push_back("maps/" TCD_MAP_SLOT_PORT);
    }
    return {};
}

// load --force: the built-ins of this tcd replace the pinned ones (the keys
// wired to them repointed first); the caller undoes it if the swap fails.
Result<BuiltinUpgrade> upgrade_builtins(const Instance& old, const Parts& parts, const Paths& paths) {
    std::vector<std::pair<std::string, int>> fresh;
    for (const auto& [prog, name] : parts.handlers)
        if (bpffs::exists(paths.handler(name))) fresh.emplace_back(name, bpf_program__fd(prog));
    return replace_builtins(old, fresh);
}

// Pins the built-in handlers that are new (not those an upgrade put in place).
Result<> pin_new_handlers(Rollback& tx, const Parts& parts, const Paths& paths,
                          const std::vector<std::string>& upgraded, std::vector<std::string>& pinned) {
    for (const auto& [prog, name] : parts.handlers) {
        if (!bpf_program__autoload(prog)) continue;
        if (std::find(upgraded.begin(), upgraded.end(), name) != upgraded.end()) continue;
        if (auto r = pin_undone(tx, bpf_program__fd(prog), paths.handler(name)); !r) return propagate(r);
        pinned.push_back(name);
    }
    return {};
}

// The keys the new dispatcher reaches by direct jumps: what the caller worked
// out (respecialise), else what the wiring there is wants, else the defaults.
Result<std::vector<DirectKey>> direct_keys_for(const std::optional<Instance>& old, const LoadOptions& opt) {
    if (old && opt.direct) return *opt.direct;
    if (old) return wanted_direct(*old);
    return default_direct(opt.kind.key);
}

// load --force: the new dispatcher is pinned first under a temporary name (so
// it is never only in this process's hands), then every interface moves to it
// in one atomic step each, then every parent's key that wired the old one (one
// jump-table update each), then the pin is renamed over the old one. A
// failure after the swap swaps back through the same function (the caller's
// rollback then undoes the built-in upgrade). The interfaces moved.
Result<std::vector<Attachment>> replace_dispatcher(const Instance& old, int new_fd, const Paths& paths,
                                                   std::vector<ParentKey>& parents) {
    const Hook hook = old.kind().hook;
    std::string staged = staged_dispatcher(paths, hook);
    phases::Timer timer;
    if (auto r = bpffs::pin(new_fd, staged); !r) return propagate(r);
    Rollback undo;
    undo.push([&] { (void)bpffs::remove(staged); });
    crash_point("load");
    timer.mark("pin");
    auto swapped = swap_dispatcher(old, new_fd);
    timer.mark("swap");
    if (!swapped) return propagate(swapped);
    undo.push([&] { (void)swap_dispatcher_on(*swapped, hook, old.dispatcher_fd(), new_fd); });
    crash_point("load");
    size_t moved = 0;
    undo.push([&] {
        std::vector<ParentKey> back;
        for (size_t i = 0; i < moved; i++) back.push_back({parents[i].parent, parents[i].key, UniqueFd(dup(parents[i].jt.get()))});
        (void)repoint_parents(back, old.dispatcher_fd(), nullptr, false);
    });
    int err = repoint_parents(parents, new_fd, &moved, true);
    timer.mark("parents");
    if (err)
        return fail_errno(fmt::format("repoint {} key {} to the new dispatcher", parents[moved].parent,
                                      parents[moved].key),
                          err);
    auto renamed = bpffs::rename(staged, paths.dispatcher(hook));
    timer.mark("pin");
    if (!renamed) return propagate(renamed);
    undo.commit();
    return swapped;
}

}  // namespace

// Temporary pins can only be left by a command that died half-way (the
// instance lock keeps live ones out).
void recover_interrupted(const std::string& dir, bool relock) {
    adopt_staged_dispatcher(dir, relock);
    complete_builtin_upgrade(dir);
    for (const std::string& d : {dir, Paths{dir}.maps_dir()}) bpffs::remove_temp_pins(d, false);
}

Result<LoadResult> load(const std::string& dir, const LoadOptions& opt) {
    const MissAction miss = opt.miss.value_or(default_miss_action(opt.kind.hook));
    if (miss == MissAction::next && opt.kind.hook != Hook::tc)
        return about(usage_error("load", "is for tc instances; XDP has pass and drop"), Flag::miss_action, "next");
    phases::Timer timer;
    if (auto r = bpffs::ensure_mounted(dir); !r) return propagate(r);
    // Pins are made and replaced only in a directory that is tcd's.
    if (auto r = require_own_dir(dir, "load"); !r) return opt.force ? propagate(r, "load", Flag::force) : propagate(r);
    // A reload moves the parents' keys too: their locks first, before
    // anything changes.
    // (Where it may not relock, the caller holds them already: see below.)
    LockSet parent_locks;
    if (opt.force && opt.relock && Instance::is_loaded(dir)) {
        auto l = lock_parents(dir, true);
        if (!l) return propagate(l, "load", Flag::force);
        parent_locks = std::move(*l);
    }
    recover_interrupted(dir, opt.relock);

    LoadResult res;
    res.pin_dir = dir;
    res.miss = miss;
    res.kind = opt.kind;
    std::optional<Instance> old;
    if (Instance::is_loaded(dir)) {
        auto in = Instance::open(dir);
        if (!in) return propagate(in);
        if (auto r = check_loaded(dir, *in, opt, miss); !r) return propagate(r);
        if (!opt.force) {
            res.dispatcher = in->dispatcher();
            return res;  // the state asked for holds
        }
        old = std::move(*in);
    }

    timer.mark("checks");
    // The monitoring build: asked for, or kept where it runs (its maps
    // reused, so the monitor's stream goes on).
    std::vector<UniqueFd> mon_fds;
    std::optional<MonitorBuild> mon = opt.monitor;
    if (!mon && !opt.plain && old) {
        auto live = read_monitor_build(old->dispatcher(), &mon_fds);
        if (live && *live) mon = std::move(*live);
    }
    auto object = DispatcherObject::open(opt.kind, mon.has_value());
    if (!object) return propagate(object);
    object->configure(miss, false);
    // A reload keeps the pinned jump table, so its programs keep its owner's
    // expected attach type (BPF_XDP on an instance an older tcd loaded).
    timer.mark("open");
    if (old && opt.kind.hook == Hook::xdp)
        if (auto at = xdp_table_attach_type(old->dispatcher_fd())) object->set_xdp_attach_type(*at);
    timer.mark("probe the table's attach type");
    auto direct = direct_keys_for(old, opt);
    if (!direct) return propagate(direct);
    object->specialise(*direct);
    for (const auto& k : *direct) res.direct.push_back(k.key);
    if (mon)
        if (auto r = object->monitor(*mon); !r) return propagate(r);
    Paths paths{dir};
    const bool replace = old && opt.upgrade_builtins;
    auto parts = reuse_pinned(*object, paths, opt.kind.key, replace);
    if (!parts) return propagate(parts);
    timer.mark("open");
    if (auto r = load_dispatcher(*object, parts->reused_maps); !r) return propagate(r);
    crash_point("load");
    timer.mark("verify+load (JIT too)");

    // What this load pins and upgrades, taken back on any failure below.
    BuiltinUpgrade upgrade;  // outlives tx, whose undo names it
    Rollback tx;
    if (auto r = pin_new_maps(tx, *parts, paths, opt.kind.key, res.pinned); !r) return propagate(r);
    if (replace) {
        auto up = upgrade_builtins(*old, *parts, paths);
        if (!up) return propagate(up);
        upgrade = std::move(*up);
        tx.push([&upgrade] { upgrade.undo(); });
        res.upgraded = upgrade.replaced();
    }
    if (auto r = pin_new_handlers(tx, *parts, paths, res.upgraded, res.pinned); !r) return propagate(r);
    int new_fd = bpf_program__fd(object->dispatcher());
    timer.mark("pin");
    if (old) {
        auto parents = parent_keys(dir, old->dispatcher().id, true);
        if (parents && !opt.relock) {
            // Normally held by the caller (wire_keys, unwire_keys); else
            // tried for, and the keys read again under them.
            std::vector<std::string> dirs;
            for (const auto& p : *parents) dirs.push_back(p.parent);
            auto l = LockSet::acquire(dirs, false);
            if (!l) return propagate(l, "load", Flag::force);
            if (!l->empty()) parents = parent_keys(dir, old->dispatcher().id, true);
            parent_locks.add(std::move(*l));
        }
        if (!parents) return propagate(parents);
        timer.mark("parents");
        auto swapped = replace_dispatcher(*old, new_fd, paths, *parents);
        timer = phases::Timer();
        if (!swapped) return propagate(swapped);
        for (const auto& p : *parents) res.repointed.push_back({p.parent, p.key});
        res.swapped = std::move(*swapped);
        res.reloaded = true;
    } else if (auto r = pin_undone(tx, new_fd, paths.dispatcher(opt.kind.hook)); !r) {
        return propagate(r);
    }
    res.pinned.push_back(dispatcher_name(opt.kind.hook));
    tx.commit();

    if (auto info = prog_info(new_fd)) res.dispatcher = std::move(*info);
    res.changed = true;
    timer.mark("pin");
    return res;
}

Result<LoadOptions> resolve_load(const std::string& dir, const LoadRequest& req) {
    const Kind pinned = pinned_kind(dir).value_or(Kind{});
    LoadOptions o;
    o.kind = {req.key.value_or(pinned.key), req.hook.value_or(pinned.hook)};
    o.miss = req.miss;
    o.force = req.force;
    if (o.miss)
        if (auto r = miss_action_fits(*o.miss, o.kind.hook); !r) return propagate(r);
    return o;
}

Result<LoadResult> load_as_asked(const std::string& dir, const LoadRequest& req) {
    auto o = resolve_load(dir, req);
    if (!o) return propagate(o);
    return load(dir, *o);
}

Result<UnloadResult> unload(const std::string& dir, bool force) {
    UnloadResult res;
    res.pin_dir = dir;
    Paths paths{dir};
    if (!bpffs::exists(dir)) return res;  // nothing there: done already
    if (!bpffs::is_bpffs(dir))
        return worded(fail("unload", dir + " is not on a bpffs"), Reason::right_pin_dir);
    // Only an instance's pins are removed, and only when all of them are
    // tcd's: checked before anything is touched.
    if (auto r = require_own_dir(dir, "unload"); !r) return propagate(r);

    // A child that a parent wires stays until the parent unwires it (its jump
    // table would empty under the parent's packets). The check and the
    // removal happen under this instance's lock, which a map set wiring it
    // takes too. --force unwires it in each parent first, under the parents'
    // locks (taken in order with this one's, and who wires it read again
    // under them).
    if (Instance::is_loaded(dir)) {
        auto parents = tree::parents(dir);
        if (!parents) return propagate(parents);
        if (!parents->empty() && !force) {
            const auto& p = parents->front();
            auto pk = pinned_kind(p.parent);
            std::string key = key_name(pk ? pk->key : KeyKind::proto, p.key);
            if (key.empty()) key = std::to_string(p.key);
            std::string more = parents->size() > 1 ? fmt::format(" (and {} more)", parents->size() - 1) : "";
            return worded(fail("unload", fmt::format("{} is wired in {} at key {}{}", dir, p.parent, key, more)),
                          Reason::wired_in_parent, {p.parent, key});
        }
        LockSet parent_locks;
        if (!parents->empty()) {
            auto locks = lock_parents(dir, true);
            if (!locks) return propagate(locks, "unload", Flag::force);
            parent_locks = std::move(*locks);
            parents = tree::parents(dir);
            if (!parents) return propagate(parents);
        }
        std::map<std::string, std::vector<uint32_t>> by_parent;
        for (const auto& p : *parents) by_parent[p.parent].push_back(p.key);
        for (const auto& [parent, keys] : by_parent) {
            auto pin = Instance::open(parent);
            if (!pin) return propagate(pin, "unload", Flag::force);
            auto del = del_keys(*pin, keys);
            if (!del) return propagate(del, "unload", Flag::force);
            for (const auto& e : del->removed) res.unwired.push_back({parent, e.key, e.key_name});
            crash_point("unload");
            tree::prune(parent);  // its records of the links just undone
        }
    }

    // Detach first, while the dispatcher is still pinned and known (a staged
    // one that runs, left by a killed load --force, adopted first).
    adopt_staged_dispatcher(dir, false);
    // A half-removed instance (a map pin gone) is still detached through what
    // is left: the dispatcher pin (its program id) and the attach records. If
    // even the dispatcher cannot be opened, nothing is removed: pins gone
    // while it still runs would leave it attached and unfindable.
    if (Instance::is_loaded(dir)) {
        auto in = Instance::open(dir);
        if (!in) in = Instance::open_for_teardown(dir);
        if (!in)
            return fail("unload", "cannot open the dispatcher to detach it: " + in.error().message(),
                        "detach it by hand ('ip link set dev IFACE xdp off'), then remove " + dir);
        auto detached = detach_all(*in);
        if (!detached) return propagate(detached);
        res.detached = *detached;
    }
    // The dispatcher goes first so that a half-removed instance is never
    // taken for a loaded one; then handlers, then maps.
    std::vector<std::string> order;
    for (Hook h : {Hook::xdp, Hook::tc})
        if (bpffs::exists(paths.dispatcher(h))) order.push_back(dispatcher_name(h));
    for (const auto& name : bpffs::list_pins(dir))
        if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
    for (const auto& name : order) {
        if (auto r = bpffs::remove(dir + "/" + name); !r) return propagate(r);
        res.removed.push_back(name);
    }
    for (const auto& name : bpffs::list_pins(paths.maps_dir())) {
        if (auto r = bpffs::remove(paths.maps_dir() + "/" + name); !r) return propagate(r);
        res.removed.push_back("maps/" + name);
    }
    (void)bpffs::remove(paths.maps_dir());
    // tcx link pins (detach_all took them off; defunct ones of a half-made instance).
    for (const auto& name : bpffs::list_pins(dir + "/links")) (void)bpffs::remove(dir + "/links/" + name);
    (void)bpffs::remove(dir + "/links");
    // The link records (PINDIR/tree/); the other side's go stale and are
    // pruned by the next command on that instance.
    for (const auto& name : bpffs::list_pins(dir + "/tree")) (void)bpffs::remove(dir + "/tree/" + name);
    (void)bpffs::remove(dir + "/tree");
    // The handlers' path records (PINDIR/paths/).
    handler_paths::remove_all(dir);
    // A multi-pair map set's undo record (PINDIR/undo/, left by a kill).
    for (const auto& name : bpffs::list_pins(dir + "/undo")) (void)bpffs::remove(dir + "/undo/" + name);
    (void)bpffs::remove(dir + "/undo");
    if (auto r = bpffs::remove(dir); !r)
        return fail("unload", dir + " still holds entries tcd did not make", "look inside and remove them");
    res.changed = true;  // the directory existed and is gone
    return res;
}

Result<AttachOutcome> attach_loading(const std::string& dir, const AttachRequest& o) {
    const bool tc_asked = o.direction != Direction::none || o.order;
    auto ns = resolve_netns(o.netns);  // validate before anything is loaded
    if (!ns) return propagate(ns);
    {
        auto guard = NetnsGuard::enter(*ns);
        if (!guard) return propagate(guard);
        if (o.ifname.empty() || !if_nametoindex(o.ifname.c_str()))
        {
            auto e = fail("interface " + o.ifname,
                          "no such interface" + (ns->empty() ? std::string() : " in network namespace " + *ns),
                          ns->empty() ? "" : "see 'ip -n NAME link'");
            return ns->empty() ? worded(e, Reason::netns_needed) : e;
        }
    }
    // Before anything is loaded: hw mode on a device without offload.
    if (auto r = check_xdp_mode(o.ifname, o.netns, o.mode); !r) return propagate(r);

    AttachOutcome out;
    if (!Instance::is_loaded(dir)) {
        // --direction asks for a tc instance; plain attach for the default.
        LoadOptions lo;
        if (tc_asked) lo.kind.hook = Hook::tc;
        auto l = load(dir, lo);
        if (!l) return propagate(l);
        out.loaded = true;
        crash_point("attach");
    }
    auto in = Instance::open(dir);
    if (!in) return propagate(in);
    // The load taken back unless the attach is made.
    Rollback undo;
    if (out.loaded) undo.push([&dir] { (void)unload(dir); });
    if (in->kind().hook == Hook::tc && o.mode != AttachMode::auto_mode)
        return worded(usage_error("attach", "the XDP mode is for XDP instances; this one is on tc"), Reason::mode_on_tc);
    if (in->kind().hook == Hook::tc && (o.priority || o.alone))
        return worded(usage_error("attach", "libxdp's options are for XDP instances; this one is on tc"),
                      o.priority ? Reason::priority_on_tc : Reason::alone_on_tc);
    if (o.priority && o.alone)
        return worded(usage_error("attach", "a run priority is for libxdp's dispatcher; alone is without it"),
                      Reason::priority_and_alone);
    if (in->kind().hook == Hook::xdp && tc_asked)
        return worded(usage_error("attach", "an order or direction is for tc instances; this one is on XDP"),
                      o.order ? Reason::order_on_xdp : Reason::direction_on_xdp);
    auto r = attach(*in, o);
    if (!r) return propagate(r);
    undo.commit();
    out.result = std::move(*r);
    return out;
}

Result<std::vector<DetachResult>> detach_as_asked(const std::string& dir, const DetachRequest& o) {
    if (o.all && !o.ifname.empty())
        return worded(usage_error("detach", "an interface and all, not one of them"), Reason::iface_and_all);
    if (!o.all && o.ifname.empty())
        return worded(usage_error("detach", "neither an interface nor all"), Reason::iface_or_all);
    std::vector<DetachResult> results;
    if (!Instance::is_loaded(dir)) {
        if (auto r = require_own_dir(dir, "detach"); !r) return propagate(r);
        // Nothing of ours can run anywhere; still say so for a missing interface.
        if (!o.all) {
            auto ns = resolve_netns(o.netns);
            if (!ns) return propagate(ns);
            auto guard = NetnsGuard::enter(*ns);
            if (!guard) return propagate(guard);
            if (!if_nametoindex(o.ifname.c_str())) return fail("interface " + o.ifname, "no such interface");
            Attachment where;
            where.ifname = o.ifname;
            where.ifindex = if_nametoindex(o.ifname.c_str());
            where.netns = *ns;
            where.direction = o.direction;
            results.push_back({false, where, {}});
        }
        return results;
    }
    auto in = Instance::open(dir);
    if (!in) return propagate(in);
    if (o.all) {
        auto stale = stale_records(*in);  // detach_all clears them with the rest: said so
        auto r = detach_all(*in);
        if (!r) return propagate(r);
        for (auto& a : *r) results.push_back({true, a, {}});
        for (auto& s : stale) results.push_back(std::move(s));
    } else {
        if (o.direction != Direction::none && in->kind().hook != Hook::tc)
            return worded(usage_error("detach", "a direction is for tc instances"), Reason::detach_direction_on_xdp);
        auto r = tcd::detach(*in, o.ifname, o.netns, o.direction);
        if (!r) return propagate(r);
        results = std::move(*r);
    }
    return results;
}

}  // namespace tcd
