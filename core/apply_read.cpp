// apply, reading: the YAML file into the typed Desired structs (core/apply.h),
// every mistake a usage error naming the file, the field (and its line) and
// what was expected. Nothing here looks at bpffs or the kernel; planning is
// apply_plan.cpp, running the plan apply_exec.cpp.
#include "core/apply.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/keys.h"
#include "core/names.h"
#include "core/progs.h"

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

}  // namespace tcd
