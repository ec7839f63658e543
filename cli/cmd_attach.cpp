// tcd attach | detach
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "core/attach.h"
#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/lifecycle.h"
#include "core/ownership.h"
#include "core/render.h"

#include <net/if.h>

namespace tcd::cli {

Result<> run_attach(const AttachOptions& o, Context& ctx) {
    auto mode = parse_xdp_mode(o.mode);
    if (!mode) return propagate(mode);
    auto direction = parse_direction(o.direction);
    if (!direction) return propagate(direction);
    std::optional<Placement> order;
    if (!o.order.empty()) {
        auto parsed = parse_order(o.order);
        if (!parsed) return propagate(parsed);
        order = *parsed;
    }
    auto ns = resolve_netns(o.netns);  // validate before anything is loaded
    if (!ns) return propagate(ns);
    {
        auto guard = NetnsGuard::enter(*ns);
        if (!guard) return propagate(guard);
        if (o.ifname.empty() || !if_nametoindex(o.ifname.c_str()))
            return fail("interface " + o.ifname,
                        "no such interface" + (ns->empty() ? std::string() : " in network namespace " + *ns),
                        ns->empty() ? "see 'ip link'; one in another network namespace needs --netns NAME"
                                    : "see 'ip -n NAME link'");
    }
    // Before anything is loaded: hw mode on a device without offload.
    if (auto r = check_xdp_mode(o.ifname, o.netns, *mode); !r) return propagate(r);

    // Attach on a fresh machine loads the instance first, with defaults; a
    // failed attach takes that load back.
    bool loaded_now = false;
    if (!Instance::is_loaded(ctx.g.pin_dir)) {
        // --direction asks for a tc instance; plain attach for the default.
        tcd::LoadOptions lo;
        if (!o.direction.empty() || order) lo.kind.hook = Hook::tc;
        auto l = tcd::load(ctx.g.pin_dir, lo);
        if (!l) return propagate(l);
        loaded_now = true;
        crash_point("attach");
    }
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    auto undo_load = [&] {
        if (loaded_now) (void)tcd::unload(ctx.g.pin_dir);
    };
    if (in->kind().hook == Hook::tc && o.mode != "auto") {
        undo_load();
        return usage_error("attach", "--mode is for XDP instances; this one is on tc", "use --direction");
    }
    if (in->kind().hook == Hook::tc && (o.priority || o.alone)) {
        undo_load();
        return usage_error("attach", std::string(o.priority ? "--priority" : "--alone") + " is for XDP instances; this one is on tc",
                           "use --order");
    }
    if (o.priority && o.alone) {
        undo_load();
        return usage_error("attach", "--priority is libxdp's run priority; --alone attaches without libxdp's dispatcher",
                           "give one of them");
    }
    if (in->kind().hook == Hook::xdp && (!o.direction.empty() || order)) {
        undo_load();
        return usage_error("attach", std::string(order ? "--order" : "--direction") + " is for tc instances; this one is on XDP",
                           "load a tc instance with 'tcd load --hook tc' (another --pin-dir)");
    }
    tcd::AttachOptions ao{o.ifname, o.netns, *mode, o.force, *direction, order, o.priority, o.alone};
    auto r = tcd::attach(*in, ao);
    if (!r) {
        undo_load();
        return propagate(r);
    }
    auto j = render::attach_json(*r);
    j["loaded"] = loaded_now;
    std::string plain = render::attach_plain(*r);
    if (loaded_now) plain = "loaded " + ctx.g.pin_dir + "\n" + plain;
    ctx.print(j, plain);
    return {};
}

Result<> run_detach(const DetachOptions& o, Context& ctx) {
    auto direction = parse_direction(o.direction);
    if (!direction) return propagate(direction);
    if (o.all && !o.ifname.empty())
        return usage_error("detach", "give an interface or --all, not both");
    if (!o.all && o.ifname.empty()) return usage_error("detach", "an interface or --all is required");
    std::vector<DetachResult> results;
    if (!Instance::is_loaded(ctx.g.pin_dir)) {
        if (auto r = require_own_dir(ctx.g.pin_dir, "detach"); !r) return propagate(r);
        // Nothing of ours can run anywhere; still say so for a missing interface.
        if (!o.all) {
            auto ns = resolve_netns(o.netns);
            if (!ns) return propagate(ns);
            auto guard = NetnsGuard::enter(*ns);
            if (!guard) return propagate(guard);
            if (!if_nametoindex(o.ifname.c_str())) return fail("interface " + o.ifname, "no such interface");
            Attachment where;
            where.ifname = o.ifname;
            where.ifindex = if_nametoindex(o.ifname.c_str());
            where.netns = *ns;
            where.direction = *direction;
            results.push_back({false, where});
        }
        ctx.print(render::detach_json(results), render::detach_plain(results));
        return {};
    }
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    if (o.all) {
        auto stale = stale_records(*in);  // detach_all clears them with the rest: said so
        auto r = detach_all(*in);
        if (!r) return propagate(r);
        for (auto& a : *r) results.push_back({true, a});
        for (auto& s : stale) results.push_back(std::move(s));
    } else {
        if (!o.direction.empty() && in->kind().hook != Hook::tc)
            return usage_error("detach", "--direction is for tc instances");
        auto r = tcd::detach(*in, o.ifname, o.netns, *direction);
        if (!r) return propagate(r);
        results = std::move(*r);
    }
    ctx.print(render::detach_json(results), render::detach_plain(results));
    return {};
}

void setup_attach(CLI::App& app, Context& ctx) {
    auto a = std::make_shared<AttachOptions>();
    auto* attach = app.add_subcommand("attach", "attach the dispatcher to IFACE (XDP, or tc with --direction; loads it first if needed)");
    attach->add_option("IFACE", a->ifname, "interface name")->required();
    attach->add_option("--mode", a->mode, "XDP mode (default auto)")
        ->check(CLI::IsMember(names_of<AttachMode>(is_xdp_mode)))
        ->type_name("auto|native|skb|hw");
    attach->add_option("--netns", a->netns, "network namespace (/run/netns/NAME or a path) for the netlink work")
        ->type_name("NAME|PATH");
    attach->add_option("--direction", a->direction, "tc instances: ingress (default) or egress; both may be attached")
        ->check(CLI::IsMember(names_of<Direction>()))
        ->type_name("ingress|egress");
    attach->add_option("--order", a->order,
                       "tc instances on tcx links: first or last (default) in the interface's chain of programs, "
                       "or right before or after the program PROG there (an id, or a name)")
        ->type_name("first|last|before:PROG|after:PROG");
    attach->add_option("--priority", a->priority,
                       "XDP: libxdp run priority in its multi-program dispatcher, lower runs first (default 50)")
        ->check(CLI::Range(0, 1000000))
        ->type_name("N");
    attach->add_flag("--alone", a->alone, "XDP: attach alone, not through libxdp's multi-program dispatcher");
    attach->add_flag("--force", a->force, "replace another program running there");
    attach->callback([&ctx, a] { ctx.action = [&ctx, a] { return run_attach(*a, ctx); }; });

    auto d = std::make_shared<DetachOptions>();
    auto* detach = app.add_subcommand("detach", "take the dispatcher off IFACE (or off every interface with --all)");
    detach->add_option("IFACE", d->ifname, "interface name");
    detach->add_option("--netns", d->netns, "network namespace (/run/netns/NAME or a path)")->type_name("NAME|PATH");
    detach->add_option("--direction", d->direction, "tc instances: only this direction (default both)")
        ->check(CLI::IsMember(names_of<Direction>()))
        ->type_name("ingress|egress");
    detach->add_flag("--all", d->all, "every interface the dispatcher runs on");
    detach->callback([&ctx, d] { ctx.action = [&ctx, d] { return run_detach(*d, ctx); }; });
}

}  // namespace tcd::cli
