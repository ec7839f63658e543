#include "core/apply.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fmt/format.h>
#include <set>

#include "core/attach.h"
#include "core/bpffs.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lifecycle.h"
#include "core/progs.h"
#include "core/status.h"

namespace tcd {
namespace {

tl::unexpected<Error> bad(const std::string& path, const YAML::Node& n, const std::string& why) {
    std::string where = n.Mark().is_null() ? path : fmt::format("{} line {}", path, n.Mark().line + 1);
    return usage_error("apply " + where, why, "see the example in deploy/tcd.yaml");
}

Result<std::string> scalar(const std::string& path, const YAML::Node& n, const char* field) {
    if (!n.IsScalar()) return bad(path, n, std::string(field) + " must be a single value");
    return n.as<std::string>();
}

}  // namespace

Result<Desired> read_desired(const std::string& path) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        return fail("apply " + path, "cannot read the file", "", ENOENT);
    } catch (const YAML::Exception& e) {
        return usage_error(fmt::format("apply {} line {}", path, e.mark.line + 1), e.msg);
    }
    if (!root.IsMap()) return bad(path, root, "the top level must be a mapping (key: value lines)");
    Desired d;
    static const std::set<std::string> known = {"pin_dir", "key", "hook", "miss_action", "handlers", "wiring", "interfaces"};
    for (const auto& kv : root) {
        std::string k = kv.first.as<std::string>();
        if (!known.count(k)) return bad(path, kv.first, "unknown field " + k);
    }
    try {
        if (root["pin_dir"]) d.pin_dir = root["pin_dir"].as<std::string>();
        if (root["key"]) {
            auto k = parse_key_kind(root["key"].as<std::string>());
            if (!k) return bad(path, root["key"], "key must be proto or port");
            d.kind.key = *k;
        }
        if (root["hook"]) {
            auto h = parse_hook(root["hook"].as<std::string>());
            if (!h) return bad(path, root["hook"], "hook must be xdp or tc");
            d.kind.hook = *h;
        }
        if (root["miss_action"]) {
            std::string m = root["miss_action"].as<std::string>();
            auto miss = parse_miss_action(m, d.kind.hook);
            if (!miss)
                return bad(path, root["miss_action"],
                           d.kind.hook == Hook::tc ? "miss_action must be pass, drop or next"
                                                   : "miss_action must be pass or drop (next is for hook: tc)");
            d.miss = *miss;
        } else {
            d.miss = default_miss_action(d.kind.hook);
        }
        if (const auto& hs = root["handlers"]) {
            if (!hs.IsSequence()) return bad(path, hs, "handlers must be a list");
            for (const auto& h : hs) {
                DesiredHandler dh;
                if (!h["object"]) return bad(path, h, "a handler needs object: FILE");
                auto obj = scalar(path, h["object"], "object");
                if (!obj) return propagate(obj);
                dh.object = *obj;
                if (const auto& ps = h["progs"]) {
                    if (!ps.IsSequence()) return bad(path, ps, "progs must be a list of program names");
                    for (const auto& p : ps) dh.progs.push_back(p.as<std::string>());
                }
                d.handlers.push_back(std::move(dh));
            }
        }
        if (const auto& w = root["wiring"]) {
            if (!w.IsMap()) return bad(path, w, "wiring must map keys to handlers (tcp: tcp_handler)");
            for (const auto& kv : w) {
                std::string key = kv.first.as<std::string>();
                if (auto k = parse_key(key, d.kind.key); !k)
                    return bad(path, kv.first, k.error().message());
                if (auto h = parse_handler_spec(kv.second.as<std::string>()); !h)
                    return bad(path, kv.second, h.error().message());
                d.wiring[key] = kv.second.as<std::string>();
            }
        }
        if (const auto& is = root["interfaces"]) {
            if (!is.IsSequence()) return bad(path, is, "interfaces must be a list");
            for (const auto& i : is) {
                DesiredInterface di;
                if (i.IsScalar()) {
                    di.name = i.as<std::string>();
                } else {
                    if (!i["name"]) return bad(path, i, "an interface needs name: IFACE");
                    di.name = i["name"].as<std::string>();
                    if (i["netns"]) di.netns = i["netns"].as<std::string>();
                    if (i["mode"]) di.mode = i["mode"].as<std::string>();
                    if (i["direction"]) di.direction = i["direction"].as<std::string>();
                }
                if (auto m = parse_xdp_mode(di.mode); !m) return bad(path, i, m.error().message());
                if (d.kind.hook == Hook::tc && di.direction.empty()) di.direction = "ingress";
                if (d.kind.hook == Hook::xdp && !di.direction.empty())
                    return bad(path, i, "direction is for hook: tc");
                if (!di.direction.empty() && di.direction != "ingress" && di.direction != "egress")
                    return bad(path, i, "direction must be ingress or egress");
                d.interfaces.push_back(std::move(di));
            }
        }
    } catch (const YAML::Exception& e) {
        return usage_error(fmt::format("apply {} line {}", path, e.mark.line + 1), e.msg);
    }
    return d;
}

namespace {

// A step's outcome without the value of what it ran.
template <typename T>
Result<> outcome(const Result<T>& r) {
    if (!r) return propagate(r);
    return {};
}

// A step on the instance as it is when the step runs (an earlier step may
// have loaded it or loaded it again).
template <typename Act>
Change on_instance(std::string what, const std::string& dir, Act act) {
    return {std::move(what), [dir, act]() -> Result<> {
                auto in = Instance::open(dir);
                if (!in) return propagate(in);
                return act(*in);
            }};
}

// 1. The instance itself: loaded when missing, unloaded and loaded again when
// of another kind, reloaded for another miss action. The instance that is
// there and stays (with its handlers, wiring and attachments), or nullopt.
Result<std::optional<Instance>> plan_instance(const std::string& dir, const Desired& want,
                                              std::vector<Change>& steps) {
    const std::string miss = miss_action_name(want.miss);
    auto kind = pinned_kind(dir);
    if (kind && !(*kind == want.kind)) {
        steps.push_back({fmt::format("unload (a {} instance on {}; {} on {} is wanted)", key_kind_name(kind->key),
                                     hook_name(kind->hook), key_kind_name(want.kind.key), hook_name(want.kind.hook)),
                         [dir]() { return outcome(unload(dir)); }});
        kind.reset();
    }
    if (!kind) {
        steps.push_back({fmt::format("load --key {} --hook {} --miss-action {}", key_kind_name(want.kind.key),
                                     hook_name(want.kind.hook), miss),
                         [dir, want]() { return outcome(load(dir, {want.miss, false, want.kind})); }});
        return std::optional<Instance>();
    }
    auto in = Instance::open(dir);
    if (!in) return propagate(in);
    if (in->miss_action() != want.miss)
        steps.push_back({"load --force --miss-action " + miss,
                         [dir, want]() { return outcome(load(dir, {want.miss, true, want.kind})); }});
    return std::optional<Instance>(std::move(*in));
}

// 2. Handler objects: load the programs that are not pinned yet.
Result<> plan_handlers(const std::string& dir, const Desired& want, bool kept, std::vector<Change>& steps) {
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
        std::string what = "handler load " + h.object;
        for (const auto& m : missing) what += " --prog " + m;
        steps.push_back(on_instance(what, dir, [obj = h.object, missing](const Instance& in) {
            return outcome(load_handlers(in, obj, missing));
        }));
        for (const auto& m : missing) pinned.insert(m);
    }
    return {};
}

// 3. Wiring: exactly the keys the file names. A key is as wanted when it
// holds the very program the file's handler names (by name, bpffs path or
// id:N), compared by program id; a handler that does not exist yet (loaded
// by a step above) is compared by name.
Result<> plan_wiring(const std::string& dir, const Desired& want, const Instance* in, std::vector<Change>& steps) {
    std::map<uint32_t, std::string> current, desired;
    std::map<uint32_t, uint32_t> current_id;
    if (in) {
        auto w = list_wiring(*in);
        if (!w) return propagate(w);
        for (const auto& e : *w) current[e.key] = e.handler, current_id[e.key] = e.prog_id;
    }
    for (const auto& [text, handler] : want.wiring) desired[*parse_key(text, want.kind.key)] = handler;
    auto holds = [&](uint32_t key, const std::string& handler) {
        auto it = current.find(key);
        if (it == current.end()) return false;
        if (in) {
            auto spec = parse_handler_spec(handler);
            if (spec) {
                if (spec->kind == HandlerSpec::Kind::id) return current_id[key] == spec->id;
                if (auto h = open_handler(*spec, dir)) return current_id[key] == h->info.id;
            }
        }
        return it->second == handler;
    };
    for (const auto& [k, h] : desired) {
        if (holds(k, h)) continue;
        uint32_t key = k;  // (structured bindings cannot be captured before C++20 in clang 14)
        std::string handler = h;
        steps.push_back(on_instance(fmt::format("map set {} {}", key, handler), dir, [key, handler](const Instance& i) {
            return outcome(set_handler(i, key, *parse_handler_spec(handler)));
        }));
    }
    for (const auto& [k, handler] : current) {
        if (desired.count(k)) continue;
        uint32_t key = k;
        steps.push_back(on_instance(fmt::format("map del {} (wired to {}, not in the file)", key, handler), dir,
                                    [key](const Instance& i) { return outcome(del_keys(i, {key})); }));
    }
    return {};
}

// 4. Interfaces: attached exactly where the file says. The same place is the
// same interface, namespace and direction; the same state also the XDP mode,
// unless the file says auto. Attached in another mode: detached, then
// attached in the mode asked (and back in the old one when that fails).
Result<> plan_interfaces(const std::string& dir, const Desired& want, const Instance* in,
                         std::vector<Change>& steps) {
    std::vector<Attachment> now;
    if (in) now = attachments(*in);
    auto same_place = [](const Attachment& a, const DesiredInterface& d, const std::string& ns) {
        return a.ifname == d.name && a.netns == ns && direction_name(a.direction) == d.direction;
    };
    auto same = [&](const Attachment& a, const DesiredInterface& d, const std::string& ns) {
        return same_place(a, d, ns) && (!d.direction.empty() || d.mode == "auto" || mode_name(a.mode) == d.mode);
    };
    std::vector<std::string> wanted_ns;
    for (const auto& d : want.interfaces) {
        auto ns = resolve_netns(d.netns);
        if (!ns) return propagate(ns);
        wanted_ns.push_back(*ns);
        if (std::any_of(now.begin(), now.end(), [&](const Attachment& a) { return same(a, d, *ns); })) continue;
        auto other = std::find_if(now.begin(), now.end(), [&](const Attachment& a) { return same_place(a, d, *ns); });
        bool reattach = other != now.end();
        std::string what = "attach " + d.name + (d.netns.empty() ? "" : " --netns " + d.netns) +
                           (d.direction.empty() ? " --mode " + d.mode : " --direction " + d.direction);
        std::string was = reattach ? mode_name(other->mode) : "";
        if (reattach) what = "re-" + what + " (attached in " + was + " mode)";
        steps.push_back(on_instance(what, dir, [d, reattach, was](const Instance& i) -> Result<> {
            auto mode = parse_xdp_mode(d.mode);
            if (!mode) return propagate(mode);
            auto direction = parse_direction(d.direction);
            if (!direction) return propagate(direction);
            if (reattach)
                if (auto r = detach(i, d.name, d.netns, *direction); !r) return propagate(r);
            auto r = attach(i, {d.name, d.netns, *mode, false, *direction, std::nullopt});
            if (!r) {
                // Back where it was, in its old mode.
                if (auto old = parse_xdp_mode(was); reattach && old)
                    (void)attach(i, {d.name, d.netns, *old, false, *direction, std::nullopt});
                return propagate(r);
            }
            return {};
        }));
    }
    for (const auto& a : now) {
        bool keep = false;
        for (size_t k = 0; k < want.interfaces.size(); k++) keep |= same_place(a, want.interfaces[k], wanted_ns[k]);
        if (keep) continue;
        steps.push_back(on_instance("detach " + a.ifname + (a.netns.empty() ? "" : " --netns " + a.netns) +
                                        (a.direction == Direction::none
                                             ? ""
                                             : std::string(" --direction ") + direction_name(a.direction)) +
                                        " (not in the file)",
                                    dir, [a](const Instance& i) {
                                        return outcome(detach(i, a.ifname, a.netns, a.direction));
                                    }));
    }
    return {};
}

}  // namespace

Result<std::vector<Change>> plan(const std::string& dir, const Desired& want) {
    std::vector<Change> steps;
    auto kept = plan_instance(dir, want, steps);
    if (!kept) return propagate(kept);
    const Instance* in = *kept ? &**kept : nullptr;
    if (auto r = plan_handlers(dir, want, in != nullptr, steps); !r) return propagate(r);
    if (auto r = plan_wiring(dir, want, in, steps); !r) return propagate(r);
    if (auto r = plan_interfaces(dir, want, in, steps); !r) return propagate(r);
    return steps;
}

}  // namespace tcd
