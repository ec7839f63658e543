// tcd load | unload | status
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "core/lifecycle.h"
#include "core/render.h"
#include "core/status.h"

namespace tcd::cli {

Result<> run_load(const LoadOptions& o, Context& ctx) {
    tcd::LoadOptions lo;
    lo.force = o.force;
    auto key = parse_key_kind(o.key);
    if (!key) return propagate(key);
    auto hook = parse_hook(o.hook);
    if (!hook) return propagate(hook);
    // The kind of a loaded instance is read from its pins: what the command
    // line leaves out is kept (load --force --miss-action drop on a port
    // instance reloads a port instance).
    if (auto pinned = pinned_kind(ctx.g.pin_dir)) {
        if (!o.key_given) *key = pinned->key;
        if (!o.hook_given) *hook = pinned->hook;
    }
    if (!o.miss_action.empty()) {
        auto miss = parse_miss_action(o.miss_action, *hook);
        if (!miss) return propagate(miss);
        lo.miss = *miss;
    }
    lo.kind = {*key, *hook};
    auto r = tcd::load(ctx.g.pin_dir, lo);
    if (!r) return propagate(r);
    ctx.print(render::load_json(*r), render::load_plain(*r));
    return {};
}

Result<> run_unload(bool force, Context& ctx) {
    auto r = tcd::unload(ctx.g.pin_dir, force);
    if (!r) return propagate(r);
    ctx.print(render::unload_json(*r), render::unload_plain(*r));
    return {};
}

Result<> run_status(bool scan, Context& ctx) {
    auto s = gather_status(ctx.g.pin_dir, scan);
    if (!s) return propagate(s);
    ctx.print(render::status_json(*s), render::status_plain(*s, ctx.g.verbose));
    return {};
}

void setup_instance(CLI::App& app, Context& ctx) {
    auto load_opts = std::make_shared<LoadOptions>();
    auto* load = app.add_subcommand("load", "load the dispatcher and its built-in handlers, pinned in the pin dir");
    load->add_option("--miss-action", load_opts->miss_action,
                     "verdict for a key with no handler: pass, drop, or (tc) next, the next tcx program or the stack "
                     "(default pass on XDP, next on tc)")
        ->check(CLI::IsMember(names_of<MissAction>()))
        ->type_name("pass|drop|next");
    add_kind_options(*load, load_opts->key, load_opts->hook,
                     "dispatch on the IP protocol (default) or the TCP/UDP destination port",
                     "XDP (default) or tc's clsact (ingress and egress)");
    load->add_flag("--force", load_opts->force,
                   "reload a loaded instance: new dispatcher, same wiring and counters, swapped live");
    load->callback([&ctx, load, load_opts] {
        load_opts->key_given = load->get_option("--key")->count() > 0;
        load_opts->hook_given = load->get_option("--hook")->count() > 0;
        ctx.action = [&ctx, load_opts] { return run_load(*load_opts, ctx); };
    });

    auto unload_force = std::make_shared<bool>(false);
    auto* unload = app.add_subcommand("unload", "detach from every interface, then remove the pins");
    unload->add_flag("--force", *unload_force,
                     "unload a child instance even while parents wire it: unwire it in each parent first");
    unload->callback([&ctx, unload_force] { ctx.action = [&ctx, unload_force] { return run_unload(*unload_force, ctx); }; });

    auto* status = app.add_subcommand("status", "what is loaded, wired and attached (-v: verifier figures)");
    auto status_scan = std::make_shared<bool>(false);
    status->add_flag("--scan", *status_scan,
                     "find parents and children by reading every instance on bpffs (finds wiring made by hand "
                     "with bpftool)");
    status->callback([&ctx, status_scan] {
        ctx.action = [&ctx, status_scan] { return run_status(*status_scan, ctx); };
    });
}

}  // namespace tcd::cli
