// tcd object -o FILE [--key proto|port] [--hook xdp|tc]
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>

#include "cli/cli.h"
#include "core/instance.h"
#include "core/kind.h"

namespace tcd::cli {

// Writes the embedded dispatcher ELF, for people who load it with bpftool,
// ip or xdp-loader themselves. Written beside the target and renamed, so a
// failed write leaves no half file.
Result<> run_object(const ObjectOptions& o, Context& ctx) {
    auto key = parse_key_kind(o.key);
    if (!key) return propagate(key);
    auto hook = parse_hook(o.hook);
    if (!hook) return propagate(hook);
    if (o.output.empty()) return usage_error("object", "-o FILE is required");
    std::string_view elf = embedded_elf({*key, *hook});
    std::string tmp = o.output + ".tmp-" + std::to_string(getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return fail_errno("write " + o.output, errno);
    size_t done = 0;
    while (done < elf.size()) {
        ssize_t n = ::write(fd.get(), elf.data() + done, elf.size() - done);
        if (n < 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            return fail_errno("write " + o.output, err);
        }
        done += size_t(n);
    }
    fd.reset();
    if (::rename(tmp.c_str(), o.output.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return fail_errno("write " + o.output, err);
    }
    nlohmann::ordered_json j = {{"file", o.output}, {"key", o.key}, {"hook", o.hook}, {"bytes", elf.size()},
                                {"dispatcher", dispatcher_name(*hook)}};
    ctx.print(j, o.output + ": " + std::to_string(elf.size()) + " bytes, the " + o.key + " dispatcher for " + o.hook +
                     " (program " + dispatcher_name(*hook) + ", maps jt, proto_stats)\n");
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
