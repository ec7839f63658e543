// tcd handler load | list | unload
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "cli/render.h"
#include "core/handlers.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/status.h"

namespace tcd::cli {

Result<> run_handler_load(const HandlerLoadOptions& o, Context& ctx) {
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    auto r = load_handlers(*in, o.object, o.progs);
    if (!r) return propagate(r);
    ctx.print(render::handler_load_json(*r), render::handler_load_plain(*r));
    return {};
}

Result<> run_handler_list(Context& ctx) {
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    auto w = list_wiring(*in);
    if (!w) return propagate(w);
    auto hs = list_handlers(*in, *w);
    ctx.print(render::handlers_json(hs), render::handlers_plain(hs));
    return {};
}

Result<> run_handler_unload(const HandlerUnloadOptions& o, Context& ctx) {
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);
    auto r = unload_handler(*in, o.name, o.force);
    if (!r) return propagate(r);
    ctx.print(render::handler_unload_json(*r), render::handler_unload_plain(*r));
    return {};
}

void setup_handler(CLI::App& app, Context& ctx) {
    auto* handler = app.add_subcommand("handler", "handler programs pinned beside the dispatcher");
    handler->require_subcommand(1);

    auto lo = std::make_shared<HandlerLoadOptions>();
    auto* load = handler->add_subcommand(
        "load", "load a BPF ELF's XDP programs as handlers, sharing the instance's maps, pinned by name");
    load->add_option("OBJECT", lo->object, "a BPF ELF object (clang -target bpf)")->required()->type_name("FILE");
    load->add_option("--prog", lo->progs, "load only this program (repeatable)")->type_name("NAME");
    load->callback([&ctx, lo] { ctx.action = [&ctx, lo] { return run_handler_load(*lo, ctx); }; });

    auto* list = handler->add_subcommand("list", "name, prog id, tag, type, load time, wired keys, built-in or user");
    list->callback([&ctx] { ctx.action = [&ctx] { return run_handler_list(ctx); }; });

    auto uo = std::make_shared<HandlerUnloadOptions>();
    auto* unload = handler->add_subcommand("unload", "remove a user handler (refused while wired, unless --force)");
    unload->add_option("NAME", uo->name, "the handler's pinned name")->required();
    unload->add_flag("--force", uo->force, "unwire its keys first");
    unload->callback([&ctx, uo] { ctx.action = [&ctx, uo] { return run_handler_unload(*uo, ctx); }; });
}

}  // namespace tcd::cli
