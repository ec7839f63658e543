// tcd attach | detach
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/render.h"
#include "core/attach.h"
#include "core/lifecycle.h"


namespace tcd::cli {

Result<> run_attach(const AttachOptions& opts, Context& ctx) {
    if (opts.bad_order) return tl::unexpected(*opts.bad_order);
    auto r = attach_loading(ctx.g.pin_dir, opts.req);
    if (!r) return propagate(r);
    auto j = render::attach_json(r->result);
    j["loaded"] = r->loaded;
    std::string plain = render::attach_plain(r->result);
    if (r->loaded) plain = "loaded " + ctx.g.pin_dir + "\n" + plain;
    ctx.print(j, plain);
    return {};
}

Result<> run_detach(const DetachOptions& o, Context& ctx) {
    auto results = detach_as_asked(ctx.g.pin_dir, o);
    if (!results) return propagate(results);
    ctx.print(render::detach_json(*results), render::detach_plain(*results));
    return {};
}

void setup_attach(CLI::App& app, Context& ctx) {
    auto a = std::make_shared<AttachOptions>();
    auto* attach = app.add_subcommand("attach", "attach the dispatcher to IFACE (XDP, or tc with --direction; loads it first if needed)");
    attach->add_option("IFACE", a->req.ifname, "interface name")->required();
    add_enum_option<AttachMode>(*attach, "--mode", a->req.mode, "XDP mode (default auto)", is_xdp_mode)
        ->type_name("auto|native|skb|hw");
    attach->add_option("--netns", a->req.netns, "network namespace (/run/netns/NAME or a path) for the netlink work")
        ->type_name("NAME|PATH");
    add_enum_option<Direction>(*attach, "--direction", a->req.direction,
                               "tc instances: ingress (default) or egress; both may be attached")
        ->type_name("ingress|egress");
    attach->add_option_function<std::string>(
              "--order",
              [a](const std::string& text) {
                  if (text.empty()) return;  // as not given: last
                  auto p = parse_order(text);
                  if (p)
                      a->req.order = *p;
                  else
                      a->bad_order = p.error();
              },
              "tc instances on tcx links: first or last (default) in the interface's chain of programs, "
              "or right before or after the program PROG there (an id, or a name)")
        ->type_name("first|last|before:PROG|after:PROG");
    attach->add_option("--priority", a->req.priority,
                       "XDP: libxdp run priority in its multi-program dispatcher, lower runs first (default 50)")
        ->check(CLI::Range(0, 1000000))
        ->type_name("N");
    attach->add_flag("--alone", a->req.alone, "XDP: attach alone, not through libxdp's multi-program dispatcher");
    attach->add_flag("--force", a->req.force, "replace another program running there");
    attach->callback([&ctx, a] { ctx.action = [&ctx, a] { return run_attach(*a, ctx); }; });

    auto d = std::make_shared<DetachOptions>();
    auto* detach = app.add_subcommand("detach", "take the dispatcher off IFACE (or off every interface with --all)");
    detach->add_option("IFACE", d->ifname, "interface name");
    detach->add_option("--netns", d->netns, "network namespace (/run/netns/NAME or a path)")->type_name("NAME|PATH");
    add_enum_option<Direction>(*detach, "--direction", d->direction, "tc instances: only this direction (default both)")
        ->type_name("ingress|egress");
    detach->add_flag("--all", d->all, "every interface the dispatcher runs on");
    detach->callback([&ctx, d] { ctx.action = [&ctx, d] { return run_detach(*d, ctx); }; });
}

}  // namespace tcd::cli
