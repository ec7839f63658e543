// tcd apply -f FILE [--dry-run]
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include "cli/apply_text.h"
#include "cli/cli.h"
#include "core/apply.h"
#include "core/bpffs.h"
#include "core/lifecycle.h"
#include "core/lock.h"

namespace tcd::cli {

Result<> run_apply(const ApplyOptions& o, Context& ctx) {
    auto want = read_desired(o.file);
    if (!want) return propagate(want);
    // The file's pin dirs may be relative or spelled with extra slashes: one
    // spelling each, the one the lock goes by.
    auto dirs = desired_dirs(*want, ctx.g.pin_dir);
    if (!dirs) return propagate(dirs);
    for (const auto& dir : *dirs)
        if (auto r = bpffs::ensure_mounted(dir); !r) return r;
    // The file names its own pin dirs: the locks are taken here, on every one
    // of them, in one order (LockSet: so two applies of overlapping files
    // cannot each hold what the other waits for).
    auto locks = LockSet::acquire(*dirs, /*relock=*/true);
    if (!locks) return propagate(locks);

    // What a command killed half-way left (apply's own steps are commands'
    // steps): finished or removed first, as every command that loads or
    // rewires does.
    if (!o.dry_run)
        for (const auto& dir : *dirs) recover_interrupted(dir);

    auto p = plan(*want, ctx.g.pin_dir);
    if (!p) return propagate(p);
    std::vector<const Step*> listed;
    if (o.dry_run) {
        for (const auto& s : p->steps)
            if (!s.conditional()) listed.push_back(&s);
    } else {
        auto made = execute(*p, step_text);
        if (!made) return propagate(made);
        listed = *made;
    }

    // Plain: one line per change (PINDIR: first with several instances).
    // JSON: the shape of one instance, or instances[] with each one's changes.
    const bool several = want->several;
    std::string plain;
    nlohmann::ordered_json changes = nlohmann::ordered_json::array();
    for (const auto* c : listed) {
        std::string line = (several ? c->instance + ": " : "") + step_text(*c);
        changes.push_back(line);
        plain += (o.dry_run ? "would " : "") + line + "\n";
    }
    const size_t applied = o.dry_run ? 0 : listed.size();
    nlohmann::ordered_json j;
    if (!several) {
        if (listed.empty()) plain = p->dirs[0] + ": as " + o.file + " says, nothing to do\n";
        j = {{"pin_dir", p->dirs[0]}, {"dry_run", o.dry_run}, {"changes", changes}, {"applied", applied}};
    } else {
        nlohmann::ordered_json instances = nlohmann::ordered_json::array();
        for (size_t i = 0; i < p->dirs.size(); i++) {
            nlohmann::ordered_json mine = nlohmann::ordered_json::array();
            for (const auto* c : listed)
                if (c->instance == p->dirs[i]) mine.push_back(step_text(*c));
            instances.push_back({{"name", p->names[i]}, {"pin_dir", p->dirs[i]}, {"changes", mine}});
        }
        if (listed.empty())
            plain = fmt::format("{} instance(s) as {} says, nothing to do\n", p->dirs.size(), o.file);
        j = {{"dry_run", o.dry_run}, {"instances", instances}, {"changes", changes}, {"applied", applied}};
    }
    ctx.print(j, plain);
    return {};
}

void setup_apply(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<ApplyOptions>();
    auto* apply = app.add_subcommand(
        "apply",
        "make instances what a YAML file describes (key, hook, handlers, wiring, interfaces; several instances "
        "and the wiring between them); idempotent");
    apply->add_option("-f,--file", o->file, "the description (see deploy/tcd.yaml, examples/tree.yaml)")
        ->required()
        ->type_name("FILE");
    apply->add_flag("--dry-run", o->dry_run, "print the changes, make none");
    apply->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_apply(*o, ctx); }; });
}

}  // namespace tcd::cli
