// tcd map set | del | list
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/render.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lifecycle.h"
#include "core/wiring.h"

namespace tcd::cli {

// The key's grammar depends on the instance (protocols or ports); without
// one, the protocol grammar still catches a bad key as a usage error first.
static KeyKind kind_at(const std::string& dir) {
    auto k = pinned_kind(dir);
    return k ? k->key : KeyKind::proto;
}

Result<> run_map_set(const MapSetOptions& o, Context& ctx) {
    if (o.more.size() % 2)
        return usage_error("map set", fmt::format("key {} has no handler", o.more.back()),
                          "give KEY HANDLER pairs");
    std::vector<std::string> texts = {o.key, o.handler};
    texts.insert(texts.end(), o.more.begin(), o.more.end());
    const KeyKind kind = kind_at(ctx.g.pin_dir);
    std::vector<std::pair<uint32_t, HandlerSpec>> pairs;
    for (size_t i = 0; i < texts.size(); i += 2) {
        auto key = parse_key(texts[i], kind);
        if (!key) return propagate(key);
        auto spec = parse_handler_spec(texts[i + 1]);
        if (!spec) return propagate(spec);
        pairs.emplace_back(*key, *spec);
    }
    recover_interrupted(ctx.g.pin_dir);
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    auto r = wire_keys(*in, pairs);
    if (!r) return propagate(r);
    // One pair: its object, as ever; several: an array of them.
    if (r->size() == 1) {
        ctx.print(render::set_json(r->front()), render::set_plain(r->front()));
        return {};
    }
    nlohmann::ordered_json j = nlohmann::ordered_json::array();
    std::string plain;
    for (const auto& s : *r) {
        j.push_back(render::set_json(s));
        plain += render::set_plain(s);
    }
    ctx.print(j, plain);
    return {};
}

Result<> run_map_del(const std::vector<std::string>& texts, Context& ctx) {
    std::vector<uint32_t> keys;
    KeyKind kind = kind_at(ctx.g.pin_dir);
    for (const auto& t : texts) {
        auto k = parse_key(t, kind);
        if (!k) return propagate(k);
        keys.push_back(*k);
    }
    recover_interrupted(ctx.g.pin_dir);
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    auto r = unwire_keys(*in, keys);
    if (!r) return propagate(r);
    ctx.print(render::del_json(*r), render::del_plain(*r));
    return {};
}

Result<> run_map_list(bool scan, Context& ctx) {
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    // Port instances: the ports with a counter slot (every port tcd wired);
    // --scan reads all 65,536 entries, finding ports wired by hand too.
    auto w = list_wiring(*in, in->kind().key == KeyKind::port && !scan);
    if (!w) return propagate(w);
    ctx.print(render::wiring_json(*w), render::wiring_plain(*w, in->kind().key));
    return {};
}

void setup_map(CLI::App& app, Context& ctx) {
    auto* map = app.add_subcommand("map", "the jump table: which handler runs for which key");
    map->require_subcommand(1);

    auto set_opts = std::make_shared<MapSetOptions>();
    auto* set = map->add_subcommand("set", "wire KEY to HANDLER (one atomic update); several pairs: all or nothing");
    set->add_option("KEY", set_opts->key, "0-255 or a protocol name (tcp, udp, icmp, ...); on a port instance 0-65535 or a service (http, ssh, dns, ...)")->required();
    set->add_option("HANDLER", set_opts->handler, "a name pinned in the pin dir, a bpffs path, or id:N")->required();
    set->add_option("MORE", set_opts->more, "further KEY HANDLER pairs, wired in the same call (one lock, one respecialise)");
    set->callback([&ctx, set_opts] { ctx.action = [&ctx, set_opts] { return run_map_set(*set_opts, ctx); }; });

    auto del_keys = std::make_shared<std::vector<std::string>>();
    auto* del = map->add_subcommand("del", "unwire keys (their packets get the miss action)");
    del->add_option("KEY", *del_keys, "a key as for map set")->required();
    del->callback([&ctx, del_keys] { ctx.action = [&ctx, del_keys] { return run_map_del(*del_keys, ctx); }; });

    auto* list = map->add_subcommand("list", "the wired keys");
    auto list_scan = std::make_shared<bool>(false);
    list->add_flag("--scan", *list_scan, "port instances: read every jump-table entry (finds ports wired by hand)");
    list->callback([&ctx, list_scan] { ctx.action = [&ctx, list_scan] { return run_map_list(*list_scan, ctx); }; });
}

}  // namespace tcd::cli
