#include "cli/render.h"

#include <algorithm>

#include <ctime>
#include <unistd.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/words.h"
#include "core/keys.h"

namespace tcd::render {
namespace {

// Why an XDP attachment runs alone ("" when it does not, or nobody knows).
std::string alone_words(const Attachment& a) { return a.alone_asked ? cli::alone_asked_words() : a.alone_reason; }

json counters_json(const Counters& c) { return {{"packets", c.packets}, {"bytes", c.bytes}}; }

// A key's name in JSON (the field is "proto" for either kind), or null.
json name_or_null(const std::string& name) { return name.empty() ? json(nullptr) : json(name); }

// "6 (tcp)", "80 (http)", or the bare number when the key has no name.
std::string key_label(uint32_t key, const std::string& name) {
    return name.empty() ? std::to_string(key) : fmt::format("{} ({})", key, name);
}

std::string ns_label(const std::string& netns) { return netns.empty() ? "-" : netns; }

}  // namespace

std::string iso_time(int64_t t) {
    char buf[32];
    time_t tt = static_cast<time_t>(t);
    struct tm tm {};
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string dump(const json& j, int indent) {
    return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string si(double v) {
    const char* units[] = {"", "k", "M", "G", "T"};
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    return u == 0 ? fmt::format("{:.0f}", v) : fmt::format("{:.2f}{}", v, units[u]);
}

json stats_json(const StatsView& v) {
    // Built field by field: nlohmann's initializer lists copy every value
    // twice, which made 256 rows (--all) cost more than reading the map.
    json keys = json::array();
    keys.get_ref<json::array_t&>().reserve(v.keys.size());
    for (const auto& r : v.keys) {
        json& k = keys.emplace_back(json::object());
        k.get_ref<json::object_t&>().reserve(8);
        k["key"] = r.key;
        k["proto"] = name_or_null(r.key_name);
        k["handler"] = r.handler ? json(*r.handler) : json(nullptr);
        k["instance"] = r.instance.empty() ? json(nullptr) : json(r.instance);
        k["packets"] = r.c.packets;
        k["bytes"] = r.c.bytes;
        k["missed"] = r.c.missed;
        if (v.interval_s) {
            k["pps"] = r.pps;
            k["bps"] = r.bps;
        }
    }
    json j = json::object();
    j["keys"] = std::move(keys);
    j["non_ip"] = counters_json(v.non_ip);
    j["malformed"] = counters_json(v.malformed);
    if (v.kind == KeyKind::port) {
        j["no_port"] = counters_json(v.no_port);
        j["other_ports"] = counters_json(v.other_ports);
        j["other_ports"]["missed"] = v.other_ports.missed;
    }
    j["total"] = counters_json(v.total);
    if (v.interval_s) j["interval_s"] = *v.interval_s;
    return j;
}

std::string stats_plain(const StatsView& v) {
    bool rates = v.interval_s.has_value();
    const char* name_col = v.kind == KeyKind::port ? "PORT" : "PROTO";  // the key's name: service or protocol
    // Columns as wide as their widest cell (a port's five digits, a child's
    // pin path as the handler), never narrower than the usual widths.
    size_t kw = 4, nw = 12, hw = 16;
    for (const auto& r : v.keys) {
        kw = std::max(kw, std::to_string(r.key).size());
        nw = std::max(nw, r.key_name.size());
        hw = std::max(hw, r.handler ? r.handler->size() : 1);
    }
    std::string out;
    if (rates)
        out += fmt::format("{:>{}}  {:<{}} {:<{}} {:>12} {:>14} {:>10} {:>10} {:>10}\n", "KEY", kw, name_col, nw,
                           "HANDLER", hw, "PACKETS", "BYTES", "PPS", "BIT/S", "MISSED");
    else
        out += fmt::format("{:>{}}  {:<{}} {:<{}} {:>12} {:>14} {:>10}\n", "KEY", kw, name_col, nw, "HANDLER", hw,
                           "PACKETS", "BYTES", "MISSED");
    for (const auto& r : v.keys) {
        std::string name = r.key_name.empty() ? "-" : r.key_name;
        std::string handler = r.handler ? *r.handler : "-";
        if (rates)
            out += fmt::format("{:>{}}  {:<{}} {:<{}} {:>12} {:>14} {:>10} {:>10} {:>10}\n", r.key, kw, name, nw,
                               handler, hw, r.c.packets, r.c.bytes, si(r.pps), si(r.bps), r.c.missed);
        else
            out += fmt::format("{:>{}}  {:<{}} {:<{}} {:>12} {:>14} {:>10}\n", r.key, kw, name, nw, handler, hw,
                               r.c.packets, r.c.bytes, r.c.missed);
    }
    // The class rows line up their numbers under PACKETS and BYTES.
    const size_t lw = kw + 2 + nw + 1 + hw;
    if (v.keys.empty()) out += "   (no key wired or counted yet)\n";
    if (v.kind == KeyKind::port) {
        out += fmt::format("{:<{}} {:>12} {:>14}{:>{}}\n", "other ports", lw, v.other_ports.packets,
                           v.other_ports.bytes, v.other_ports.missed, rates ? 33 : 11);
        out += fmt::format("{:<{}} {:>12} {:>14}\n", "no-port", lw, v.no_port.packets, v.no_port.bytes);
    }
    out += fmt::format("{:<{}} {:>12} {:>14}\n", "non-ip", lw, v.non_ip.packets, v.non_ip.bytes);
    out += fmt::format("{:<{}} {:>12} {:>14}\n", "malformed", lw, v.malformed.packets, v.malformed.bytes);
    out += fmt::format("{:<{}} {:>12} {:>14}\n", "total", lw, v.total.packets, v.total.bytes);
    return out;
}

namespace {

std::string prom_escape(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string stats_prometheus(const StatsView& v, const std::string& pin_dir) {
    std::string inst = "pin_dir=\"" + prom_escape(pin_dir) + "\"";
    std::string out;
    auto family = [&](const char* name, const char* help, auto value) {
        out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, help, name);
        for (const auto& r : v.keys)
            out += fmt::format("{}{{{},key=\"{}\",proto=\"{}\",handler=\"{}\"}} {}\n", name, inst, r.key,
                               prom_escape(r.key_name), prom_escape(r.handler.value_or("")), value(r.c));
    };
    family("tcd_packets_total", "Packets counted per dispatch key.", [](const Counters& c) { return c.packets; });
    family("tcd_bytes_total", "Bytes counted per dispatch key.", [](const Counters& c) { return c.bytes; });
    family("tcd_missed_total", "Packets whose key had no handler wired (they got the miss action).",
           [](const Counters& c) { return c.missed; });
    std::vector<std::pair<const char*, Counters>> classes = {{"non-ip", v.non_ip}, {"malformed", v.malformed}};
    if (v.kind == KeyKind::port) {
        classes.emplace_back("no-port", v.no_port);
        classes.emplace_back("other-ports", v.other_ports);
    }
    out += "# HELP tcd_class_packets_total Packets counted per class without a key of their own.\n"
           "# TYPE tcd_class_packets_total counter\n";
    for (const auto& [name, c] : classes)
        out += fmt::format("tcd_class_packets_total{{{},class=\"{}\"}} {}\n", inst, name, c.packets);
    out += "# HELP tcd_class_bytes_total Bytes counted per class without a key of their own.\n"
           "# TYPE tcd_class_bytes_total counter\n";
    for (const auto& [name, c] : classes)
        out += fmt::format("tcd_class_bytes_total{{{},class=\"{}\"}} {}\n", inst, name, c.bytes);
    out += fmt::format("# HELP tcd_total_packets_total The sum of every row: each packet the dispatcher saw, and what handlers counted with tcd_count().\n"
                       "# TYPE tcd_total_packets_total counter\ntcd_total_packets_total{{{}}} {}\n",
                       inst, v.total.packets);
    out += fmt::format("# HELP tcd_total_bytes_total The sum of every row: each byte the dispatcher saw, and what handlers counted with tcd_count().\n"
                       "# TYPE tcd_total_bytes_total counter\ntcd_total_bytes_total{{{}}} {}\n",
                       inst, v.total.bytes);
    return out;
}

json wiring_json(const std::vector<WiredEntry>& w) {
    json a = json::array();
    for (const auto& e : w) {
        a.push_back({{"key", e.key},
                     {"proto", name_or_null(e.key_name)},
                     {"handler", e.handler},
                     {"prog_id", e.prog_id},
                     {"tag", e.tag},
                     {"instance", e.instance.empty() ? json(nullptr) : json(e.instance)}});
        if (e.slot) a.back()["slot"] = e.slot;  // port instances: the counter slot
    }
    return a;
}

std::string wiring_plain(const std::vector<WiredEntry>& w, KeyKind kind) {
    if (w.empty()) return "no key is wired\n";
    size_t kw = 4, nw = 12, hw = 16;
    for (const auto& e : w) {
        kw = std::max(kw, std::to_string(e.key).size());
        nw = std::max(nw, e.key_name.size());
        hw = std::max(hw, e.handler.size());
    }
    const bool port = kind == KeyKind::port;  // port instances: the counter slot too
    std::string out = fmt::format("{:>{}}  {:<{}} {:<{}} {:>8}  {}\n", "KEY", kw, port ? "PORT" : "PROTO", nw,
                                  "HANDLER", hw, "PROG ID", port ? "TAG               SLOT" : "TAG");
    for (const auto& e : w) {
        std::string slot = !port ? "" : e.slot ? fmt::format("  {:>4}", e.slot) : fmt::format("  {:>4}", "-");
        std::string line = fmt::format("{:>{}}  {:<{}} {:<{}} {:>8}  {:<16}{}", e.key, kw,
                                       e.key_name.empty() ? "-" : e.key_name, nw, e.handler, hw, e.prog_id, e.tag, slot);
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

json handlers_json(const std::vector<HandlerInfo>& hs) {
    json a = json::array();
    for (const auto& h : hs)
        a.push_back({{"name", h.name},
                     {"prog_id", h.prog_id},
                     {"tag", h.tag},
                     {"type", h.type},
                     {"loaded_at", iso_time(h.loaded_at)},
                     {"builtin", h.builtin},
                     {"keys", h.keys}});
    return a;
}

std::string handlers_plain(const std::vector<HandlerInfo>& hs) {
    if (hs.empty()) return "no handler is pinned\n";
    std::string out = fmt::format("{:<16} {:>8}  {:<16}  {:<5} {:<8} {:<20}  {}\n", "NAME", "PROG ID", "TAG",
                                  "TYPE", "KIND", "LOADED", "KEYS");
    for (const auto& h : hs) {
        const std::string keys = fmt::format("{}", fmt::join(h.keys, ","));
        out += fmt::format("{:<16} {:>8}  {:<16}  {:<5} {:<8} {:<20}  {}\n", h.name, h.prog_id, h.tag, h.type,
                           h.builtin ? "built-in" : "user", iso_time(h.loaded_at), keys.empty() ? "-" : keys);
    }
    return out;
}

json attachment_json(const Attachment& a) {
    json j = {{"ifname", a.ifname},
              {"ifindex", a.ifindex},
              {"netns", a.netns.empty() ? json(nullptr) : json(a.netns)},
              {"mode", mode_name(a.mode)},
              {"multiprog", a.multiprog}};
    if (a.direction != Direction::none) j["direction"] = direction_name(a.direction);
    if (a.mode == AttachMode::tcx) {
        j["position"] = a.position;
        j["chain"] = a.chain;
        j["tcd_link"] = !a.link_pin.empty();  // false: another tool attached the dispatcher
    }
    if (a.direction == Direction::none && a.entry_id) j["entry_id"] = a.entry_id;  // alone too: the shim at the hook
    if (a.direction == Direction::none && a.entry_id && a.multiprog) {
        j["priority"] = a.priority;
        j["position"] = a.position;
        j["chain"] = a.chain;
        j["chain_call"] = a.chain_call;
        json others = json::array();
        for (const auto& o : a.others)
            others.push_back({{"name", o.name}, {"id", o.id}, {"priority", o.priority}, {"chain_call", o.chain_call}});
        j["others"] = std::move(others);
    }
    if (a.direction == Direction::none && !a.multiprog)
        j["alone_reason"] = alone_words(a).empty() ? json(nullptr) : json(alone_words(a));
    return j;
}

// ", priority 50, 2 of 3 in libxdp's dispatcher, chain-call pass" (XDP multiprog).
static std::string multiprog_words(const Attachment& a) {
    const std::string cc = fmt::format("{}", fmt::join(a.chain_call, ","));
    return fmt::format(", priority {}, {} of {} in the dispatcher, chain-call {}", a.priority, a.position, a.chain,
                       cc.empty() ? "none" : cc);
}

static std::string neighbour_lines(const Attachment& a) {
    std::string out;
    for (const auto& o : a.others) {
        const std::string cc = fmt::format("{}", fmt::join(o.chain_call, ","));
        out += fmt::format("  beside: {} (id {}, priority {}, chain-call {})\n", o.name, o.id, o.priority,
                           cc.empty() ? "none" : cc);
    }
    return out;
}

static json tree_json(const std::vector<TreeLink>& links, const char* next) {
    json a = json::array();
    for (const auto& l : links) {
        json& e = a.emplace_back(json::object());
        e["instance"] = l.instance;
        e["key"] = l.key;
        e["proto"] = name_or_null(l.key_name);
        e[next] = tree_json(l.next, next);
    }
    return a;
}

static void tree_plain(std::string& out, const std::vector<TreeLink>& links, bool up, int depth) {
    for (const auto& l : links) {
        std::string pad(2 * depth, ' ');
        if (up) out += fmt::format("{}parent: {} (key {})\n", pad, l.instance, key_label(l.key, l.key_name));
        else out += fmt::format("{}child: {} -> {}\n", pad, key_label(l.key, l.key_name), l.instance);
        tree_plain(out, l.next, up, depth + 1);
    }
}

json status_json(const Status& s) {
    json j = {{"pin_dir", s.pin_dir}, {"loaded", s.loaded}};
    if (s.dispatcher) {
        const auto& d = *s.dispatcher;
        j["dispatcher"] = {{"name", dispatcher_name(s.kind.hook)},
                           {"key", key_kind_name(s.kind.key)},
                           {"hook", hook_name(s.kind.hook)},
                           {"prog_id", d.prog_id},
                           {"tag", d.tag},
                           {"miss_action", d.miss_action},
                           {"loaded_at", iso_time(d.loaded_at)},
                           {"verified_insns", d.verified_insns},
                           {"xlated_bytes", d.xlated_bytes},
                           {"jited_bytes", d.jited_bytes},
                           {"direct_keys", d.direct_keys},
                           {"monitoring", d.monitoring}};
    } else {
        j["dispatcher"] = nullptr;
    }
    j["handlers"] = handlers_json(s.handlers);
    j["wired"] = wiring_json(s.wired);
    json att = json::array();
    for (const auto& a : s.attached) att.push_back(attachment_json(a));
    j["attached"] = std::move(att);
    j["problems"] = json::array();
    for (const auto& p : s.problems) j["problems"].push_back(cli::said(p));
    j["parents"] = tree_json(s.parents, "parents");
    j["children"] = tree_json(s.children, "children");
    return j;
}

std::string status_plain(const Status& s, bool verbose) {
    std::string out;
    if (!s.loaded) {
        out += fmt::format("{}: not loaded\n", s.pin_dir);
        for (const auto& p : s.problems) out += "problem: " + cli::said(p) + "\n";
        return out;
    }
    const auto& d = *s.dispatcher;
    out += fmt::format("{}: {} dispatcher on {}, prog id {}, tag {}, miss action {}\n", s.pin_dir,
                       key_kind_name(s.kind.key), hook_name(s.kind.hook), d.prog_id, d.tag, d.miss_action);
    if (verbose)
        out += fmt::format("  loaded at {}, {} instructions verified, {} bytes xlated, {} bytes jited\n",
                           iso_time(d.loaded_at), d.verified_insns, d.xlated_bytes, d.jited_bytes);
    {
        std::string keys;
        for (uint32_t k : d.direct_keys) keys += (keys.empty() ? "" : " ") + key_label(k, key_name(s.kind.key, k));
        out += "direct jumps: " + (keys.empty() ? std::string("none") : keys) + "\n";
    }
    if (d.monitoring) out += "monitoring: the monitoring build of the dispatcher runs (tcd monitor)\n";
    if (s.attached.empty()) out += "attached: nowhere\n";
    for (const auto& a : s.attached) {
        if (a.mode == AttachMode::tcx)
            out += fmt::format("attached: {} {} (ifindex {}, netns {}, {}, {} of {} in the chain)\n", a.ifname,
                               direction_name(a.direction), a.ifindex, ns_label(a.netns),
                               a.link_pin.empty() ? "tcx, not through tcd's link" : "tcx link", a.position, a.chain);
        else if (a.direction != Direction::none)
            out += fmt::format("attached: {} {} (ifindex {}, netns {}, tc clsact)\n", a.ifname,
                               direction_name(a.direction), a.ifindex, ns_label(a.netns));
        else {
            std::string how = a.entry_id && a.multiprog ? ", libxdp multi-prog" + multiprog_words(a)
                              : a.multiprog              ? ", libxdp multi-prog"
                              : alone_words(a).empty()   ? ""
                                                         : ", alone: " + alone_words(a);
            if (a.entry_id && !a.multiprog) how = fmt::format(", through tcd's entry (id {})", a.entry_id) + how;
            out += fmt::format("attached: {} (ifindex {}, netns {}, {} mode{})\n", a.ifname, a.ifindex,
                               ns_label(a.netns), mode_name(a.mode), how);
            out += neighbour_lines(a);
        }
    }
    if (s.wired.empty()) out += "wired: nothing\n";
    for (const auto& w : s.wired)
        out += fmt::format("wired: {} -> {}\n", key_label(w.key, w.key_name), w.handler);
    std::vector<std::string> names;
    for (const auto& h : s.handlers) names.push_back(h.name);
    const std::string hs = fmt::format("{}", fmt::join(names, ", "));
    out += "handlers: " + (hs.empty() ? std::string("none") : hs) + "\n";
    tree_plain(out, s.parents, true, 0);
    tree_plain(out, s.children, false, 0);
    for (const auto& p : s.problems) out += "problem: " + cli::said(p) + "\n";
    return out;
}

json load_json(const LoadResult& r) {
    return {{"pin_dir", r.pin_dir},
            {"changed", r.changed},
            {"reloaded", r.reloaded},
            {"key", key_kind_name(r.kind.key)},
            {"hook", hook_name(r.kind.hook)},
            {"prog_id", r.dispatcher.id},
            {"tag", r.dispatcher.tag},
            {"miss_action", miss_action_name(r.miss)},
            {"pinned", r.pinned},
            {"direct_keys", r.direct},
            {"upgraded", r.upgraded},
            {"repointed", [&] {
                 json a = json::array();
                 for (const auto& p : r.repointed) a.push_back({{"instance", p.parent}, {"key", p.key}});
                 return a;
             }()},
            {"swapped", [&] {
                 json a = json::array();
                 for (const auto& s : r.swapped) a.push_back(attachment_json(s));
                 return a;
             }()}};
}

std::string load_plain(const LoadResult& r) {
    if (!r.changed)
        return fmt::format("{}: already loaded (prog id {}, miss action {})\n", r.pin_dir, r.dispatcher.id,
                           miss_action_name(r.miss));
    std::string out = fmt::format("{}: {} {} dispatcher on {}, prog id {}, miss action {}\n", r.pin_dir,
                                  r.reloaded ? "reloaded" : "loaded", key_kind_name(r.kind.key),
                                  hook_name(r.kind.hook), r.dispatcher.id, miss_action_name(r.miss));
    for (const auto& s : r.swapped) {
        if (s.mode == AttachMode::tcx)
            out += fmt::format("swapped on {} {} (tcx link)\n", s.ifname, direction_name(s.direction));
        else
            out += fmt::format("swapped on {} ({} mode)\n", s.ifname, mode_name(s.mode));
    }
    if (!r.upgraded.empty()) {
        out += fmt::format("built-in handlers replaced: {}\n", fmt::join(r.upgraded, ", "));
    }
    for (const auto& p : r.repointed) out += fmt::format("repointed {} key {} to it\n", p.parent, p.key);
    return out;
}

json unload_json(const UnloadResult& r) {
    json det = json::array();
    for (const auto& a : r.detached) det.push_back(attachment_json(a));
    json unwired = json::array();
    for (const auto& u : r.unwired) unwired.push_back({{"instance", u.parent}, {"key", u.key}});
    return {{"pin_dir", r.pin_dir}, {"changed", r.changed}, {"detached", det}, {"removed", r.removed},
            {"unwired", unwired}};
}

std::string unload_plain(const UnloadResult& r) {
    if (!r.changed) return fmt::format("{}: not loaded, nothing to do\n", r.pin_dir);
    std::string out;
    for (const auto& u : r.unwired) out += fmt::format("unwired from {} at key {}\n", u.parent, key_label(u.key, u.key_name));
    for (const auto& a : r.detached)
        out += fmt::format("detached from {}{}\n", a.ifname, a.netns.empty() ? "" : " in " + a.netns);
    out += fmt::format("{}: unloaded\n", r.pin_dir);
    return out;
}

json set_json(const SetResult& r) {
    json j = {{"key", r.key},
              {"proto", name_or_null(r.now.key_name)},
              {"handler", r.now.handler},
              {"prog_id", r.now.prog_id},
              {"instance", r.now.instance.empty() ? json(nullptr) : json(r.now.instance)},
              {"changed", r.changed},
              {"direct", r.direct},
              {"respecialised", r.respecialised}};
    j["old"] = r.old ? json(r.old->handler) : json(nullptr);
    return j;
}

std::string set_plain(const SetResult& r) {
    std::string key = key_label(r.key, r.now.key_name);
    if (!r.changed) return fmt::format("key {}: {} (already wired)\n", key, r.now.handler);
    if (r.old) return fmt::format("key {}: {} -> {}\n", key, r.old->handler, r.now.handler);
    return fmt::format("key {}: {}\n", key, r.now.handler);
}

json del_json(const DelResult& r) {
    json removed = json::array();
    for (const auto& e : r.removed)
        removed.push_back({{"key", e.key}, {"proto", name_or_null(e.key_name)}, {"handler", e.handler}});
    return {{"removed", removed}, {"not_wired", r.not_wired}, {"respecialised", r.respecialised}};
}

std::string del_plain(const DelResult& r) {
    std::string out;
    for (const auto& e : r.removed) out += fmt::format("key {}: {} unwired\n", key_label(e.key, e.key_name), e.handler);
    for (auto k : r.not_wired) out += fmt::format("key {}: not wired\n", key_label(k, key_name(r.kind, k)));
    return out;
}

json attach_json(const AttachResult& r) {
    json j = attachment_json(r.where);
    j["changed"] = r.changed;
    j["replaced"] = r.replaced ? json(*r.replaced) : json(nullptr);
    return j;
}

std::string attach_plain(const AttachResult& r) {
    std::string where = r.where.ifname + (r.where.netns.empty() ? "" : " in " + r.where.netns);
    if (r.where.direction != Direction::none) {
        std::string how = std::string(direction_name(r.where.direction)) +
                          (r.where.mode == AttachMode::tcx
                               ? fmt::format(", tcx link, {} of {} in the chain", r.where.position, r.where.chain)
                               : std::string(", tc clsact") + (r.where.made_qdisc ? " (qdisc made by tcd)" : ""));
        if (!r.changed) return fmt::format("{}: already attached ({})\n", where, how);
        std::string out = fmt::format("attached to {} ({})\n", where, how);
        if (r.replaced) out += fmt::format("replaced {}\n", *r.replaced);
        return out;
    }
    std::string how = std::string(mode_name(r.where.mode)) + " mode" +
                      (r.where.entry_id && r.where.multiprog ? ", libxdp multi-prog dispatcher" + multiprog_words(r.where)
                       : r.where.multiprog ? ", libxdp multi-prog dispatcher"
                                           : std::string(r.where.entry_id ? ", through tcd's entry" : "") +
                                                 ", single program (no libxdp dispatcher)" +
                                                 (alone_words(r.where).empty() ? std::string()
                                                                              : ": " + alone_words(r.where)));
    if (!r.changed) return fmt::format("{}: already attached ({})\n", where, how) + neighbour_lines(r.where);
    std::string out = fmt::format("attached to {} ({})\n", where, how) + neighbour_lines(r.where);
    if (r.replaced) out += fmt::format("replaced {}\n", *r.replaced);
    return out;
}

json detach_json(const std::vector<DetachResult>& rs) {
    json a = json::array();
    for (const auto& r : rs) {
        json j = attachment_json(r.where);
        j["changed"] = r.changed;
        if (!r.stale.empty()) j["stale"] = r.stale;
        a.push_back(std::move(j));
    }
    return a;
}

std::string detach_plain(const std::vector<DetachResult>& rs) {
    if (rs.empty()) return "attached nowhere, nothing to do\n";
    std::string out;
    for (const auto& r : rs) {
        std::string name = r.where.ifname.empty() ? "ifindex " + std::to_string(r.where.ifindex) : r.where.ifname;
        std::string where = name +
                            (r.where.direction == Direction::none ? "" : std::string(" ") + direction_name(r.where.direction)) +
                            (r.where.netns.empty() ? "" : " in " + r.where.netns);
        if (!r.stale.empty())
            out += fmt::format("cleared the stale attach record of {}: {}\n", where, r.stale);
        else
            out += r.changed ? fmt::format("detached from {}\n", where) : fmt::format("{}: not attached\n", where);
    }
    return out;
}

}  // namespace tcd::render

namespace tcd::render {

json handler_load_json(const HandlerLoadResult& r) {
    json loaded = json::array();
    for (const auto& h : r.loaded) loaded.push_back({{"name", h.name}, {"prog_id", h.prog_id}, {"tag", h.tag}});
    return {{"object", r.object}, {"loaded", loaded}, {"shared_maps", r.shared_maps}};
}

std::string handler_load_plain(const HandlerLoadResult& r) {
    std::string out;
    for (const auto& h : r.loaded) out += fmt::format("loaded {} (prog id {}, tag {})\n", h.name, h.prog_id, h.tag);
    if (!r.shared_maps.empty()) {
        out += fmt::format("sharing the instance's {}\n", fmt::join(r.shared_maps, ", "));
    }
    return out;
}

json handler_unload_json(const HandlerUnloadResult& r) { return {{"name", r.name}, {"unwired", r.unwired}}; }

std::string handler_unload_plain(const HandlerUnloadResult& r) {
    std::string out;
    for (auto k : r.unwired) out += fmt::format("key {} unwired\n", key_label(k, key_name(r.kind, k)));
    return out + fmt::format("unloaded {}\n", r.name);
}

namespace {

// A summary row's verdicts by name (their order in the output).
std::map<std::string, uint64_t> verdicts_by_name(const std::map<Verdict, uint64_t>& verdicts) {
    std::map<std::string, uint64_t> out;
    for (const auto& [v, n] : verdicts) out[verdict_name(v)] += n;
    return out;
}

}  // namespace

namespace {

json opt(const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); }
json opt(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

// A summary row's mean ns and self ns (rounded to the nearest), or none.
std::optional<uint64_t> mean_ns(const TraceSummaryRow& r) {
    if (!r.timed) return std::nullopt;
    return (r.ns_sum + r.timed / 2) / r.timed;
}
std::optional<int64_t> mean_self_ns(const TraceSummaryRow& r) {
    if (!r.timed) return std::nullopt;
    const double m = double(r.self_ns_sum) / double(r.timed);
    return static_cast<int64_t>(m < 0 ? m - 0.5 : m + 0.5);
}

// "  35 ns (self 20)" after a timed level's line; "" when not timed.
std::string ns_plain(uint32_t repeat, const std::optional<uint64_t>& ns, const std::optional<int64_t>& self) {
    if (!repeat) return "";
    if (!ns) return "  (not timed)";
    return fmt::format("  {} ns (self {})", *ns, self.value_or(0));
}

}  // namespace

json trace_frame_json(const TraceFrame& f) {
    json j = {{"frame", f.frame},
              {"len", f.len},
              {"class", f.cls},
              {"key", f.key ? json(*f.key) : json(nullptr)},
              {"proto", f.key ? name_or_null(f.key_name) : json(nullptr)},
              {"handler", f.handler ? json(*f.handler) : json(nullptr)},
              {"missed", f.missed},
              {"verdict", verdict_name(f.verdict)}};
    if (!f.ran) j["ran"] = false;
    json levels = json::array();
    for (const auto& l : f.levels)
        levels.push_back({{"instance", l.instance.empty() ? json(nullptr) : json(l.instance)},
                          {"via", name_of(l.via)},
                          {"from", l.from ? json(*l.from) : json(nullptr)},
                          {"class", l.cls},
                          {"key", l.key ? json(*l.key) : json(nullptr)},
                          {"proto", l.key ? name_or_null(l.key_name) : json(nullptr)},
                          {"handler", l.handler ? json(*l.handler) : json(nullptr)},
                          {"missed", l.missed}});
    if (f.repeat) {
        for (size_t i = 0; i < f.levels.size(); i++) {
            levels[i]["ns"] = opt(f.levels[i].ns);
            levels[i]["self_ns"] = opt(f.levels[i].self_ns);
        }
        j["ns"] = f.levels.empty() ? json(nullptr) : opt(f.levels[0].ns);
    }
    j["levels"] = std::move(levels);
    if (f.unrecorded_hops) j["unrecorded_hops"] = f.unrecorded_hops;
    return j;
}

std::string trace_header_plain() {
    return fmt::format("{:>7} {:>5}  {:<9} {:<16} {:<16} {}\n", "FRAME", "LEN", "CLASS", "KEY", "HANDLER", "VERDICT");
}

std::string trace_frame_plain(const TraceFrame& f) {
    std::string key = f.key ? key_label(*f.key, f.key_name) : "-";
    std::string handler = f.handler ? *f.handler : (f.missed ? "(miss)" : "-");
    // Not run: shorter than an Ethernet header (no interface delivers one),
    // or on tc an IPv4/IPv6 header cut short, which test_run refuses but a
    // real interface hands to tc (before ip_rcv checks it): malformed there.
    const char* why = f.len < 14 ? "  (not run: shorter than an Ethernet header; no interface delivers it)"
                                 : "  (not run: tc's test_run refuses a cut IP header; on an interface tc sees "
                                   "it, malformed)";
    std::string ns = f.ran && !f.levels.empty() ? ns_plain(f.repeat, f.levels[0].ns, f.levels[0].self_ns) : "";
    std::string out = fmt::format("{:>7} {:>5}  {:<9} {:<16} {:<16} {}{}{}\n", f.frame, f.len, f.cls, key, handler,
                                  verdict_name(f.verdict), f.ran ? "" : why, ns);
    // The child levels, one line each under the frame: instance, class, key,
    // handler; a tcd_next() hop: the handler that took it, the key, the
    // handler it reached.
    for (size_t i = 1; i < f.levels.size(); i++) {
        const auto& l = f.levels[i];
        std::string handler = l.handler ? *l.handler : (l.missed ? "(miss)" : "-");
        std::string key = l.key ? key_label(*l.key, l.key_name) : "-";
        const std::string ns = ns_plain(f.repeat, l.ns, l.self_ns);
        if (l.via == Via::tcd_next)
            out += fmt::format("{:>15}{} tcd_next from {}: {:<16} {}{}\n", "", std::string(2 * i, ' ') + "->",
                               l.from.value_or("-"), key, handler, ns);
        else
            out += fmt::format("{:>15}{} {}: {:<9} {:<16} {}{}\n", "", std::string(2 * i, ' ') + "->", l.instance,
                               l.cls, key, handler, ns);
    }
    if (f.unrecorded_hops)
        out += fmt::format("{:>15}{} {} more tcd_next hop{} not shown\n", "",
                           std::string(2 * f.levels.size(), ' ') + "..", f.unrecorded_hops,
                           f.unrecorded_hops == 1 ? "" : "s");
    return out;
}

json trace_summary_json(const TraceSummary& s) {
    json rows = json::array();
    for (const auto& r : s.rows())
        rows.push_back({{"level", r.level},
                        {"instance", r.instance.empty() ? json(nullptr) : json(r.instance)},
                        {"via", name_of(r.via)},
                        {"from", r.from ? json(*r.from) : json(nullptr)},
                        {"class", r.cls},
                        {"key", r.key ? json(*r.key) : json(nullptr)},
                        {"proto", r.key ? name_or_null(r.key_name) : json(nullptr)},
                        {"frames", r.frames},
                        {"bytes", r.bytes},
                        {"missed", r.missed},
                        {"verdicts", verdicts_by_name(r.verdicts)}});
    if (s.repeat()) {
        auto all = s.rows();
        for (size_t i = 0; i < all.size(); i++) {
            rows[i]["ns"] = opt(mean_ns(all[i]));
            rows[i]["self_ns"] = opt(mean_self_ns(all[i]));
        }
    }
    return rows;
}

std::string trace_summary_plain(const TraceSummary& s) {
    const bool timed = s.repeat() > 0;
    std::string out = fmt::format("\n{} frame{}\n{:<9} {:<16} {:>8} {:>10} {:>8}  {}{}\n", s.frames(),
                                  s.frames() == 1 ? "" : "s", "CLASS", "KEY",
                                  "FRAMES", "BYTES", "MISSED", timed ? fmt::format("{:>8} {:>8}  ", "NS", "SELF_NS") : "",
                                  "VERDICTS");
    int level = 0;
    for (const auto& r : s.rows()) {
        // Rows of a child level come after a line naming it.
        if (r.level > 0 && r.level != level) out += fmt::format("level {}:\n", r.level);
        level = r.level;
        std::string verdicts;
        for (const auto& [v, n] : verdicts_by_name(r.verdicts)) verdicts += (verdicts.empty() ? "" : ", ") + fmt::format("{} {}", v, n);
        if (r.via == Via::tcd_next)
            verdicts += "  (tcd_next from " + r.from.value_or("-") + (r.instance.empty() ? "" : ", " + r.instance) + ")";
        else if (r.level > 0)
            verdicts += "  (" + r.instance + ")";
        std::string ns;
        if (timed) {
            auto m = mean_ns(r);
            auto self = mean_self_ns(r);
            ns = fmt::format("{:>8} {:>8}  ", m ? std::to_string(*m) : "-", self ? std::to_string(*self) : "-");
        }
        out += fmt::format("{:<9} {:<16} {:>8} {:>10} {:>8}  {}{}\n", r.cls,
                           r.key ? key_label(*r.key, r.key_name) : "-", r.frames, r.bytes, r.missed, ns,
                           verdicts);
    }
    if (timed)
        out += fmt::format("NS: mean ns per run of the level's program alone on its frames ({} test runs a frame), "
                           "the chain from that level down; SELF_NS: less the level below\n",
                           s.repeat());
    return out;
}

}  // namespace tcd::render

namespace tcd::render {
namespace {

std::string clock_time(int64_t ns) {
    time_t secs = time_t(ns / 1000000000LL);
    std::tm tm{};
    localtime_r(&secs, &tm);
    return fmt::format("{:02}:{:02}:{:02}.{:06}", tm.tm_hour, tm.tm_min, tm.tm_sec, (ns % 1000000000LL) / 1000);
}

std::string iso_time_ns(int64_t ns) {
    time_t secs = time_t(ns / 1000000000LL);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, ns % 1000000000LL);
}

std::string direction_word(const MonitorEvent& e) {
    if (e.hook == Hook::xdp) return "xdp";
    return e.ingress ? "ingress" : "egress";
}

std::string netns_short(const std::string& netns) {
    const std::string run = "/run/netns/";
    return netns.rfind(run, 0) == 0 ? netns.substr(run.size()) : netns;
}

}  // namespace

namespace {

// "ingress /sys/fs/bpf/tcd/L0 tcp(6) direct tcp_handler#812": what tcd
// decided about the frame (the plain line's middle, -w's frame comment).
std::string monitor_decision_words(const MonitorEvent& e) {
    std::string key;
    if (e.cls == "ipv4" || e.cls == "ipv6")
        key = e.key_name.empty() ? std::to_string(e.key) : fmt::format("{}({})", e.key_name, e.key);
    else
        key = e.cls;
    std::string decision = name_of(e.decision);
    if (e.decision == Decision::miss || e.decision == Decision::undispatched)
        decision += e.miss_action ? std::string(" ") + miss_action_name(*e.miss_action) : "";
    std::string handler = e.prog_id ? fmt::format(" {}#{}", e.handler.empty() ? "?" : e.handler, e.prog_id) : "";
    return fmt::format("{} {}/L{} {} {}{}", direction_word(e), e.instance, e.level, key, decision, handler);
}

}  // namespace

std::string monitor_iface(const MonitorEvent& e) {
    std::string iface = e.ifname.empty() ? "if" + std::to_string(e.ifindex) : e.ifname;
    if (!e.netns.empty()) iface += "@" + netns_short(e.netns);
    return iface;
}

std::string monitor_event_plain(const MonitorEvent& e) {
    return fmt::format("{} {} {}: {}\n", clock_time(e.time_ns), monitor_iface(e), monitor_decision_words(e),
                       tcd::frame_summary(e.summary, e.len));
}

std::string monitor_event_comment(const MonitorEvent& e) { return "tcd " + monitor_decision_words(e); }

json monitor_event_json(const MonitorEvent& e) {
    json j;
    j["time"] = iso_time_ns(e.time_ns);
    j["ifindex"] = e.ifindex;
    j["iface"] = e.ifname;
    j["netns"] = e.netns;
    j["hook"] = hook_name(e.hook);
    j["direction"] = direction_word(e);
    j["instance"] = e.instance;
    j["level"] = e.level;
    j["class"] = e.cls;
    if (e.cls == "ipv4" || e.cls == "ipv6") {
        j["key"] = e.key;
        j["key_name"] = e.key_name;
    } else {
        j["key"] = nullptr;
        j["key_name"] = "";
    }
    j["decision"] = name_of(e.decision);
    if (e.decision == Decision::direct) j["site"] = e.site;
    j["miss_action"] = e.miss_action ? json(miss_action_name(*e.miss_action)) : json(nullptr);
    j["handler"] = e.prog_id ? json(e.handler) : json(nullptr);
    j["prog_id"] = e.prog_id ? json(e.prog_id) : json(nullptr);
    j["verdict"] = nullptr;  // not shown: see the end record
    j["len"] = e.len;
    j["caplen"] = e.frame.size();
    json f;
    f["ethertype"] = e.summary.ethertype;
    f["vlans"] = e.summary.vlans;
    f["src"] = e.summary.src;
    f["dst"] = e.summary.dst;
    f["l4"] = e.summary.l4;
    f["sport"] = e.summary.sport ? json(*e.summary.sport) : json(nullptr);
    f["dport"] = e.summary.dport ? json(*e.summary.dport) : json(nullptr);
    f["fragment"] = e.summary.fragment;
    f["icmp_type"] = e.summary.icmp_type ? json(*e.summary.icmp_type) : json(nullptr);
    f["icmp_code"] = e.summary.icmp_code ? json(*e.summary.icmp_code) : json(nullptr);
    f["truncated"] = e.summary.truncated();
    j["frame"] = f;
    j["summary"] = tcd::frame_summary(e.summary, e.len);
    return j;
}

json monitor_start_json(const std::vector<std::pair<std::string, int>>& instances) {
    json j, s, list = json::array();
    for (const auto& [dir, level] : instances) list.push_back(json{{"instance", dir}, {"level", level}});
    s["instances"] = list;
    s["pid"] = long(getpid());
    s["verdict"] = std::string(kVerdictNotShown);
    j["start"] = s;
    return j;
}

json monitor_end_json(uint64_t events, uint64_t suppressed, uint64_t lost) {
    json j;
    json e;
    e["events"] = events;
    e["suppressed"] = suppressed;
    e["lost"] = lost;
    e["verdict"] = std::string(kVerdictNotShown);
    j["end"] = e;
    return j;
}

std::string monitor_end_plain(uint64_t events, uint64_t suppressed, uint64_t lost) {
    return fmt::format("{} events, {} suppressed by the rate limit, {} lost\n", events, suppressed, lost);
}

}  // namespace tcd::render
