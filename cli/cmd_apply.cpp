// tcd apply -f FILE [--dry-run]
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "core/apply.h"
#include "core/bpffs.h"
#include "core/lock.h"

namespace tcd::cli {

Result<> run_apply(const ApplyOptions& o, Context& ctx) {
    auto want = read_desired(o.file);
    if (!want) return propagate(want);
    // The file's pin_dir may be relative or spelled with extra slashes: one
    // spelling, the one the lock goes by.
    std::string dir = InstanceLock::canonical_dir(want->pin_dir.value_or(ctx.g.pin_dir));
    if (auto r = bpffs::ensure_mounted(dir); !r) return r;
    // The file may name its own pin dir: the lock is taken here, on it.
    double timeout = 10;
    if (const char* t = std::getenv("TCD_LOCK_TIMEOUT")) timeout = std::strtod(t, nullptr);
    auto lock = InstanceLock::acquire(dir, timeout);
    if (!lock) return propagate(lock);

    auto steps = plan(dir, *want);
    if (!steps) return propagate(steps);
    nlohmann::ordered_json changes = nlohmann::ordered_json::array();
    std::string plain;
    size_t done = 0;
    for (auto& s : *steps) {
        changes.push_back(s.what);
        if (!o.dry_run) {
            if (auto r = s.run(); !r) {
                Error e = r.error();
                e.what = "apply: " + s.what + (e.what.empty() ? "" : ": " + e.what);
                if (done) e.hint = std::to_string(done) + " earlier change(s) were made; run apply again to converge";
                return tl::unexpected(e);
            }
            done++;
        }
        plain += (o.dry_run ? "would " : "") + s.what + "\n";
    }
    if (steps->empty()) plain = dir + ": as " + o.file + " says, nothing to do\n";
    nlohmann::ordered_json j = {{"pin_dir", dir}, {"dry_run", o.dry_run}, {"changes", changes}, {"applied", done}};
    ctx.print(j, plain);
    return {};
}

void setup_apply(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<ApplyOptions>();
    auto* apply = app.add_subcommand(
        "apply", "make an instance what a YAML file describes (key, hook, handlers, wiring, interfaces); idempotent");
    apply->add_option("-f,--file", o->file, "the description (see deploy/tcd.yaml)")->required()->type_name("FILE");
    apply->add_flag("--dry-run", o->dry_run, "print the changes, make none");
    apply->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_apply(*o, ctx); }; });
}

}  // namespace tcd::cli
