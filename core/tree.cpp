#include "core/tree.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <functional>
#include <set>
#include <tuple>
#include <sys/stat.h>
#include <unistd.h>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/keys.h"
#include "core/lock.h"
#include "tcd/shared.h"

namespace tcd::tree {

std::string canon(const std::string& dir) { return InstanceLock::canonical_dir(dir); }

std::string chain_text(const std::vector<std::string>& dirs) { return fmt::format("{}", fmt::join(dirs, " -> ")); }

namespace {
namespace fs = std::filesystem;

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
            const auto name = it->path().filename();
            const bool own = name == "maps" || name == "tree" || name == "links";
            if (own || it.depth() >= 3) it.disable_recursion_pending();
            if (own) continue;
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

namespace {

// The jump-table map id of each of dirs that is a loaded instance.
std::map<std::string, uint32_t> jts_of(const std::vector<std::string>& dirs) {
    std::map<std::string, uint32_t> out;
    for (const auto& d : dirs) {
        if (d.empty() || out.count(d)) continue;
        if (auto fd = bpffs::get(Paths{d}.jt()))
            if (uint32_t id = map_id(fd->get())) out.emplace(d, id);
    }
    return out;
}

bool uses_map(const ProgInfo& prog, uint32_t id) {
    return std::find(prog.map_ids.begin(), prog.map_ids.end(), id) != prog.map_ids.end();
}

// Whether prog uses a prog array named like a tcd jump table other than `known`.
bool uses_unknown_jt(const ProgInfo& prog, const std::map<std::string, uint32_t>& known) {
    for (uint32_t id : prog.map_ids) {
        if (std::any_of(known.begin(), known.end(), [id](auto& k) { return k.second == id; })) continue;
        UniqueFd fd(bpf_map_get_fd_by_id(id));
        bpf_map_info info{};
        uint32_t len = sizeof info;
        if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return true;  // unknown: walk
        if (info.type == BPF_MAP_TYPE_PROG_ARRAY && std::string(info.name) == "jt") return true;
    }
    return false;
}

std::vector<std::string> children_recorded(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& r : records(dir))
        if (!r.up && std::find(out.begin(), out.end(), r.other) == out.end()) out.push_back(r.other);
    return out;
}

}  // namespace

std::optional<std::string> instance_used_by(const ProgInfo& prog, const std::string& self) {
    std::string me = canon(self);
    for (const auto& [dir, jt] : jts_of(children_recorded(me)))
        if (dir != me && uses_map(prog, jt)) return dir;
    return std::nullopt;
}

std::vector<std::string> instances_used_by(const ProgInfo& prog, const std::string& self,
                                           const std::vector<std::string>& near) {
    std::string me = canon(self);
    std::vector<std::string> ask = {me};
    for (const auto& n : near)
        if (!n.empty()) ask.push_back(canon(n));
    auto jts = jts_of(ask);
    if (uses_unknown_jt(prog, jts)) jts = instance_jts({self});
    std::vector<std::string> out;
    for (const auto& [dir, jt] : jts)
        if (dir != me && uses_map(prog, jt)) out.push_back(dir);
    return out;
}

namespace {

constexpr const char* kTreeDir = "tree";

std::string tree_dir(const std::string& dir) { return dir + "/" + kTreeDir; }

// FNV-1a of the other instance's dir: records for two instances at one key
// differ in name.
std::string dir_hash(const std::string& dir) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : dir) h = (h ^ c) * 1099511628211ull;
    return fmt::format("{:016x}", h);
}

std::string record_path(const std::string& dir, bool up, uint32_t key, const std::string& other) {
    return fmt::format("{}/{}-{}-{}", tree_dir(dir), up ? "up" : "down", key, dir_hash(other));
}

Result<> put_record(const std::string& dir, bool up, uint32_t key, const std::string& other) {
    const std::string path = record_path(dir, up, key, other);
    char buf[4096];
    ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n >= 0 && std::string(buf, static_cast<size_t>(n)) == other) return {};
    if (::mkdir(tree_dir(dir).c_str(), 0700) != 0 && errno != EEXIST)
        return fail_errno("record the link in " + tree_dir(dir), errno);
    if (auto r = bpffs::put_symlink(path, other, "record the link " + path); !r) return r;
    crash_point("record");
    return {};
}

}  // namespace

std::vector<Record> records(const std::string& dir0) {
    const std::string dir = canon(dir0);
    std::vector<Record> out;
    for (const auto& name : bpffs::list_pins(tree_dir(dir))) {
        Record r;
        std::string rest;
        if (name.rfind("up-", 0) == 0) r.up = true, rest = name.substr(3);
        else if (name.rfind("down-", 0) == 0) rest = name.substr(5);
        else continue;  // a temporary one, or not tcd's
        auto dash = rest.find('-');
        if (dash == std::string::npos || dash == 0) continue;
        try {
            r.key = static_cast<uint32_t>(std::stoul(rest.substr(0, dash)));
        } catch (...) {
            continue;
        }
        r.path = tree_dir(dir) + "/" + name;
        char buf[4096];
        ssize_t n = ::readlink(r.path.c_str(), buf, sizeof buf);
        if (n <= 0) continue;
        r.other.assign(buf, static_cast<size_t>(n));
        out.push_back(std::move(r));
    }
    return out;
}

std::optional<uint32_t> link_holds(const std::string& parent, uint32_t key, const std::string& child) {
    auto pjt = bpffs::get(Paths{parent}.jt());
    if (!pjt) return std::nullopt;
    uint32_t id = 0;
    if (bpf_map_lookup_elem(pjt->get(), &key, &id) != 0 || !id) return std::nullopt;
    auto cjt = bpffs::get(Paths{child}.jt());
    if (!cjt) return std::nullopt;
    uint32_t cid = map_id(cjt->get());
    auto fd = prog_fd_by_id(id);
    if (!fd) return std::nullopt;
    auto info = prog_info(fd->get());
    if (!info || !cid || !uses_map(*info, cid)) return std::nullopt;
    return id;
}

Result<> record(const std::string& parent0, uint32_t key, const std::string& child0) {
    const std::string parent = canon(parent0), child = canon(child0);
    if (auto r = put_record(parent, false, key, child); !r) return r;
    return put_record(child, true, key, parent);
}

void prune(const std::string& dir0) {
    const std::string dir = canon(dir0);
    for (const auto& r : records(dir)) {
        const std::string& parent = r.up ? r.other : dir;
        const std::string& child = r.up ? dir : r.other;
        if (link_holds(parent, r.key, child)) continue;
        // The child's `up` first, then the parent's `down` (a kill in
        // between leaves a `down` that the next prune checks again).
        (void)::unlink(record_path(child, true, r.key, parent).c_str());
        crash_point("record");
        (void)::unlink(record_path(parent, false, r.key, child).c_str());
    }
    for (const auto& name : bpffs::list_pins(tree_dir(dir)))
        if (bpffs::is_temp_pin(name)) (void)::unlink((tree_dir(dir) + "/" + name).c_str());
    (void)::rmdir(tree_dir(dir).c_str());  // when empty
}

Result<Graph> scan(const std::vector<std::string>& also, const ScanScope& scope) {
    const std::string unread = scope.unread.empty() ? std::string() : canon(scope.unread);
    Graph g;
    std::map<uint32_t, std::string> by_jt;
    struct Open {
        UniqueFd jt;
    };
    std::vector<Open> open;
    auto add = [&](const std::string& dir) -> bool {
        if (g.find(dir)) return false;
        auto kind = pinned_kind(dir);
        if (!kind) return false;
        if (scope.hook && kind->hook != *scope.hook) return false;
        Paths p{dir};
        auto jt = bpffs::get(p.jt());
        auto disp = bpffs::get(p.dispatcher(kind->hook));
        if (!jt || !disp) return false;  // half made: no wiring to follow
        Node n;
        n.dir = dir;
        n.kind = *kind;
        n.jt_id = map_id(jt->get());
        if (auto info = prog_info(disp->get())) n.dispatcher_id = info->id;
        by_jt.emplace(n.jt_id, dir);
        g.nodes.push_back(std::move(n));
        open.push_back({std::move(*jt)});
        return true;
    };
    if (scope.full) {
        for (const auto& dir : instance_dirs(also)) add(dir);
    } else {
        // The instances linked to those asked about, through their records
        // (each checked by one lookup in the parent's jump table).
        std::vector<std::string> todo;
        for (const auto& a : also) todo.push_back(canon(a));
        while (!todo.empty()) {
            std::string dir = todo.back();
            todo.pop_back();
            if (!add(dir)) continue;
            for (const auto& r : records(dir)) {
                if (g.find(r.other)) continue;
                if (r.up ? link_holds(r.other, r.key, dir) : link_holds(dir, r.key, r.other))
                    todo.push_back(r.other);
            }
        }
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

Result<> check_wiring(const Instance& parent, uint32_t key, const Handler& h, bool known_wired) {
    const std::string me = canon(parent.paths().dir);
    const std::string what = fmt::format("map set {}", key);
    // The instances the program enters: asked of this one and of the one the
    // handler names (bpffs is walked only for a jump table neither owns).
    std::vector<std::string> enters;
    bool self_chain = false;
    {
        auto jts = jts_of({me});
        auto it = jts.find(me);
        self_chain = it != jts.end() && uses_map(h.info, it->second);
    }
    enters = instances_used_by(h.info, me, {h.instance});
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
        if (known_wired) return {};
        auto wired = has_wiring(parent, key);
        if (!wired) return propagate(wired, what);
        if (*wired) return {};
    }

    std::vector<std::string> start = {parent.paths().dir};
    start.insert(start.end(), enters.begin(), enters.end());
    auto g = scan(start, {parent.kind().hook, {}, std::nullopt});
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

Result<std::vector<Edge>> parents(const std::string& dir, bool full) {
    const std::string me = canon(dir);
    if (full) {
        auto kind = pinned_kind(dir);
        auto g = scan({dir}, {kind ? std::optional<Hook>(kind->hook) : std::nullopt, dir, std::nullopt, true});
        if (!g) return propagate(g);
        return g->parents_of(me);
    }
    std::vector<Edge> out;
    for (const auto& r : records(me))
        if (r.up)
            if (auto id = link_holds(r.other, r.key, me)) out.push_back({r.other, r.key, me, *id});
    std::sort(out.begin(), out.end(),
              [](const Edge& a, const Edge& b) { return std::tie(a.parent, a.key) < std::tie(b.parent, b.key); });
    return out;
}

Result<std::vector<std::string>> parent_dirs(const std::string& dir) {
    auto ps = parents(dir);
    if (!ps) return propagate(ps);
    std::set<std::string> out;
    for (const auto& e : *ps) out.insert(e.parent);
    return std::vector<std::string>(out.begin(), out.end());
}

}  // namespace tcd::tree
