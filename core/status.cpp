#include "core/status.h"
#include "core/ownership.h"

#include <algorithm>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/bpffs.h"
#include "core/reasons.h"
#include "core/specialise.h"
#include "core/keys.h"
#include "core/lock.h"
#include "core/tree.h"
#include "tcd/shared.h"

namespace tcd {

std::vector<HandlerInfo> list_handlers(const Instance& in, const std::vector<WiredEntry>& wiring) {
    std::vector<HandlerInfo> out;
    const auto& builtins = builtin_handlers();
    for (auto& p : pinned_programs(in.paths().dir)) {
        if (p.name == TCD_PROG_DISPATCH || p.name == TCD_PROG_TC_DISPATCH) continue;
        HandlerInfo h;
        h.name = p.name;
        h.prog_id = p.info.id;
        h.tag = p.info.tag;
        h.type = prog_type_name(p.info.type);
        h.loaded_at = boot_ns_to_unix(p.info.load_time_ns);
        h.builtin = std::find(builtins.begin(), builtins.end(), p.name) != builtins.end();
        for (const auto& w : wiring)
            if (w.prog_id == p.info.id) h.keys.push_back(w.key);
        out.push_back(std::move(h));
    }
    return out;
}

namespace {

std::vector<TreeLink> links(const tree::Graph& g, const std::string& dir, bool up, std::vector<std::string>& path) {
    std::vector<TreeLink> out;
    if (std::find(path.begin(), path.end(), dir) != path.end()) return out;  // a loop: shown once
    path.push_back(dir);
    for (const auto& e : up ? g.parents_of(dir) : g.children_of(dir)) {
        const tree::Node* keyed = g.find(e.parent);
        TreeLink l;
        l.instance = up ? e.parent : e.child;
        l.key = e.key;
        l.key_name = keyed ? key_name(keyed->kind.key, e.key) : "";
        l.next = links(g, l.instance, up, path);
        out.push_back(std::move(l));
    }
    path.pop_back();
    return out;
}

}  // namespace

Result<Status> gather_status(const std::string& dir, bool scan) {
    Status st;
    st.pin_dir = dir;
    if (!bpffs::exists(dir)) return st;
    if (!bpffs::is_bpffs(dir)) {
        st.problems.push_back(finding(dir + " is not on a bpffs"));
        return st;
    }
    Paths paths{dir};
    const DirCheck owner = inspect_pin_dir(dir);
    if (owner.owner == DirOwner::foreign && !Instance::is_loaded(dir)) {
        // Worded, "FOUND; tcd leaves it alone (HINT)".
        st.problems.push_back(finding(owner.found + "; tcd leaves it alone", owner.fix, owner.fix_args));
        return st;
    }
    if (!Instance::is_loaded(dir)) {
        std::vector<std::string> left = bpffs::list_pins(dir);
        for (const auto& m : bpffs::list_pins(paths.maps_dir())) left.push_back("maps/" + m);
        if (!left.empty())
            st.problems.push_back(finding("half-made instance (no dispatcher pinned)", Reason::unload_removes));
        else
            st.problems.push_back(finding("an empty instance directory (an interrupted load?)", Reason::unload_removes));
        return st;
    }
    auto in = Instance::open(dir);
    if (!in) {
        st.problems.push_back(in.error());
        return st;
    }
    st.loaded = true;
    st.kind = in->kind();
    const ProgInfo& d = in->dispatcher();
    st.dispatcher = DispatcherStatus{d.id,
                                     d.tag,
                                     miss_action_name(in->miss_action()),
                                     boot_ns_to_unix(d.load_time_ns),
                                     d.verified_insns,
                                     d.xlated_len,
                                     d.jited_len,
                                     {}};
    // A port instance: the ports tcd wired have a counter slot, so only
    // their jump-table entries are read (not all 65,536); --scan reads every
    // entry, and finds ports wired by hand (docs/datapath.md).
    auto wiring = list_wiring(*in, in->kind().key == KeyKind::port && !scan);
    if (!wiring) return propagate(wiring);
    st.wired = std::move(*wiring);
    if (auto mon = read_monitor_build(d); mon && *mon) st.dispatcher->monitoring = true;
    auto live = read_direct_keys(d);
    if (live) {
        for (const auto& k : *live) st.dispatcher->direct_keys.push_back(k.key);
        std::vector<WiredEntry> counted;
        for (const auto& w : st.wired)
            if (in->kind().key == KeyKind::proto || w.slot) counted.push_back(w);
        auto want = choose_direct(in->kind().key, counted);
        if (want != *live) {
            std::string keys;
            for (const auto& k : want)
                if (std::none_of(live->begin(), live->end(), [&](auto& l) { return l == k; }))
                    keys += " " + std::to_string(k.key);
            st.problems.push_back(finding("the dispatcher is not specialised to the wiring" +
                                              (keys.empty() ? std::string() : " (not direct:" + keys + ")"),
                                          Reason::respecialise));
        }
    } else {
        st.problems.push_back(live.error());
    }
    st.handlers = list_handlers(*in, st.wired);
    st.attached = attachments(*in);
    // Its tree is on its hook; its own wiring is the one just read.
    std::vector<std::pair<uint32_t, uint32_t>> own;
    for (const auto& w : st.wired) own.emplace_back(w.key, w.prog_id);
    if (auto g = tree::scan({dir}, {in->kind().hook, dir, own, scan})) {
        std::string me = InstanceLock::canonical_dir(dir);
        if (scan) {
            // Links with no record: made by hand, which the other commands
            // do not see (docs/datapath.md, "Instance trees").
            auto recs = tree::records(me);
            auto recorded = [&](bool up, const std::string& other, uint32_t key) {
                return std::any_of(recs.begin(), recs.end(), [&](const tree::Record& r) {
                    return r.up == up && r.other == other && r.key == key;
                });
            };
            for (const auto& e : g->parents_of(me))
                if (!recorded(true, e.parent, e.key)) {
                    const tree::Node* pn = g->find(e.parent);
                    std::string key = pn ? key_name(pn->kind.key, e.key) : "";
                    if (key.empty()) key = std::to_string(e.key);
                    st.problems.push_back(
                        finding(fmt::format("{} key {} wires this instance without tcd's record (wired by hand?)",
                                            e.parent, key),
                                Reason::rewire_in, {e.parent}));
                }
            for (const auto& e : g->children_of(me))
                if (!recorded(false, e.child, e.key)) {
                    std::string key = key_name(in->kind().key, e.key);
                    if (key.empty()) key = std::to_string(e.key);
                    st.problems.push_back(finding(
                        fmt::format("key {} wires {} without tcd's record (wired by hand?)", key, e.child),
                        Reason::rewire));
                }
        }
        std::vector<std::string> path;
        st.parents = links(*g, me, true, path);
        st.children = links(*g, me, false, path);
        // A parent still at an earlier dispatcher of this instance (a
        // load --force killed, or one by a tcd that did not move parents).
        for (const auto& e : g->parents_of(me))
            if (e.prog_id != d.id && tree::is_dispatcher(e.prog_id)) {
                const tree::Node* pn = g->find(e.parent);
                std::string key = pn ? key_name(pn->kind.key, e.key) : "";
                if (key.empty()) key = std::to_string(e.key);
                st.problems.push_back(
                    finding(fmt::format("{} key {} still wires an earlier dispatcher of this instance (prog id {})",
                                        e.parent, key, e.prog_id),
                            Reason::parent_behind, {e.parent, key, std::to_string(e.prog_id)}));
            }
        auto a = tree::analyse(*g);
        if (!a.cycle.empty() && std::find(a.cycle.begin(), a.cycle.end(), me) != a.cycle.end()) {
            st.problems.push_back(finding(fmt::format("instances wire each other in a loop: {}", fmt::join(a.cycle, " -> "))));
        }
        if (auto d = a.depth.find(me); d != a.depth.end() && d->second > tree::kMaxTailCalls)
            st.problems.push_back(finding(fmt::format("a packet can take {} tail calls from here, the kernel allows {}",
                                                      d->second, tree::kMaxTailCalls)));
    }
    for (auto& p : stale_attachments(*in)) st.problems.push_back(std::move(p));
    if (in->attach_fd() < 0)
        st.problems.push_back(finding("maps/attach is missing; attachments in other network namespaces are not tracked"));
    if (owner.owner == DirOwner::foreign)
        st.problems.push_back(finding(owner.found, Reason::unload_refuses_foreign));
    for (const auto& name : bpffs::list_pins(dir))
        if (bpffs::is_temp_pin(name))
            st.problems.push_back(finding("leftover temporary pin " + name + " (an interrupted command)", Reason::unload_removes));
    return st;
}

}  // namespace tcd
