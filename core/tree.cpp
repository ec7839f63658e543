#include "core/tree.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fmt/format.h>
#include <functional>
#include <set>

#include "core/bpffs.h"
#include "core/keys.h"
#include "core/lock.h"
#include "tcd/shared.h"

namespace tcd::tree {
namespace {
namespace fs = std::filesystem;

std::string canon(const std::string& dir) { return InstanceLock::canonical_dir(dir); }

uint32_t map_id(int fd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
    return info.id;
}

// Directories that hold a tcd dispatcher pin, canonical, sorted.
std::vector<std::string> instance_dirs(const std::vector<std::string>& also) {
    std::set<std::string> out;
    std::vector<std::string> roots = {bpffs::kMountPoint};
    for (const auto& a : also) {
        std::string c = canon(a);
        if (pinned_kind(c)) out.insert(c);
        std::string parent = fs::path(c).parent_path().string();
        if (!parent.empty() && bpffs::is_bpffs(parent)) roots.push_back(parent);
    }
    for (const auto& root : roots) {
        std::error_code ec;
        if (!fs::is_directory(root, ec)) continue;
        if (pinned_kind(root)) out.insert(canon(root));
        fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
        for (; !ec && it != end; it.increment(ec)) {
            if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
            if (it->path().filename() == "maps" || it.depth() >= 3) it.disable_recursion_pending();
            if (it->path().filename() == "maps") continue;
            std::string d = it->path().string();
            if (pinned_kind(d)) out.insert(canon(d));
        }
    }
    return {out.begin(), out.end()};
}

// Every wired key of a jump table, in key order: (key, program id), one
// lookup per key (a prog array has no batch lookup). (Threads sharing out
// the keys were measured slower on a busy 2-CPU machine, and dropped.)
Result<std::vector<std::pair<uint32_t, uint32_t>>> read_wires(int fd, uint32_t last, const std::string& what) {
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (uint32_t key = 0; key <= last; key++) {
        uint32_t id = 0;
        if (bpf_map_lookup_elem(fd, &key, &id) != 0) {
            if (errno == ENOENT) continue;
            return fail_errno(fmt::format("read {} key {}", what, key), errno);
        }
        if (id) out.emplace_back(key, id);
    }
    return out;
}

std::string chain_text(const std::vector<std::string>& dirs) {
    std::string s;
    for (const auto& d : dirs) s += (s.empty() ? "" : " -> ") + d;
    return s;
}

}  // namespace

const Node* Graph::find(const std::string& dir) const {
    for (const auto& n : nodes)
        if (n.dir == dir) return &n;
    return nullptr;
}

Node* Graph::find(const std::string& dir) {
    for (auto& n : nodes)
        if (n.dir == dir) return &n;
    return nullptr;
}

std::vector<Edge> Graph::edges() const {
    std::vector<Edge> out;
    for (const auto& n : nodes)
        for (const auto& w : n.wires)
            for (const auto& u : w.uses)
                if (u != n.dir) out.push_back({n.dir, w.key, u, w.prog_id});
    return out;
}

std::vector<Edge> Graph::parents_of(const std::string& dir) const {
    std::vector<Edge> out;
    for (auto& e : edges())
        if (e.child == dir) out.push_back(e);
    return out;
}

std::vector<Edge> Graph::children_of(const std::string& dir) const {
    std::vector<Edge> out;
    for (auto& e : edges())
        if (e.parent == dir) out.push_back(e);
    return out;
}

Analysis analyse(const Graph& g) {
    Analysis a;
    std::map<std::string, int> state;  // 0 new, 1 on the stack, 2 done
    std::map<std::string, std::string> next;  // the child along the deepest chain
    std::vector<std::string> stack;
    std::function<int(const Node&)> visit = [&](const Node& n) -> int {
        if (state[n.dir] == 2) return a.depth[n.dir];
        if (state[n.dir] == 1) {
            if (a.cycle.empty()) {
                auto it = std::find(stack.begin(), stack.end(), n.dir);
                a.cycle.assign(it, stack.end());
                a.cycle.push_back(n.dir);
            }
            return 0;
        }
        state[n.dir] = 1;
        stack.push_back(n.dir);
        int d = 0;
        if (!n.wires.empty()) {
            std::set<uint32_t> chaining;
            int deepest = 0;
            for (const auto& w : n.wires)
                for (const auto& u : w.uses) {
                    if (u == n.dir) {
                        chaining.insert(w.prog_id);
                        continue;
                    }
                    const Node* c = g.find(u);
                    if (!c) continue;
                    int cd = visit(*c);
                    if (cd > deepest || !next.count(n.dir)) deepest = std::max(deepest, cd), next[n.dir] = u;
                }
            d = 1 + static_cast<int>(chaining.size()) + deepest;
        }
        stack.pop_back();
        state[n.dir] = 2;
        a.depth[n.dir] = d;
        return d;
    };
    for (const auto& n : g.nodes) visit(n);
    for (const auto& [dir, d] : a.depth)
        if (d > a.max_depth || a.deepest.empty()) {
            a.max_depth = d;
            a.deepest = {dir};
        }
    if (!a.deepest.empty()) {
        std::set<std::string> seen;
        for (auto it = next.find(a.deepest.front()); it != next.end() && seen.insert(it->second).second;
             it = next.find(it->second))
            a.deepest.push_back(it->second);
    }
    return a;
}

std::map<std::string, uint32_t> instance_jts(const std::vector<std::string>& also) {
    std::map<std::string, uint32_t> out;
    for (const auto& dir : instance_dirs(also))
        if (auto fd = bpffs::get(Paths{dir}.jt()))
            if (uint32_t id = map_id(fd->get())) out.emplace(dir, id);
    return out;
}

std::optional<std::string> instance_used_by(const ProgInfo& prog, const std::string& self) {
    std::string me = canon(self);
    for (const auto& [dir, jt] : instance_jts({self}))
        if (dir != me && std::find(prog.map_ids.begin(), prog.map_ids.end(), jt) != prog.map_ids.end()) return dir;
    return std::nullopt;
}

std::vector<std::string> instances_used_by(const ProgInfo& prog, const std::string& self) {
    std::string me = canon(self);
    std::vector<std::string> out;
    for (const auto& [dir, jt] : instance_jts({self}))
        if (dir != me && std::find(prog.map_ids.begin(), prog.map_ids.end(), jt) != prog.map_ids.end())
            out.push_back(dir);
    return out;
}

Result<Graph> scan(const std::vector<std::string>& also, const ScanScope& scope) {
    const std::string unread = scope.unread.empty() ? std::string() : canon(scope.unread);
    Graph g;
    std::map<uint32_t, std::string> by_jt;
    struct Open {
        UniqueFd jt;
    };
    std::vector<Open> open;
    for (const auto& dir : instance_dirs(also)) {
        auto kind = pinned_kind(dir);
        if (!kind) continue;
        if (scope.hook && kind->hook != *scope.hook) continue;
        Paths p{dir};
        auto jt = bpffs::get(p.jt());
        auto disp = bpffs::get(p.dispatcher(kind->hook));
        if (!jt || !disp) continue;  // half made: no wiring to follow
        Node n;
        n.dir = dir;
        n.kind = *kind;
        n.jt_id = map_id(jt->get());
        if (auto info = prog_info(disp->get())) n.dispatcher_id = info->id;
        by_jt.emplace(n.jt_id, dir);
        g.nodes.push_back(std::move(n));
        open.push_back({std::move(*jt)});
    }
    std::map<uint32_t, std::vector<std::string>> uses_of;  // prog id -> instances it enters
    auto uses = [&](uint32_t id) -> const std::vector<std::string>& {
        auto it = uses_of.find(id);
        if (it != uses_of.end()) return it->second;
        std::vector<std::string> u;
        if (auto fd = prog_fd_by_id(id))
            if (auto info = prog_info(fd->get()))
                for (uint32_t m : info->map_ids)
                    if (auto b = by_jt.find(m); b != by_jt.end()) u.push_back(b->second);
        return uses_of.emplace(id, std::move(u)).first->second;
    };
    for (size_t i = 0; i < g.nodes.size(); i++) {
        Node& n = g.nodes[i];
        if (n.dir == unread) {
            // Its wiring as the caller read it, if it did.
            if (scope.unread_wires)
                for (auto [key, id] : *scope.unread_wires) n.wires.push_back({key, id, uses(id)});
            continue;
        }
        auto wires = read_wires(open[i].jt.get(), max_key(n.kind.key), Paths{n.dir}.jt());
        if (!wires) return propagate(wires);
        for (auto [key, id] : *wires) n.wires.push_back({key, id, uses(id)});
    }
    return g;
}

namespace {

// Whether anything is wired in the instance's jump table: `key` first (a
// rewiring), then from key 0 up to the first hit.
Result<bool> has_wiring(const Instance& in, uint32_t key) {
    uint32_t id = 0;
    if (bpf_map_lookup_elem(in.jt_fd(), &key, &id) == 0 && id) return true;
    for (uint32_t k = 0; k <= max_key(in.kind().key); k++) {
        if (bpf_map_lookup_elem(in.jt_fd(), &k, &id) == 0 && id) return true;
        if (errno != ENOENT) return fail_errno(fmt::format("read {} key {}", in.paths().jt(), k), errno);
    }
    return false;
}

}  // namespace

bool is_dispatcher(uint32_t prog_id) {
    auto fd = prog_fd_by_id(prog_id);
    if (!fd) return false;
    auto info = prog_info(fd->get());
    return info && (info->name == TCD_PROG_DISPATCH || info->name == TCD_PROG_TC_DISPATCH);
}

Result<> check_wiring(const Instance& parent, uint32_t key, const Handler& h) {
    const std::string me = canon(parent.paths().dir);
    const std::string what = fmt::format("map set {}", key);
    // A cheap first look: does the program enter another instance at all?
    // Only a program that uses a prog array can; the instances are walked
    // for the others only.
    bool prog_array = false;
    for (uint32_t id : h.info.map_ids) {
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        bpf_map_info info{};
        uint32_t len = sizeof info;
        if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 || info.type == BPF_MAP_TYPE_PROG_ARRAY) {
            prog_array = true;  // or unknown: walk
            break;
        }
    }
    std::map<std::string, uint32_t> jts;
    if (prog_array || !h.instance.empty())
        jts = instance_jts({parent.paths().dir, h.instance.empty() ? me : h.instance});
    std::vector<std::string> enters;
    bool self_chain = false;
    for (const auto& [dir, jt] : jts)
        if (std::find(h.info.map_ids.begin(), h.info.map_ids.end(), jt) != h.info.map_ids.end()) {
            if (dir == me) self_chain = true;
            else enters.push_back(dir);
        }
    for (const auto& dir : enters) {
        auto child = pinned_kind(dir);
        if (!child) return fail(what, dir + " is not loaded", "load it first");
        if (child->hook != parent.kind().hook)
            return fail(what,
                        fmt::format("{} is a {} instance, this one is on {}", dir, hook_name(child->hook),
                                    hook_name(parent.kind().hook)),
                        "a child instance must be on the same hook as its parent");
        if (auto in = Instance::open(dir); !in) return propagate(in, what);
    }
    // A plain handler (no other instance entered, no chaining): no loop can
    // come of it, and the depth of this instance (so of its parents) stays
    // or falls when it had something wired already.
    if (enters.empty() && !self_chain) {
        auto wired = has_wiring(parent, key);
        if (!wired) return propagate(wired, what);
        if (*wired) return {};
    }

    auto g = scan({parent.paths().dir}, {parent.kind().hook, {}, std::nullopt});
    if (!g) return propagate(g);
    Analysis before = analyse(*g);
    Node* node = g->find(me);
    if (!node) return {};  // not found on the walk: nothing to compare against
    std::vector<std::string> uses = enters;
    if (self_chain) uses.push_back(me);
    auto it = std::find_if(node->wires.begin(), node->wires.end(), [&](const Wire& w) { return w.key == key; });
    if (it != node->wires.end()) *it = Wire{key, h.info.id, uses};
    else node->wires.push_back(Wire{key, h.info.id, uses});
    Analysis after = analyse(*g);
    if (!after.cycle.empty() && before.cycle.empty())
        return fail(what, fmt::format("wiring {} here makes a loop: {}", h.display, chain_text(after.cycle)),
                    "an instance cannot wire one of its parents");
    if (after.max_depth > kMaxTailCalls - kEntryTailCalls && after.max_depth > before.max_depth)
        return fail(what,
                    fmt::format("a packet could then take {} tail calls ({}), the kernel allows {} ({} kept for "
                                "tcd's entry into libxdp's dispatcher)",
                                after.max_depth, chain_text(after.deepest), kMaxTailCalls, kEntryTailCalls),
                    "flatten the tree, or chain fewer handlers");
    return {};
}

Result<std::vector<Edge>> parents(const std::string& dir) {
    auto kind = pinned_kind(dir);
    auto g = scan({dir}, {kind ? std::optional<Hook>(kind->hook) : std::nullopt, dir, std::nullopt});
    if (!g) return propagate(g);
    return g->parents_of(canon(dir));
}

Result<std::vector<std::string>> parent_dirs(const std::string& dir) {
    auto ps = parents(dir);
    if (!ps) return propagate(ps);
    std::set<std::string> out;
    for (const auto& e : *ps) out.insert(e.parent);
    return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace tcd::tree
