// tcd load | unload | status
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/render.h"
#include "core/lifecycle.h"
#include "core/status.h"

namespace tcd::cli {

Result<> run_load(const LoadRequest& o, Context& ctx) {
    auto r = load_as_asked(ctx.g.pin_dir, o);
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
    auto load_opts = std::make_shared<LoadRequest>();
    auto* load = app.add_subcommand("load", "load the dispatcher and its built-in handlers, pinned in the pin dir");
    add_enum_option<MissAction>(*load, "--miss-action", load_opts->miss,
                                "verdict for a key with no handler: pass, drop, or (tc) next, the next tcx program "
                                "or the stack (default pass on XDP, next on tc)")
        ->type_name("pass|drop|next");
    add_kind_options(*load, load_opts->key, load_opts->hook,
                     "dispatch on the IP protocol (default) or the TCP/UDP destination port",
                     "XDP (default) or tc's clsact (ingress and egress)");
    load->add_flag("--force", load_opts->force,
                   "reload a loaded instance: new dispatcher, same wiring and counters, swapped live");
    load->callback([&ctx, load_opts] {
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
