// tcd object -o FILE [--key proto|port] [--hook xdp|tc]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/instance.h"
#include "core/kind.h"
#include "core/output_file.h"

namespace tcd::cli {

// Writes the embedded dispatcher ELF, for people who load it with bpftool,
// ip or xdp-loader themselves (docs/cli.md, "Output files"): "-" is stdout;
// a device or a FIFO is written into; a symlink or a directory is refused; a
// regular file is written whole under a fresh temporary name beside it and
// renamed over it, so it is never half written.
Result<> run_object(const ObjectOptions& o, Context& ctx) {
    const Kind kind{o.key.value_or(KeyKind::proto), o.hook.value_or(Hook::xdp)};
    if (o.output.empty()) return usage_error("object", "-o FILE is required");
    std::string_view elf = embedded_elf(kind);
    const std::string key = key_kind_name(kind.key), hook = hook_name(kind.hook);
    nlohmann::ordered_json j = {{"file", o.output}, {"key", key}, {"hook", hook}, {"bytes", elf.size()},
                                {"dispatcher", dispatcher_name(kind.hook)}};
    std::string plain = o.output + ": " + std::to_string(elf.size()) + " bytes, the " + key + " dispatcher for " +
                        hook + " (program " + dispatcher_name(kind.hook) + ", maps jt, proto_stats)\n";

    if (o.output == "-" && ctx.json())
        return usage_error("object -o -", "stdout holds the object; -j has no room there", "leave out -j");
    auto f = OutputFile::create(o.output);
    if (!f) return propagate(f);
    if (auto r = f->write(elf); !r) return r;
    if (auto r = f->commit(); !r) return r;
    if (!f->is_stdout()) ctx.print(j, plain);
    return {};
}

void setup_object(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<ObjectOptions>();
    auto* obj = app.add_subcommand("object", "write the embedded dispatcher ELF (for bpftool, ip, xdp-loader)");
    obj->add_option("-o,--output", o->output, "the file to write")->required()->type_name("FILE");
    add_kind_options(*obj, o->key, o->hook, "proto (default) or port", "xdp (default) or tc");
    obj->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_object(*o, ctx); }; });
}

}  // namespace tcd::cli
