// tcd handler list
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/privs.h"
#include "core/render.h"
#include "core/status.h"

namespace tcd::cli {

Result<> run_handler_list(Context& ctx) {
    if (auto p = require_bpf_privileges("handler list"); !p) return p;
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return tl::unexpected(in.error());
    auto w = list_wiring(*in);
    if (!w) return tl::unexpected(w.error());
    auto hs = list_handlers(*in, *w);
    ctx.print(render::handlers_json(hs), render::handlers_plain(hs));
    return {};
}

void setup_handler(CLI::App& app, Context& ctx) {
    auto* handler = app.add_subcommand("handler", "handler programs pinned beside the dispatcher");
    handler->require_subcommand(1);
    auto* list = handler->add_subcommand("list", "name, prog id, tag, type, load time, wired keys");
    list->callback([&ctx] { ctx.action = [&ctx] { return run_handler_list(ctx); }; });
}

}  // namespace tcd::cli
