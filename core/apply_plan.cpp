// apply, planning: the file's instances (Desired, from apply_read.cpp) and
// what bpffs and the kernel hold now -> a Plan, a list of Steps (data:
// core/apply.h), after checking the whole (names, hooks, loops, the kernel's
// 33 tail calls, on the tree the file would make). Nothing here changes
// anything; apply_exec.cpp runs the steps.
#include "core/apply.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/progs.h"
#include "core/specialise.h"
#include "core/status.h"
#include "core/tree.h"

namespace tcd {
namespace {

using tree::canon;
using tree::chain_text;

// A key's wanted handler: a handler of the instance (name, bpffs path, id:N)
// or another instance's dispatcher (child: its canonical pin dir).
struct Target {
    std::string handler;
    std::string child;
};

// What plan() knows across the instances.
struct World {
    std::map<std::string, uint32_t> dispatcher_now;  // dir -> its dispatcher's id, before any step
    std::set<std::string> touched;                   // file instances with steps
};

// 1. The instance itself: loaded when missing, unloaded and loaded again when

// 1. The instance itself: loaded when missing, unloaded and loaded again when
// of another kind, reloaded for another miss action. The instance that is
// there and stays (with its handlers, wiring and attachments), or nullopt.
Result<std::optional<Instance>> plan_instance(const std::string& dir, const Desired& want, std::vector<Step>& steps) {
    auto kind = pinned_kind(dir);
    LoadOptions load;
    load.miss = want.miss;
    load.kind = want.kind;
    if (kind && !(*kind == want.kind)) {
        // Parents that wire it are unwired first (unload --force); their own
        // steps, which come later, wire it again. This cannot be undone.
        steps.push_back({StepOp::unload, dir, UnloadStep{*kind, want.kind}});
        kind.reset();
    }
    if (!kind) {
        steps.push_back({StepOp::load, dir, load});
        return std::optional<Instance>();
    }
    auto in = Instance::open(dir);
    if (!in) return propagate(in);
    if (in->miss_action() != want.miss) {
        load.force = true;
        steps.push_back({StepOp::reload, dir, ReloadStep{load, in->miss_action()}});
    }
    return std::optional<Instance>(std::move(*in));
}

// 2. Handler objects: load the programs that are not pinned yet.
Result<> plan_handlers(const std::string& dir, const Desired& want, bool kept, std::vector<Step>& steps) {
    std::set<std::string> pinned;
    for (const auto& b : builtin_handlers()) pinned.insert(b);
    if (kept)
        for (const auto& p : pinned_programs(dir)) pinned.insert(p.name);
    for (const auto& h : want.handlers) {
        std::vector<std::string> names = h.progs;
        if (names.empty()) {
            auto all = object_programs(h.object, want.kind.hook);
            if (!all) return propagate(all);
            names = *all;
        }
        std::vector<std::string> missing;
        for (const auto& n : names)
            if (!pinned.count(n)) missing.push_back(n);
        if (missing.empty()) continue;
        steps.push_back({StepOp::handler_load, dir, HandlerLoadRequest{h.object, missing}});
        for (const auto& m : missing) pinned.insert(m);
    }
    return {};
}

// 3. Wiring: exactly the keys the file names. A key is as wanted when it
// holds the very program the file's handler names (by name, bpffs path or
// id:N), compared by program id, or the child's dispatcher that runs now; a
// handler that does not exist yet (loaded by a step above) is compared by
// name. A key wired to a child that has steps of its own gets a follow-up:
// if the child's dispatcher was replaced (respecialised, reloaded), the key
// is wired to the new one.
Result<> plan_wiring(const std::string& dir, const std::map<uint32_t, Target>& targets,
                     const Instance* in, const World& world, std::vector<Step>& steps) {
    std::map<uint32_t, std::string> current;
    std::map<uint32_t, uint32_t> current_id;
    if (in) {
        auto w = list_wiring(*in);
        if (!w) return propagate(w);
        for (const auto& e : *w) current[e.key] = e.handler, current_id[e.key] = e.prog_id;
    }
    auto holds = [&](uint32_t key, const Target& t) {
        auto it = current.find(key);
        if (it == current.end()) return false;
        if (!t.child.empty()) {
            auto d = world.dispatcher_now.find(t.child);
            return d != world.dispatcher_now.end() && current_id[key] == d->second;
        }
        if (in) {
            auto spec = parse_handler_spec(t.handler);
            if (spec) {
                if (spec->kind == HandlerSpec::Kind::id) return current_id[key] == spec->id;
                if (auto h = open_handler(*spec, dir)) return current_id[key] == h->info.id;
            }
        }
        return it->second == t.handler;
    };
    std::vector<Step> batch;
    for (const auto& [key, t] : targets) {
        if (!holds(key, t))
            batch.push_back({StepOp::wire, dir, WireRequest{key, t.handler, ""}});
        else if (!t.child.empty() && world.touched.count(t.child))
            batch.push_back({StepOp::rewire_child, dir, WireRequest{key, t.handler, t.child}});
    }
    for (const auto& [key, handler] : current)
        if (!targets.count(key)) batch.push_back({StepOp::unwire, dir, UnwireRequest{key, handler}});
    if (batch.empty() && in) {
        // The wiring is as wanted, but the dispatcher's direct jumps are not
        // the wired keys' (a command killed before its respecialise): one
        // respecialise, undone by swapping the old dispatcher back.
        auto wanted = wanted_direct(*in);
        auto live = read_direct_keys(in->dispatcher());
        if (wanted && live && *wanted != *live) {
            RespecialiseRequest r;
            for (const auto& k : *wanted) r.direct.push_back(k.key);
            batch.push_back({StepOp::respecialise, dir, std::move(r)});
        }
    }
    if (batch.empty()) return {};
    // The wiring changes batched: the last of them also loads one new
    // dispatcher for all of them, if they change the keys it reaches by
    // direct jumps (and frees the counter slots of unwired ports). Undone in
    // reverse: the keys put back, then the old dispatcher (a step of its own
    // in front of the batch, which changes nothing when it runs).
    batch.back().respecialise_after = true;
    if (in) steps.push_back({StepOp::hold_dispatcher, dir, std::monostate{}});
    for (auto& s : batch) steps.push_back(std::move(s));
    return {};
}

// 4. Interfaces: attached exactly where the file says. The same place is the
// same interface, namespace and direction; the same state also the XDP mode,
// unless the file says auto. Attached in another mode: detached, then
// attached in the mode asked (and back in the old one when that fails).
Result<> plan_interfaces(const std::string& dir, const Desired& want, const Instance* in, std::vector<Step>& steps) {
    std::vector<Attachment> now;
    if (in) now = attachments(*in);
    auto same_place = [](const Attachment& a, const DesiredInterface& d, const std::string& ns) {
        return a.ifname == d.name && a.netns == ns && a.direction == d.direction;
    };
    auto same = [&](const Attachment& a, const DesiredInterface& d, const std::string& ns) {
        return same_place(a, d, ns) &&
               (d.direction != Direction::none || d.mode == AttachMode::auto_mode || a.mode == d.mode);
    };
    std::vector<std::string> wanted_ns;
    for (const auto& d : want.interfaces) {
        auto ns = resolve_netns(d.netns);
        if (!ns) return propagate(ns);
        wanted_ns.push_back(*ns);
        // hw mode on a device without XDP offload: refused before any step runs.
        if (d.direction == Direction::none)
            if (auto r = check_xdp_mode(d.name, d.netns, d.mode); !r) return propagate(r);
        if (std::any_of(now.begin(), now.end(), [&](const Attachment& a) { return same(a, d, *ns); })) continue;
        auto other = std::find_if(now.begin(), now.end(), [&](const Attachment& a) { return same_place(a, d, *ns); });
        AttachRequest req{.ifname = d.name, .netns = d.netns, .mode = d.mode, .direction = d.direction};
        if (other != now.end())
            steps.push_back({StepOp::reattach, dir, ReattachStep{req, other->mode}});
        else
            steps.push_back({StepOp::attach, dir, req});
    }
    for (const auto& a : now) {
        bool keep = false;
        for (size_t k = 0; k < want.interfaces.size(); k++) keep |= same_place(a, want.interfaces[k], wanted_ns[k]);
        if (keep) continue;
        DetachRequest req{.ifname = a.ifname, .netns = a.netns, .all = false, .direction = a.direction};
        steps.push_back({StepOp::detach, dir, DetachStep{req, a.mode}});
    }
    return {};
}

}  // namespace

Result<std::vector<std::string>> desired_dirs(const DesiredFile& want, const std::string& default_dir) {
    std::vector<std::string> dirs;
    for (const auto& d : want.instances) {
        std::string dir = canon(d.pin_dir.value_or(default_dir));
        if (std::find(dirs.begin(), dirs.end(), dir) != dirs.end())
            return usage_error(fmt::format("apply {} line {}", want.path, d.line),
                               "two instances have the pin dir " + dir);
        dirs.push_back(dir);
    }
    return dirs;
}

Result<Plan> plan(const DesiredFile& want, const std::string& default_dir) {
    Plan p;
    auto dirs = desired_dirs(want, default_dir);
    if (!dirs) return propagate(dirs);
    p.dirs = *dirs;
    const size_t n = p.dirs.size();
    std::map<std::string, size_t> by_name, by_dir;
    for (size_t i = 0; i < n; i++) {
        const auto& d = want.instances[i];
        p.names.push_back(d.name.empty() ? p.dirs[i] : d.name);
        if (!d.name.empty()) by_name[d.name] = i;
        by_dir[p.dirs[i]] = i;
    }
    auto where = [&](size_t i) {
        return want.several ? fmt::format("apply {} ({})", want.path, p.names[i]) : "apply " + want.path;
    };

    // Every key's target; a wiring into another instance on the same hook.
    std::vector<std::map<uint32_t, Target>> targets(n);
    for (size_t i = 0; i < n; i++) {
        const auto& d = want.instances[i];
        for (const auto& [text, handler] : d.wiring) {
            Target t{handler, ""};
            auto spec = parse_handler_spec(handler);
            if (spec && spec->kind == HandlerSpec::Kind::path) {
                std::string c = canon(handler);
                if (by_dir.count(c) || pinned_kind(c)) t = {c, c};
            }
            targets[i][*parse_key(text, d.kind.key)] = t;
        }
        for (const auto& [text, name] : d.wiring_to) {
            const std::string& c = p.dirs[by_name.at(name)];
            targets[i][*parse_key(text, d.kind.key)] = {c, c};
        }
        for (const auto& [key, t] : targets[i]) {
            if (t.child.empty()) continue;
            if (t.child == p.dirs[i])
                return fail(where(i), fmt::format("key {} wires the instance to itself", key),
                            "an instance cannot wire itself");
            auto it = by_dir.find(t.child);
            std::optional<Kind> kind = it != by_dir.end() ? want.instances[it->second].kind : pinned_kind(t.child);
            if (kind && kind->hook != d.kind.hook)
                return fail(where(i),
                            fmt::format("key {} wires {}, a {} instance; this one is on {}", key, t.child,
                                        hook_name(kind->hook), hook_name(d.kind.hook)),
                            "a child instance must be on the same hook as its parent");
        }
    }

    // The tree the file would make, checked whole before anything is done:
    // the instances there now, with the file's instances wired as it says.
    // (The file's instances, the instances it wires and those linked to them.)
    std::vector<std::string> start = p.dirs;
    for (size_t i = 0; i < n; i++)
        for (const auto& [key, t] : targets[i])
            if (!t.child.empty()) start.push_back(t.child);
    auto g = tree::scan(start);
    if (!g) return propagate(g);
    World world;
    std::map<uint32_t, std::string> jt_of;
    for (const auto& node : g->nodes) {
        world.dispatcher_now[node.dir] = node.dispatcher_id;
        jt_of[node.jt_id] = node.dir;
    }
    const tree::Analysis before = tree::analyse(*g);
    uint32_t unknown = 0xf0000000u;  // ids for programs not loaded yet: distinct, never real
    for (size_t i = 0; i < n; i++) {
        tree::Node* node = g->find(p.dirs[i]);
        if (!node) {
            g->nodes.push_back(tree::Node{p.dirs[i], want.instances[i].kind, 0, 0, {}});
            node = &g->nodes.back();
        }
        node->kind = want.instances[i].kind;
        node->wires.clear();
        for (const auto& [key, t] : targets[i]) {
            tree::Wire w{key, ++unknown, {}};
            if (!t.child.empty()) {
                w.uses = {t.child};
            } else if (auto spec = parse_handler_spec(t.handler)) {
                if (auto h = open_handler(*spec, p.dirs[i])) {
                    w.prog_id = h->info.id;
                    for (uint32_t m : h->info.map_ids)
                        if (auto j = jt_of.find(m); j != jt_of.end()) w.uses.push_back(j->second);
                }
            }
            node->wires.push_back(std::move(w));
        }
    }
    // Judged: the file's instances and every instance that wires one of them
    // (an ancestor's depth grows with its children's); other instances on
    // bpffs are not the file's business.
    const tree::Analysis a = tree::analyse(*g);
    const std::string whole = "apply " + want.path;
    std::set<std::string> mine(p.dirs.begin(), p.dirs.end()), judged = mine;
    for (std::vector<std::string> todo(p.dirs.begin(), p.dirs.end()); !todo.empty();) {
        std::string d = todo.back();
        todo.pop_back();
        for (const auto& e : g->parents_of(d))
            if (judged.insert(e.parent).second) todo.push_back(e.parent);
    }
    if (!a.cycle.empty() && std::any_of(a.cycle.begin(), a.cycle.end(), [&](const std::string& d) { return judged.count(d); }))
        return fail(whole, "the wiring makes a loop: " + chain_text(a.cycle), "an instance cannot wire one of its parents");
    auto depth = [](const tree::Analysis& x, const std::string& d) {
        auto it = x.depth.find(d);
        return it == x.depth.end() ? 0 : it->second;
    };
    for (const auto& d : judged) {
        const int after = depth(a, d);
        if (after <= tree::kMaxTailCalls - tree::kEntryTailCalls || (!mine.count(d) && after <= depth(before, d))) continue;
        // The chain down from it, each time into the deepest child.
        std::vector<std::string> chain = {d};
        for (std::set<std::string> seen = {d};;) {
            std::string next;
            for (const auto& e : g->children_of(chain.back()))
                if (next.empty() || depth(a, e.child) > depth(a, next)) next = e.child;
            if (next.empty() || !seen.insert(next).second) break;
            chain.push_back(next);
        }
        return fail(whole,
                    fmt::format("a packet could then take {} tail calls ({}), the kernel allows {} ({} kept for "
                                "tcd's entry into libxdp's dispatcher)",
                                after, chain_text(chain), tree::kMaxTailCalls, tree::kEntryTailCalls),
                    "flatten the tree, or chain fewer handlers");
    }

    // An instance of another kind is unloaded and loaded again, which
    // unwires it in its parents: only in parents the file describes (and so
    // wires again).
    for (size_t i = 0; i < n; i++) {
        auto kind = pinned_kind(p.dirs[i]);
        if (!kind || *kind == want.instances[i].kind) continue;
        for (const auto& e : g->parents_of(p.dirs[i]))
            if (!mine.count(e.parent))
                return fail(where(i),
                            fmt::format("{} is wired by {} (key {}), which the file does not describe; a {} "
                                        "instance there means unloading it, which unwires it there",
                                        p.dirs[i], e.parent, e.key, key_kind_name(want.instances[i].kind.key)),
                            "unwire it in " + e.parent + " first, or describe " + e.parent + " in the file too");
    }

    // Children before parents (no loop, so this ends).
    std::vector<size_t> order;
    std::vector<int> state(n, 0);
    std::function<void(size_t)> visit = [&](size_t i) {
        if (state[i]) return;
        state[i] = 1;
        for (const auto& [key, t] : targets[i])
            if (auto it = by_dir.find(t.child); !t.child.empty() && it != by_dir.end()) visit(it->second);
        order.push_back(i);
    };
    for (size_t i = 0; i < n; i++) visit(i);

    for (size_t i : order) {
        const std::string& dir = p.dirs[i];
        const Desired& d = want.instances[i];
        const size_t from = p.steps.size();
        auto kept = plan_instance(dir, d, p.steps);
        if (!kept) return propagate(kept);
        const Instance* in = *kept ? &**kept : nullptr;
        if (auto r = plan_handlers(dir, d, in != nullptr, p.steps); !r) return propagate(r);
        if (auto r = plan_wiring(dir, targets[i], in, world, p.steps); !r) return propagate(r);
        if (auto r = plan_interfaces(dir, d, in, p.steps); !r) return propagate(r);
        for (size_t s = from; s < p.steps.size(); s++)
            if (!p.steps[s].conditional()) world.touched.insert(dir);
    }
    return p;
}

}  // namespace tcd
