#include "core/apply.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <set>

#include "core/attach.h"
#include "core/bpffs.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lifecycle.h"
#include "core/progs.h"
#include "core/specialise.h"
#include "core/status.h"
#include "core/tree.h"
#include "core/crashpoint.h"
#include "core/lock.h"

#include <bpf/bpf.h>
#include <cerrno>
#include <fmt/ranges.h>
#include <memory>

namespace tcd {
namespace {

tl::unexpected<Error> bad(const std::string& path, const YAML::Node& n, const std::string& why) {
    std::string where = n.Mark().is_null() ? path : fmt::format("{} line {}", path, n.Mark().line + 1);
    return usage_error("apply " + where, why, "see the examples deploy/tcd.yaml and, for several instances, examples/tree.yaml");
}

Result<std::string> scalar(const std::string& path, const YAML::Node& n, const char* field) {
    if (!n.IsScalar()) return bad(path, n, std::string(field) + " must be a single value");
    return n.as<std::string>();
}

// A key given twice in one mapping, anywhere in the file (YAML says keys are
// unique; yaml-cpp keeps both and a lookup finds the first): an error, not a
// silent choice.
Result<> no_duplicate_keys(const std::string& path, const YAML::Node& n) {
    if (n.IsSequence())
        for (const auto& e : n)
            if (auto r = no_duplicate_keys(path, e); !r) return r;
    if (!n.IsMap()) return {};
    std::map<std::string, YAML::Mark> seen;
    for (const auto& kv : n) {
        if (kv.first.IsScalar()) {
            std::string k = kv.first.as<std::string>();
            auto [it, fresh] = seen.emplace(k, kv.first.Mark());
            if (!fresh)
                return bad(path, kv.first,
                           fmt::format("{} given twice (also on line {})", k, it->second.line + 1));
        }
        if (auto r = no_duplicate_keys(path, kv.second); !r) return r;
    }
    return {};
}

// A step's outcome without the value of what it ran.
template <typename T>
Result<> outcome_of(const Result<T>& r) {
    if (!r) return propagate(r);
    return {};
}

}  // namespace

namespace {

// The fields of one instance, at the top level of a single-instance file or
// in an entry of instances:.
Result<> read_instance(const std::string& path, const YAML::Node& root, bool several, Desired& d) {
    static const std::set<std::string> known = {"pin_dir", "key", "hook", "miss_action", "handlers", "wiring", "interfaces"};
    for (const auto& kv : root) {
        std::string k = kv.first.as<std::string>();
        if (k == "name" && several) continue;
        if (k == "instances" && !several)
            return bad(path, kv.first, "instances: cannot go with the fields of a single instance (give each its own entry)");
        if (!known.count(k)) return bad(path, kv.first, "unknown field " + k);
    }
    if (several) {
        if (root["name"]) {
            auto n = scalar(path, root["name"], "name");
            if (!n) return propagate(n);
            if (n->empty()) return bad(path, root["name"], "name must not be empty");
            d.name = *n;
        }
        if (!root["pin_dir"]) return bad(path, root, "each entry of instances needs pin_dir: DIR");
    }
    if (root["pin_dir"]) {
        auto p = scalar(path, root["pin_dir"], "pin_dir");
        if (!p) return propagate(p);
        d.pin_dir = *p;
    }
    if (root["key"]) {
        auto k = parse_key_kind(root["key"].as<std::string>());
        if (!k) return bad(path, root["key"], "key must be " + or_list(names_of<KeyKind>()));
        d.kind.key = *k;
    }
    if (root["hook"]) {
        auto h = parse_hook(root["hook"].as<std::string>());
        if (!h) return bad(path, root["hook"], "hook must be " + or_list(names_of<Hook>()));
        d.kind.hook = *h;
    }
    if (root["miss_action"]) {
        std::string m = root["miss_action"].as<std::string>();
        auto miss = parse_miss_action(m, d.kind.hook);
        if (!miss)
            return bad(path, root["miss_action"],
                       d.kind.hook == Hook::tc
                           ? "miss_action must be " + or_list(names_of<MissAction>())
                           : "miss_action must be " +
                                 or_list(names_of<MissAction>([](MissAction a) { return a != MissAction::next; })) +
                                 " (next is for hook: tc)");
        d.miss = *miss;
    } else {
        d.miss = default_miss_action(d.kind.hook);
    }
    if (const auto& hs = root["handlers"]) {
        if (!hs.IsSequence()) return bad(path, hs, "handlers must be a list");
        for (const auto& h : hs) {
            DesiredHandler dh;
            if (!h.IsMap() || !h["object"]) return bad(path, h, "a handler needs object: FILE");
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
            if (auto k = parse_key(key, d.kind.key); !k) return bad(path, kv.first, k.error().message());
            for (const auto& [other, _] : d.wiring)
                if (*parse_key(other, d.kind.key) == *parse_key(key, d.kind.key))
                    return bad(path, kv.first, "key " + key + " is wired twice (also as " + other + ")");
            for (const auto& [other, _] : d.wiring_to)
                if (*parse_key(other, d.kind.key) == *parse_key(key, d.kind.key))
                    return bad(path, kv.first, "key " + key + " is wired twice (also as " + other + ")");
            if (kv.second.IsMap()) {
                // KEY: {instance: NAME}: the dispatcher of another instance of the file.
                if (!several || kv.second.size() != 1 || !kv.second["instance"])
                    return bad(path, kv.second,
                               several ? "a key wires a handler (tcp: tcp_handler) or an instance (tcp: {instance: NAME})"
                                       : "instance: NAME is for files with an instances: list; wire the pin dir "
                                         "of another instance (tcp: /sys/fs/bpf/tcd-web)");
                auto n = scalar(path, kv.second["instance"], "instance");
                if (!n) return propagate(n);
                d.wiring_to[key] = *n;
                continue;
            }
            auto text = scalar(path, kv.second, "a handler");
            if (!text) return propagate(text);
            if (auto h = parse_handler_spec(*text); !h) return bad(path, kv.second, h.error().message());
            d.wiring[key] = *text;
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
                if (i["mode"]) {
                    auto m = parse_xdp_mode(i["mode"].as<std::string>());
                    if (!m) return bad(path, i, m.error().message());
                    di.mode = *m;
                }
                if (std::string text = i["direction"] ? i["direction"].as<std::string>() : ""; !text.empty()) {
                    if (d.kind.hook == Hook::xdp) return bad(path, i, "direction is for hook: tc");
                    auto dir = from_name<Direction>(text);
                    if (!dir) return bad(path, i, "direction must be " + or_list(names_of<Direction>()));
                    di.direction = *dir;
                }
            }
            if (d.kind.hook == Hook::tc && di.direction == Direction::none) di.direction = Direction::ingress;
            d.interfaces.push_back(std::move(di));
        }
    }
    return {};
}

}  // namespace

Result<DesiredFile> read_desired(const std::string& path) {
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        return fail("apply " + path, "cannot read the file", "", ENOENT);
    } catch (const YAML::Exception& e) {
        return usage_error(fmt::format("apply {} line {}", path, e.mark.line + 1), e.msg);
    }
    if (!root.IsMap()) return bad(path, root, "the top level must be a mapping (key: value lines)");
    if (auto r = no_duplicate_keys(path, root); !r) return propagate(r);
    DesiredFile f;
    f.path = path;
    try {
        if (const auto& list = root["instances"]) {
            for (const auto& kv : root)
                if (kv.first.as<std::string>() != "instances")
                    return bad(path, kv.first,
                               "with an instances: list, " + kv.first.as<std::string>() + " goes into an entry");
            if (!list.IsSequence() || list.size() == 0)
                return bad(path, list, "instances must be a list of instances (- name: ... pin_dir: ...)");
            f.several = true;
            std::set<std::string> names;
            for (const auto& entry : list) {
                if (!entry.IsMap()) return bad(path, entry, "an entry of instances must be a mapping (pin_dir: DIR ...)");
                Desired d;
                d.line = entry.Mark().is_null() ? 0 : entry.Mark().line + 1;
                if (auto r = read_instance(path, entry, true, d); !r) return propagate(r);
                if (!d.name.empty() && !names.insert(d.name).second)
                    return bad(path, entry["name"], "two instances are called " + d.name);
                f.instances.push_back(std::move(d));
            }
            for (size_t i = 0; i < f.instances.size(); i++)
                for (const auto& [key, name] : f.instances[i].wiring_to)
                    if (!names.count(name))
                        return bad(path, list[i]["wiring"][key],
                                   "no instance in the file is called " + name);
        } else {
            Desired d;
            if (auto r = read_instance(path, root, false, d); !r) return propagate(r);
            f.instances.push_back(std::move(d));
        }
    } catch (const YAML::Exception& e) {
        return usage_error(fmt::format("apply {} line {}", path, e.mark.line + 1), e.msg);
    }
    return f;
}

namespace {

using tree::canon;
using tree::chain_text;

// A step's outcome without the value of what it ran.
template <typename T>
Result<Done> done(const Result<T>& r, std::function<Result<>()> undo = {}) {
    if (!r) return propagate(r);
    return Done{true, std::move(undo)};
}

// A step on the instance as it is when the step runs (an earlier step may
// have loaded it or loaded it again).
template <typename Act>
Change on_instance(std::string what, const std::string& dir, Act act) {
    return {dir, std::move(what), [dir, act]() -> Result<Done> {
                auto in = Instance::open(dir);
                if (!in) return propagate(in);
                return act(*in);
            }};
}

LoadOptions load_options(MissAction miss, bool force, Kind kind) {
    LoadOptions o;
    o.miss = miss;
    o.force = force;
    o.kind = kind;
    return o;
}

// What a key holds now: the program, kept open so that an undo can put it
// back (null: the key is not wired), and on a port instance its counter slot.
struct Held {
    std::shared_ptr<UniqueFd> prog;
    std::optional<uint32_t> slot;
};

Held hold_key(const Instance& in, uint32_t key) {
    Held h;
    if (in.kind().key == KeyKind::port && in.port_slot_fd() >= 0) {
        uint32_t slot = 0;
        if (bpf_map_lookup_elem(in.port_slot_fd(), &key, &slot) == 0) h.slot = slot;
    }
    auto id = wired_prog_id(in, key);
    if (!id || !*id) return h;
    if (auto fd = prog_fd_by_id(**id)) h.prog = std::make_shared<UniqueFd>(std::move(*fd));
    return h;
}

// Undo of a wiring change: the key holds again what it held (one atomic
// update), or is unwired again; a port has its counter slot back.
std::function<Result<>()> put_back(const std::string& dir, uint32_t key, Held old) {
    return [dir, key, old]() -> Result<> {
        auto in = Instance::open(dir);
        if (!in) return propagate(in);
        if (old.slot && in->port_slot_fd() >= 0)
            if (auto r = write_port_slot(*in, key, *old.slot); !r)
                return propagate(r, fmt::format("put back the counter slot of port {}", key));
        if (old.prog && *old.prog) {
            int fd = old.prog->get();
            if (bpf_map_update_elem(in->jt_fd(), &key, &fd, BPF_ANY) != 0)
                return fail_errno(fmt::format("put back key {} in {}", key, in->paths().jt()), errno);
        } else if (bpf_map_delete_elem(in->jt_fd(), &key) != 0 && errno != ENOENT) {
            return fail_errno(fmt::format("unwire key {} in {}", key, in->paths().jt()), errno);
        }
        return {};
    };
}

// Undo of the wiring batch's respecialise (run after the keys are put back):
// the dispatcher that ran before, the very program, swapped in again on every
// interface and its pin renamed into place; then the counter slots of ports
// no longer wired are freed.
std::function<Result<>()> put_back_dispatcher(const std::string& dir, std::shared_ptr<UniqueFd> old, uint32_t old_id) {
    return [dir, old, old_id]() -> Result<> {
        auto in = Instance::open(dir);
        if (!in) return propagate(in);
        if (in->dispatcher().id != old_id) {
            const uint32_t new_id = in->dispatcher().id;
            if (auto r = swap_dispatcher(*in, old->get()); !r) return propagate(r);
            // The parents' keys that load --force moved to the new dispatcher
            // go back to the old one too.
            if (auto ps = tree::parents(dir); ps) {
                for (const auto& e : *ps) {
                    if (e.prog_id != new_id) continue;
                    auto parent = Instance::open(e.parent);
                    if (!parent) return propagate(parent);
                    int fd = old->get();
                    uint32_t key = e.key;
                    if (bpf_map_update_elem(parent->jt_fd(), &key, &fd, BPF_ANY) != 0)
                        return fail_errno(fmt::format("put back {} key {}", e.parent, key), errno);
                }
            }
            std::string pin = in->dispatcher_path(), tmp = bpffs::temp_path(pin);
            if (auto r = bpffs::pin(old->get(), tmp); !r) return r;
            if (auto r = bpffs::rename(tmp, pin); !r) return r;
        }
        auto again = Instance::open(dir);
        if (!again) return propagate(again);
        if (auto r = respecialise(*again, true); !r) return propagate(r);
        return {};
    };
}

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
// of another kind, reloaded for another miss action. The instance that is
// there and stays (with its handlers, wiring and attachments), or nullopt.
Result<std::optional<Instance>> plan_instance(const std::string& dir, const Desired& want,
                                              std::vector<Change>& steps) {
    const std::string miss = miss_action_name(want.miss);
    auto kind = pinned_kind(dir);
    if (kind && !(*kind == want.kind)) {
        // Parents that wire it are unwired first (unload --force); their own
        // steps, which come later, wire it again. This cannot be undone.
        steps.push_back({dir,
                         fmt::format("unload (a {} instance on {}; {} on {} is wanted)", key_kind_name(kind->key),
                                     hook_name(kind->hook), key_kind_name(want.kind.key), hook_name(want.kind.hook)),
                         [dir, was = *kind]() -> Result<Done> {
                             return done(unload(dir, true), [dir, was]() -> Result<> {
                                 return fail("unload",
                                             fmt::format("the {} instance on {} that was there cannot be made again "
                                                         "(its handlers and wiring are gone)",
                                                         key_kind_name(was.key), hook_name(was.hook)));
                             });
                         }});
        kind.reset();
    }
    if (!kind) {
        steps.push_back({dir,
                         fmt::format("load --key {} --hook {} --miss-action {}", key_kind_name(want.kind.key),
                                     hook_name(want.kind.hook), miss),
                         [dir, want]() -> Result<Done> {
                             return done(load(dir, load_options(want.miss, false, want.kind)),
                                         [dir]() { return outcome_of(unload(dir, true)); });
                         }});
        return std::optional<Instance>();
    }
    auto in = Instance::open(dir);
    if (!in) return propagate(in);
    if (in->miss_action() != want.miss)
        steps.push_back({dir, "load --force --miss-action " + miss,
                         [dir, want, old = in->miss_action()]() -> Result<Done> {
                             return done(load(dir, load_options(want.miss, true, want.kind)), [dir, old, want]() {
                                 return outcome_of(load(dir, load_options(old, true, want.kind)));
                             });
                         }});
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
        steps.push_back(on_instance(what, dir, [dir, obj = h.object, missing](const Instance& in) -> Result<Done> {
            auto r = load_handlers(in, obj, missing);
            return done(r, [dir, missing]() -> Result<> {
                auto i = Instance::open(dir);
                if (!i) return propagate(i);
                for (const auto& m : missing)
                    if (auto u = unload_handler(*i, m, true); !u) return propagate(u);
                return {};
            });
        }));
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
                     const Instance* in, const World& world, std::vector<Change>& steps) {
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
    std::vector<Change> batch;
    // What this instance's set_handler calls share (its port slots read once,
    // as map set with several pairs does). The slots are only ever assigned
    // through it while the batch runs; a respecialise in between frees some,
    // which the cache then counts as taken: never a slot given twice.
    auto shared = std::make_shared<SetBatch>();
    for (const auto& [k, t] : targets) {
        uint32_t key = k;  // (structured bindings cannot be captured before C++20 in clang 14)
        std::string handler = t.handler;
        auto set = [key, handler, shared](const Instance& i) -> Result<Done> {
            Held old = hold_key(i, key);
            auto r = set_handler(i, key, *parse_handler_spec(handler), shared.get());
            return done(r, put_back(i.paths().dir, key, old));
        };
        if (!holds(key, t)) {
            batch.push_back(on_instance(fmt::format("map set {} {}", key, handler), dir, set));
        } else if (!t.child.empty() && world.touched.count(t.child)) {
            Change follow = on_instance(
                fmt::format("map set {} {} (its dispatcher was replaced)", key, handler), dir,
                [key, child = t.child, set](const Instance& i) -> Result<Done> {
                    auto c = Instance::open(child);
                    if (!c) return propagate(c);
                    auto now = wired_prog_id(i, key);
                    if (!now) return propagate(now);
                    if (*now && **now == c->dispatcher().id) return Done{false, {}};
                    return set(i);
                });
            follow.conditional = true;
            batch.push_back(std::move(follow));
        }
    }
    for (const auto& [k, handler] : current) {
        if (targets.count(k)) continue;
        uint32_t key = k;
        batch.push_back(on_instance(fmt::format("map del {} (wired to {}, not in the file)", key, handler), dir,
                                    [key](const Instance& i) -> Result<Done> {
                                        Held old = hold_key(i, key);
                                        return done(del_keys(i, {key}, false), put_back(i.paths().dir, key, old));
                                    }));
    }
    if (batch.empty() && in) {
        // The wiring is as wanted, but the dispatcher's direct jumps are not
        // the wired keys' (a command killed before its respecialise): one
        // respecialise, undone by swapping the old dispatcher back.
        auto wanted = wanted_direct(*in);
        auto live = read_direct_keys(in->dispatcher());
        if (wanted && live && *wanted != *live) {
            std::vector<std::string> keys;
            for (const auto& k : *wanted) keys.push_back(std::to_string(k.key));
            batch.push_back(on_instance(
                fmt::format("respecialise (direct jumps to {}: a command was cut short before it)",
                            keys.empty() ? std::string("none") : fmt::format("{}", fmt::join(keys, " "))),
                dir, [](const Instance&) -> Result<Done> { return Done{true, {}}; }));
        }
    }
    if (batch.empty()) return {};
    // The wiring changes batched: the last of them also loads one new
    // dispatcher for all of them, if they change the keys it reaches by
    // direct jumps (and frees the counter slots of unwired ports). Undone in
    // reverse: the keys put back, then the old dispatcher (a step of its own
    // in front of the batch, which changes nothing when it runs).
    Change before = on_instance("", dir, [dir](const Instance& i) -> Result<Done> {
        auto fd = prog_fd_by_id(i.dispatcher().id);
        if (!fd) return propagate(fd);
        return Done{false, put_back_dispatcher(dir, std::make_shared<UniqueFd>(std::move(*fd)), i.dispatcher().id)};
    });
    before.conditional = true;
    auto last = batch.back().run;
    batch.back().run = [last, dir]() -> Result<Done> {
        auto r = last();
        if (!r) return r;
        auto i = Instance::open(dir);
        if (!i) {
            if (r->undo) (void)r->undo();
            return propagate(i);
        }
        if (auto s = respecialise(*i); !s) {
            if (r->undo) (void)r->undo();
            return propagate(s);
        }
        return r;
    };
    if (in) steps.push_back(std::move(before));
    for (auto& c : batch) steps.push_back(std::move(c));
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
        return a.ifname == d.name && a.netns == ns && a.direction == d.direction;
    };
    auto same = [&](const Attachment& a, const DesiredInterface& d, const std::string& ns) {
        return same_place(a, d, ns) &&
               (d.direction != Direction::none || d.mode == AttachMode::auto_mode || a.mode == d.mode);
    };
    // Attaching again where it was (undo of a detach): in its mode on XDP.
    auto reattach = [](const Instance& i, const std::string& ifname, const std::string& netns, AttachMode mode,
                       Direction direction) {
        AttachMode m = direction == Direction::none ? mode : AttachMode::auto_mode;
        return outcome_of(attach(i, {.ifname = ifname, .netns = netns, .mode = m, .direction = direction}));
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
        bool again = other != now.end();
        std::string what = "attach " + d.name + (d.netns.empty() ? "" : " --netns " + d.netns) +
                           (d.direction == Direction::none ? std::string(" --mode ") + mode_name(d.mode)
                                                           : std::string(" --direction ") + direction_name(d.direction));
        AttachMode was = again ? other->mode : AttachMode::auto_mode;
        if (again) what = "re-" + what + " (attached in " + mode_name(was) + " mode)";
        steps.push_back(on_instance(what, dir, [dir, d, again, was, reattach](const Instance& i) -> Result<Done> {
            const Direction direction = d.direction;
            if (again)
                if (auto r = detach(i, d.name, d.netns, direction); !r) return propagate(r);
            auto r = attach(i, {.ifname = d.name, .netns = d.netns, .mode = d.mode, .direction = direction});
            if (!r) {
                // Back where it was, in its old mode.
                if (again) (void)reattach(i, d.name, d.netns, was, direction);
                return propagate(r);
            }
            return Done{true, [dir, d, again, was, direction, reattach]() -> Result<> {
                            auto in = Instance::open(dir);
                            if (!in) return propagate(in);
                            if (auto r = detach(*in, d.name, d.netns, direction); !r) return propagate(r);
                            if (again) return reattach(*in, d.name, d.netns, was, direction);
                            return {};
                        }};
        }));
    }
    for (const auto& a : now) {
        bool keep = false;
        for (size_t k = 0; k < want.interfaces.size(); k++) keep |= same_place(a, want.interfaces[k], wanted_ns[k]);
        if (keep) continue;
        steps.push_back(on_instance(
            "detach " + a.ifname + (a.netns.empty() ? "" : " --netns " + a.netns) +
                (a.direction == Direction::none ? "" : std::string(" --direction ") + direction_name(a.direction)) +
                " (not in the file)",
            dir, [dir, a, reattach](const Instance& i) -> Result<Done> {
                return done(detach(i, a.ifname, a.netns, a.direction), [dir, a, reattach]() -> Result<> {
                    auto in = Instance::open(dir);
                    if (!in) return propagate(in);
                    return reattach(*in, a.ifname, a.netns, a.mode, a.direction);
                });
            }));
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
            if (!p.steps[s].conditional) world.touched.insert(dir);
    }
    return p;
}

Result<std::vector<const Change*>> execute(const Plan& p) {
    std::vector<std::pair<const Change*, Done>> made;
    std::vector<const Change*> changed;
    for (const auto& s : p.steps) {
        auto r = s.run();
        if (r) {
            if (r->changed) changed.push_back(&s);
            made.emplace_back(&s, std::move(*r));
            crash_point("apply");  // killed between two steps: the next apply converges
            continue;
        }
        Error e = r.error();
        e.what = "apply: " + (p.dirs.size() > 1 ? s.dir + ": " : "") + s.what + (e.what.empty() ? "" : ": " + e.what);
        // Undone, last first; each undo is tried even if one before it failed.
        std::vector<std::string> left;
        for (auto it = made.rbegin(); it != made.rend(); ++it) {
            if (!it->second.undo) continue;
            if (auto u = it->second.undo(); !u)
                left.push_back((p.dirs.size() > 1 ? it->first->dir + ": " : "") + it->first->what + ": " +
                               u.error().message());
        }
        std::string note;
        if (!left.empty()) {
            note = fmt::format("{} of the {} change(s) made before it could not be undone ({}); run apply again "
                               "to converge",
                               left.size(), changed.size(), fmt::join(left, "; "));
        } else if (!changed.empty()) {
            note = fmt::format("the {} change(s) made before it were undone", changed.size());
        }
        if (!note.empty()) e.hint = e.hint.empty() ? note : e.hint + "; " + note;
        return tl::unexpected(e);
    }
    return changed;
}

}  // namespace tcd
