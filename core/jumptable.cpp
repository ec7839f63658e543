#include "core/jumptable.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <bpf/libbpf.h>

#include <cerrno>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <functional>
#include <map>

#include "core/crashpoint.h"
#include "core/handler_paths.h"
#include "core/keys.h"
#include "core/lock.h"
#include "core/probe.h"
#include "core/reasons.h"
#include "core/rollback.h"
#include "core/stats.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace tcd {
namespace {

std::map<uint32_t, PinnedProg> pins_by_id(const Instance& in) {
    std::map<uint32_t, PinnedProg> out;
    for (auto& p : pinned_programs(in.paths().dir)) out.emplace(p.info.id, std::move(p));
    return out;
}

WiredEntry describe(KeyKind kind, uint32_t key, uint32_t id, const std::map<uint32_t, PinnedProg>& pins,
                    const std::string& self) {
    WiredEntry e;
    e.key = key;
    e.key_name = key_name(kind, key);
    e.prog_id = id;
    if (auto it = pins.find(id); it != pins.end()) {
        e.handler = it->second.name;
        e.tag = it->second.info.tag;
    } else {
        e.handler = fmt::format("id:{}", id);
        if (auto fd = prog_fd_by_id(id))
            if (auto info = prog_info(fd->get())) {
                e.tag = info->tag;
                // Another instance's dispatcher (a child) goes by its pin
                // dir; another instance's handler by its full pin path.
                if (auto child = tree::instance_used_by(*info, self)) {
                    if (info->name == TCD_PROG_DISPATCH || info->name == TCD_PROG_TC_DISPATCH) {
                        e.handler = *child;
                        e.instance = *child;
                    } else {
                        for (const auto& p : pinned_programs(*child))
                            if (p.info.id == id) e.handler = *child + "/" + p.name;
                    }
                }
            }
        // A handler pinned outside any instance: the path it was wired by.
        if (e.instance.empty() && e.handler.rfind("id:", 0) == 0)
            if (auto path = handler_paths::recorded(self, key, id)) e.handler = *path;
    }
    return e;
}

// Port instances: the port's counter slot, assigning a free one (its counters
// zeroed) when it has none. second: whether it was assigned now.
Result<std::pair<uint32_t, bool>> assign_slot(const Instance& in, uint32_t port, SetBatch* cache) {
    // A port that has its slot (a rewiring): one lookup.
    uint32_t had = 0;
    if (bpf_map_lookup_elem(in.port_slot_fd(), &port, &had) == 0 && had) return std::pair{had, false};
    SetBatch local;
    if (!cache) cache = &local;
    if (!cache->slots) {
        auto read = slotted_ports(in);
        if (!read) return propagate(read);
        cache->slots = std::move(*read);
    }
    std::map<uint32_t, uint32_t>& slots = *cache->slots;
    if (auto it = slots.find(port); it != slots.end()) return std::pair{it->second, false};
    std::vector<bool> used(TCD_PORT_SLOTS, false);
    used[0] = true;
    for (const auto& [p, s] : slots)
        if (s < TCD_PORT_SLOTS) used[s] = true;
    uint32_t slot = 0;
    for (uint32_t i = 1; i < TCD_PORT_SLOTS && !slot; i++)
        if (!used[i]) slot = i;
    if (!slot)
        return worded(fail(fmt::format("map set {}", port),
                           fmt::format("all {} port counter slots are in use", TCD_PORT_SLOTS - 1)),
                      Reason::unwire_ports);
    if (auto r = reset_row(in.stats_fd(), slot); !r) return propagate(r);
    if (auto r = write_port_slot(in, port, slot); !r) return propagate(r, fmt::format("map set {}", port));
    slots[port] = slot;
    return std::pair{slot, true};
}

void release_slot(const Instance& in, uint32_t port) { (void)write_port_slot(in, port, 0); }

}  // namespace

Result<std::optional<uint32_t>> wired_prog_id(const Instance& in, uint32_t key) {
    uint32_t id = 0;
    if (bpf_map_lookup_elem(in.jt_fd(), &key, &id) == 0) return std::optional<uint32_t>(id);
    if (errno == ENOENT) return std::optional<uint32_t>();
    return fail_errno(fmt::format("read jump table key {}", key), errno);
}

Result<std::vector<uint32_t>> read_port_slots(const Instance& in) {
    std::vector<uint32_t> slots(TCD_PORT_JT_ENTRIES, 0);
    if (in.port_slot_fd() < 0) return slots;
    std::vector<uint32_t> keys(TCD_PORT_JT_ENTRIES);
    uint32_t count = TCD_PORT_JT_ENTRIES, out = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    std::vector<uint32_t> values(TCD_PORT_JT_ENTRIES);
    // Batch lookups on plain arrays came in Linux 5.6, before the minimum
    // kernel (5.10). probe::try_batch() answers for per-CPU arrays (5.13),
    // not for this one: on 5.10 it said no and every port stats read 65,536
    // keys one at a time. One key at a time only if the batch fails.
    int rc = bpf_map_lookup_batch(in.port_slot_fd(), nullptr, &out, keys.data(), values.data(), &count, &o);
    const int err = errno;
    if (rc == 0 || (err == ENOENT && count > 0)) {  // ENOENT: the last batch
        for (uint32_t i = 0; i < count; i++)
            if (keys[i] < TCD_PORT_JT_ENTRIES) slots[keys[i]] = values[i];
        return slots;
    }
    for (uint32_t port = 0; port < TCD_PORT_JT_ENTRIES; port++)
        if (bpf_map_lookup_elem(in.port_slot_fd(), &port, &slots[port]) != 0)
            return fail_errno("read port slots", errno);
    return slots;
}

Result<std::map<uint32_t, uint32_t>> slotted_ports(const Instance& in) {
    std::map<uint32_t, uint32_t> out;
    if (in.port_slot_fd() < 0) return out;
    if (in.slot_port_fd() < 0) {  // an instance an older tcd loaded: no index
        auto all = read_port_slots(in);
        if (!all) return propagate(all);
        for (uint32_t port = 0; port < all->size(); port++)
            if ((*all)[port]) out[port] = (*all)[port];
        return out;
    }
    std::vector<uint32_t> keys(TCD_PORT_SLOTS), values(TCD_PORT_SLOTS);
    uint32_t count = TCD_PORT_SLOTS, next = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    int rc = bpf_map_lookup_batch(in.slot_port_fd(), nullptr, &next, keys.data(), values.data(), &count, &o);
    if (rc != 0 && !(errno == ENOENT && count > 0)) {  // ENOENT: the last batch
        count = 0;
        for (uint32_t slot = 0; slot < TCD_PORT_SLOTS; slot++, count++) {
            keys[slot] = slot;
            if (bpf_map_lookup_elem(in.slot_port_fd(), &slot, &values[slot]) != 0)
                return fail_errno("read " + in.paths().slot_port(), errno);
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t slot = keys[i], v = values[i];
        if (!slot || slot >= TCD_PORT_SLOTS || !(v & TCD_SLOT_TAKEN)) continue;
        // The entry holds while port_slot names this slot (a kill between
        // the two writes leaves an entry that does not).
        uint32_t port = v & 0xffff, now = 0;
        if (bpf_map_lookup_elem(in.port_slot_fd(), &port, &now) == 0 && now == slot) out[port] = slot;
    }
    return out;
}

Result<> write_port_slot(const Instance& in, uint32_t port, uint32_t slot) {
    if (in.port_slot_fd() < 0) return {};
    const int index = in.slot_port_fd();
    if (slot) {
        uint32_t entry = TCD_SLOT_TAKEN | port;
        if (index >= 0 && bpf_map_update_elem(index, &slot, &entry, BPF_ANY) != 0)
            return fail_errno(fmt::format("give port {} counter slot {} in {}", port, slot, in.paths().slot_port()),
                              errno);
        crash_point("slot");
        if (bpf_map_update_elem(in.port_slot_fd(), &port, &slot, BPF_ANY) != 0)
            return fail_errno(fmt::format("give port {} counter slot {}", port, slot), errno);
        return {};
    }
    uint32_t had = 0, zero = 0;
    if (bpf_map_lookup_elem(in.port_slot_fd(), &port, &had) != 0 || !had) return {};
    if (bpf_map_update_elem(in.port_slot_fd(), &port, &zero, BPF_ANY) != 0)
        return fail_errno(fmt::format("free the counter slot of port {}", port), errno);
    crash_point("slot");
    uint32_t entry = 0;
    if (index >= 0 && had < TCD_PORT_SLOTS && bpf_map_lookup_elem(index, &had, &entry) == 0 &&
        entry == (TCD_SLOT_TAKEN | port))
        bpf_map_update_elem(index, &had, &zero, BPF_ANY);  // left set, it does not count (port_slot is 0)
    return {};
}

Result<std::vector<WiredEntry>> list_wiring(const Instance& in, bool slotted_only) {
    std::vector<WiredEntry> out;
    std::vector<std::pair<uint32_t, uint32_t>> ids;
    std::map<uint32_t, uint32_t> slots;
    const bool port = in.kind().key == KeyKind::port;
    if (port) {
        auto s = slotted_ports(in);
        if (!s) return propagate(s);
        slots = std::move(*s);
    }
    auto look = [&](uint32_t key) -> Result<> {
        auto id = wired_prog_id(in, key);
        if (!id) return propagate(id);
        if (*id) ids.emplace_back(key, **id);
        return {};
    };
    if (port && slotted_only) {
        for (const auto& [key, slot] : slots)
            if (auto r = look(key); !r) return propagate(r);
    } else {
        const uint32_t last = max_key(in.kind().key);
        for (uint32_t key = 0; key <= last; key++)
            if (auto r = look(key); !r) return propagate(r);
    }
    if (ids.empty()) return out;
    auto pins = pins_by_id(in);
    for (auto [key, id] : ids) {
        out.push_back(describe(in.kind().key, key, id, pins, in.paths().dir));
        if (auto it = slots.find(key); it != slots.end()) out.back().slot = it->second;
    }
    return out;
}

namespace {

// The kernel does not report a program's expected attach type or frags flag,
// but a prog array tells: its first program becomes its owner, and a later
// one is accepted only if type, JIT status, frags flag and expected attach
// type all match. So tcd asks scratch arrays owned by probe programs.
struct XdpTraits {
    uint32_t attach_type = BPF_XDP;
    bool frags = false;
};

UniqueFd probe_prog(const XdpTraits& t) {
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},  // r0 = XDP_PASS
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                         // exit
    };
    LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = static_cast<bpf_attach_type>(t.attach_type),
                .prog_flags = t.frags ? BPF_F_XDP_HAS_FRAGS : 0u);
    return UniqueFd(bpf_prog_load(BPF_PROG_TYPE_XDP, "tcd_probe", "GPL", insns, 2, &o));
}

// Would a prog array owned by `owner` take `prog`?
bool accepts(int owner, int prog) {
    UniqueFd arr(bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "tcd_probe", 4, 4, 2, nullptr));
    if (!arr) return false;
    uint32_t k0 = 0, k1 = 1;
    if (bpf_map_update_elem(arr.get(), &k0, &owner, BPF_ANY) != 0) return false;
    return bpf_map_update_elem(arr.get(), &k1, &prog, BPF_ANY) == 0;
}

// Attach type 0 is what a freplace program has (the kernel allows it no
// other), and what an XDP program loaded without one has.
std::optional<XdpTraits> traits_of(int prog) {
    const bool frags_known = probe::has(probe::Feature::xdp_frags).value_or(true);
    for (uint32_t at : {uint32_t(BPF_XDP), 0u, uint32_t(BPF_XDP_DEVMAP), uint32_t(BPF_XDP_CPUMAP)})
        for (bool frags : {false, true}) {
            if (frags && !frags_known) continue;
            XdpTraits t{at, frags};
            UniqueFd probe = probe_prog(t);
            if (probe && accepts(probe.get(), prog)) return t;
        }
    return std::nullopt;
}

// Of an XDP program (the only ones asked): 0 is "none", not cgroup_inet_ingress.
const char* attach_name(uint32_t at) {
    if (at == 0) return "none";
    const char* s = libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(at));
    return s ? s : "unknown";
}

}  // namespace

std::vector<std::string> compat_differences(const CompatTraits& h, const CompatTraits& t) {
    std::vector<std::string> out;
    if (h.type != t.type)
        out.push_back(fmt::format("program type is {}, the jump table takes {}", prog_type_name(h.type),
                                  prog_type_name(t.type)));
    if (h.jited != t.jited)
        out.push_back(fmt::format("JIT status differs: handler {}, jump table {}", h.jited ? "jited" : "interpreted",
                                  t.jited ? "jited" : "interpreted"));
    auto frags = [](bool f) { return f ? "frags-aware (xdp.frags)" : "not frags-aware"; };
    if (h.frags && t.frags && *h.frags != *t.frags)
        out.push_back(fmt::format("frags flag differs: handler {}, jump table {}", frags(*h.frags), frags(*t.frags)));
    if (h.attach_type && t.attach_type && *h.attach_type != *t.attach_type)
        out.push_back(fmt::format("expected attach type differs: handler {}, jump table {}{}",
                                  attach_name(*h.attach_type), attach_name(*t.attach_type),
                                  t.freplace ? " (the jump table's owner is a freplace program, as under "
                                               "libxdp's dispatcher; kernels with the prog-array attach-type "
                                               "check, Linux 6.17 and its stable backports such as Debian 12's "
                                               "6.1.1xx, take only programs with the owner's expected attach type)"
                                             : ""));
    return out;
}

Result<> check_compatible(const Instance& in, const Handler& h) {
    const uint32_t table_type = in.kind().hook == Hook::tc ? BPF_PROG_TYPE_SCHED_CLS : BPF_PROG_TYPE_XDP;
    return check_compatible(in.dispatcher_fd(), in.dispatcher(), table_type, h);
}

Result<> check_compatible(int owner_fd, const ProgInfo& owner, uint32_t table_type, const Handler& h) {
    std::string what = "handler " + h.display;
    if (h.info.id == owner.id) return fail(what, "is the dispatcher itself", "wire a handler program");
    CompatTraits mine{h.info.type, h.info.jited, {}, {}}, theirs{owner.type, owner.jited, {}, {}};
    const bool freplace = owner.type == BPF_PROG_TYPE_EXT;
    if (!freplace && mine.type == theirs.type && mine.jited == theirs.jited && accepts(owner_fd, h.fd.get()))
        return {};
    // A freplace owner cannot be put into a prog array, so no scratch array
    // can judge for it; what it demands is known instead: its table's
    // program type, its JIT status, and (on kernels with the prog-array
    // attach-type check) expected attach type none, the only one the kernel
    // lets a freplace program have.
    if (freplace) theirs.type = table_type, theirs.freplace = true;
    const bool xdp_owner = theirs.type == BPF_PROG_TYPE_XDP;
    if (mine.type == BPF_PROG_TYPE_XDP && xdp_owner) {
        if (auto m = traits_of(h.fd.get())) mine.attach_type = m->attach_type, mine.frags = m->frags;
        if (!freplace) {
            if (auto t = traits_of(owner_fd)) theirs.attach_type = t->attach_type, theirs.frags = t->frags;
        } else if (probe::has(probe::Feature::prog_array_attach_check).value_or(true)) {
            theirs.attach_type = 0u;
        }
    }
    // Every field that differs, in one message.
    auto diffs = compat_differences(mine, theirs);
    if (diffs.empty() && freplace) return {};  // the kernel has the last word at map set
    if (diffs.empty())
        return fail(what, "the kernel would not take it into this jump table",
                    xdp_owner ? "program type, expected attach type, frags flag or JIT status differ"
                              : "JIT status or other load flags differ");
    std::string why = fmt::format("{}", fmt::join(diffs, "; "));
    std::string hint;
    if (mine.type != theirs.type)
        hint = xdp_owner ? "write it as SEC(\"xdp\")" : "write it as SEC(\"tc\")";
    else if (diffs.size() > (mine.jited != theirs.jited ? 1u : 0u))
        return worded(fail(what, why), Reason::handler_load_fits);
    return fail(what, why, hint);
}

std::optional<uint32_t> xdp_table_attach_type(int owner_fd) {
    auto info = prog_info(owner_fd);
    if (info && info->type == BPF_PROG_TYPE_EXT)
        return probe::has(probe::Feature::prog_array_attach_check).value_or(true) ? 0u : uint32_t(BPF_XDP);
    if (auto t = traits_of(owner_fd)) return t->attach_type;
    return std::nullopt;
}

Result<SetResult> set_handler(const Instance& in, uint32_t key, const HandlerSpec& spec, SetBatch* batch) {
    auto h = open_handler(spec, in.paths().dir);
    if (!h) return propagate(h);
    // A child's lock: its unload checks for parents under it. wire_keys has
    // taken it already, in order; other callers get it here, without
    // letting go of what they hold.
    const auto children = tree::instances_used_by(h->info, in.paths().dir, {h->instance});
    auto child_locks = LockSet::acquire(children, false);
    if (!child_locks) return propagate(child_locks, "map set");
    // A child instance: same hook, no loop, within the kernel's tail calls.
    if (auto r = tree::check_wiring(in, key, *h, batch && batch->wired); !r) return propagate(r);
    // Whether the kernel takes the program into this jump table: the table
    // itself judges when the key is written (its owner is the dispatcher, so
    // it answers as a scratch table would, without one); check_compatible
    // then names what differs. Checked first for a handler that enters
    // another instance (nothing is recorded for a link the kernel refuses)
    // and for the dispatcher itself (which the kernel would take).
    if (h->info.id == in.dispatcher().id || !children.empty())
        if (auto r = check_compatible(in, *h); !r) return propagate(r);
    // The link recorded before the key is written (docs/datapath.md,
    // "Instance trees"): a kill after this leaves a record that is checked
    // when read, never a link without one.
    for (const auto& c : children)
        if (auto r = tree::record(in.paths().dir, key, c); !r) return propagate(r, "map set");
    auto previous_path = handler_paths::note(in.paths().dir, key, spec, *h);
    if (!previous_path) return propagate(previous_path);
    // A refusal from here on leaves the key's path record as it was.
    Rollback path_back;
    path_back.push([&] { handler_paths::put_back(in.paths().dir, key, *previous_path); });

    auto cur = wired_prog_id(in, key);
    if (!cur) return propagate(cur);
    auto pins = pins_by_id(in);
    SetResult res;
    res.key = key;
    KeyKind kind = in.kind().key;
    if (*cur) res.old = describe(kind, key, **cur, pins, in.paths().dir);
    res.now = describe(kind, key, h->info.id, pins, in.paths().dir);
    if (batch) batch->wired = true;  // this key, from here on (or put back with the whole batch)
    if (*cur && **cur == h->info.id) {  // wired already
        path_back.commit();
        return res;
    }

    // A port gets a counter slot of its own before its handler is wired.
    std::optional<uint32_t> new_slot;
    if (kind == KeyKind::port) {
        auto slot = assign_slot(in, key, batch);
        if (!slot) return propagate(slot);
        new_slot = slot->second ? std::optional<uint32_t>(slot->first) : std::nullopt;
        res.now.slot = slot->first;
        res.new_slot = slot->second;
    }
    int fd = h->fd.get();
    crash_point("map");
    if (bpf_map_update_elem(in.jt_fd(), &key, &fd, BPF_ANY) != 0) {
        int err = errno;
        if (new_slot) release_slot(in, key);
        if (err == EINVAL)
            if (auto r = check_compatible(in, *h); !r) return propagate(r);
        if (err == EINVAL)
            return worded(fail("map set",
                               "the kernel refused " + h->display +
                                   " for this jump table (program type, expected attach "
                                   "type, frags flag or JIT status differ)",
                               "", err),
                          Reason::see_handlers_that_fit);
        return fail_errno("map set", err);
    }
    crash_point("map");
    path_back.commit();
    res.changed = true;
    return res;
}

Result<DelResult> del_keys(const Instance& in, const std::vector<uint32_t>& keys, bool release_slots) {
    DelResult res;
    res.kind = in.kind().key;
    auto pins = pins_by_id(in);
    // Hold every program being unwired, so that a failure can put it back.
    std::vector<std::pair<uint32_t, UniqueFd>> taken;
    Rollback undo;
    undo.push([&] {
        for (auto& [key, fd] : taken) {
            int f = fd.get();
            bpf_map_update_elem(in.jt_fd(), &key, &f, BPF_ANY);
        }
    });
    for (uint32_t key : keys) {
        auto cur = wired_prog_id(in, key);
        if (!cur) return propagate(cur);
        if (!*cur) {
            res.not_wired.push_back(key);
            continue;
        }
        auto fd = prog_fd_by_id(**cur);
        if (!fd) return propagate(fd);
        if (bpf_map_delete_elem(in.jt_fd(), &key) != 0 && errno != ENOENT)
            return fail_errno(fmt::format("map del {}", key), errno);
        res.removed.push_back(describe(in.kind().key, key, **cur, pins, in.paths().dir));
        taken.emplace_back(key, std::move(*fd));
    }
    undo.commit();
    for (const auto& [key, fd] : taken) handler_paths::forget(in.paths().dir, key);
    // Ports give their counter slot back (their packets count as other ports).
    if (in.kind().key == KeyKind::port && release_slots)
        for (const auto& [key, fd] : taken) release_slot(in, key);
    return res;
}

}  // namespace tcd
