// The command tree, the global options, and the single place errors are
// printed.
#include <bpf/libbpf.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <functional>
#include <iostream>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/render.h"
#include "cli/words.h"
#include "core/instance.h"
#include "core/lock.h"
#include "core/log.h"
#include "core/monitor.h"

#include <optional>

#ifndef TCD_VERSION
#define TCD_VERSION "0.0.0"
#endif
#ifndef TCD_LIBXDP_VERSION
#define TCD_LIBXDP_VERSION "unknown"
#endif

namespace tcd::cli {

void Context::print(const nlohmann::ordered_json& j, const std::string& plain) const {
    if (g.quiet) return;
    if (json())
        out << render::dump(j, g.pretty ? 2 : -1) << '\n';
    else
        out << plain;
    out.flush();
}

void Context::print_line(const nlohmann::ordered_json& j) const {
    if (g.quiet) return;
    out << render::dump(j) << '\n';
    out.flush();
}

static std::string default_pin_dir() {
    const char* env = std::getenv("TCD_PIN_DIR");
    return env && *env ? env : kDefaultPinDir;
}

std::string version_text() {
    return std::string("tcd ") + TCD_VERSION + " (libbpf " + std::to_string(libbpf_major_version()) + "." +
           std::to_string(libbpf_minor_version()) + ", libxdp " + TCD_LIBXDP_VERSION + ")";
}

const std::vector<Policy>& policies() {
    using C = Policy::Changes;
    static const std::vector<Policy> table = {
        // command          privileged  changes
        {"load",            true,       C::instance},
        {"unload",          true,       C::instance},
        {"status",          true,       C::nothing},
        {"attach",          true,       C::instance},
        {"detach",          true,       C::instance},
        {"map set",         true,       C::instance},
        {"map del",         true,       C::instance},
        {"map list",        true,       C::nothing},
        {"handler load",    true,       C::instance},
        {"handler list",    true,       C::nothing},
        {"handler unload",  true,       C::instance},
        {"stats",           true,       C::instance, "--reset"},
        {"trace",           true,       C::nothing},
        {"monitor",         true,       C::its_own},
        {"object",          false,      C::nothing},
        {"apply",           true,       C::its_own},
    };
    return table;
}

// The policy's up-front privilege check, for a sentence before anything is
// touched rather than an EPERM from the middle of a command: root,
// CAP_SYS_ADMIN, or CAP_BPF, each with CAP_NET_ADMIN. A guess, and the CLI's
// alone: the core lets the kernel answer.
static Result<> check_privileges(const std::string& command) {
    constexpr int kCapNetAdmin = 12, kCapSysAdmin = 21, kCapBpf = 39;
    uint64_t caps = 0;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("CapEff:", 0) != 0) continue;
        std::istringstream field(line.substr(7));
        field >> std::hex >> caps;
    }
    auto has = [caps](int c) { return (caps >> c) & 1; };
    if ((has(kCapSysAdmin) || has(kCapBpf)) && has(kCapNetAdmin)) return {};
    return fail_errno(command, EPERM, "needs root or CAP_BPF+CAP_NET_ADMIN");
}

// Gives every command its row of the policy table, and holds the table to
// the command tree: a command without a row, or a row without a command, is
// a mistake in tcd itself. A tree built for one command family (`family`,
// its first word) holds only that family's rows; the whole tree, which the
// sync tests build, holds them all.
static void apply_policies(CLI::App& app, Context& ctx, const std::string& family = "") {
    auto commands = [](CLI::App* a) {
        return a->get_subcommands([](CLI::App* s) { return !s->get_name().empty(); });  // not option groups
    };
    size_t leaves = 0;
    std::function<void(CLI::App*)> count = [&](CLI::App* a) {
        auto subs = commands(a);
        if (subs.empty() && a != &app) leaves++;
        for (CLI::App* s : subs) count(s);
    };
    count(&app);
    auto in_family = [&](const Policy& p) {
        if (family.empty()) return true;
        auto declared = commands(&app);
        std::string first = std::string(p.command).substr(0, std::string(p.command).find(' '));
        return std::any_of(declared.begin(), declared.end(), [&](CLI::App* s) { return s->get_name() == first; });
    };
    size_t rows = 0;
    for (const Policy& p : policies()) rows += in_family(p);
    if (leaves != rows) throw std::logic_error(fmt::format("{} commands, {} policy rows", leaves, rows));
    for (const Policy& p : policies()) {
        if (!in_family(p)) continue;
        CLI::App* cmd = &app;
        std::istringstream words(p.command);
        for (std::string w; words >> w;) cmd = cmd->get_subcommand(w);  // throws for a row without a command
        if (!commands(cmd).empty()) throw std::logic_error(std::string(p.command) + " is a command group");
        if (p.only_with) (void)cmd->get_option(p.only_with);  // throws when it has no such flag
        cmd->preparse_callback([&ctx, &p, cmd](std::size_t) {
            ctx.policy = &p;
            ctx.command = cmd;
        });
    }
}

// The command families by their first word, each declared by one setup_x.
using Setup = void (*)(CLI::App&, Context&);
static const std::vector<std::pair<const char*, Setup>>& families() {
    static const std::vector<std::pair<const char*, Setup>> table = {
        {"attach", setup_attach}, {"detach", setup_attach}, {"map", setup_map},         {"stats", setup_stats},
        {"load", setup_instance}, {"unload", setup_instance}, {"status", setup_instance}, {"handler", setup_handler},
        {"trace", setup_trace},   {"object", setup_object},   {"apply", setup_apply},
        {"monitor", setup_monitor},
    };
    return table;
}

// The command line's first command word, when it names a command family:
// only that family's commands need declaring (a short command's start-up is
// part of every script's loop). Global options and the value of -d are
// skipped, as unknown_command() skips them; "" (declare everything) for no
// command, an unknown word, or a "--" first.
static std::string family_of(int argc, const char* const* argv) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") return "";
        if (a.size() > 1 && a[0] == '-') {
            if (a == "--pin-dir" || (a[1] != '-' && a.back() == 'd')) ++i;
            continue;
        }
        for (const auto& [word, setup] : families())
            if (a == word) return a;
        return "";
    }
    return "";
}

static void declare_globals(CLI::App& app, Context& ctx) {
    app.name("tcd");
    app.description("BPF tail-call dispatch: load, wire, attach and count per-protocol dispatchers");
    app.footer("Run 'tcd COMMAND --help' for a command's options. See tcd(8).");
    app.fallthrough();
    app.require_subcommand(0, 1);
    ctx.g.pin_dir = default_pin_dir();
    app.add_option("-d,--pin-dir", ctx.g.pin_dir, "the instance's bpffs directory (default $TCD_PIN_DIR or " +
                                                      std::string(kDefaultPinDir) + ")")
        ->type_name("DIR")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_flag("-j,--json", ctx.g.json, "JSON on stdout (JSON Lines for streams)");
    app.add_flag("-p,--pretty", ctx.g.pretty, "indented JSON (implies -j)");
    app.add_flag("-q,--quiet", ctx.g.quiet, "print nothing on success");
    app.add_flag("-v,--verbose", ctx.g.verbose, "libbpf/libxdp debug log on stderr");
    app.set_version_flag("-V,--version", version_text(), "version, and the libbpf/libxdp versions in use");
}

void build_app(CLI::App& app, Context& ctx) {
    declare_globals(app, ctx);
    setup_attach(app, ctx);
    setup_map(app, ctx);
    setup_stats(app, ctx);
    setup_instance(app, ctx);
    setup_handler(app, ctx);
    setup_trace(app, ctx);
    setup_object(app, ctx);
    setup_apply(app, ctx);
    setup_monitor(app, ctx);
    apply_policies(app, ctx);
}

// The global options and one command family (all of them for family "").
static void build_app_for(CLI::App& app, Context& ctx, const std::string& family) {
    if (family.empty()) return build_app(app, ctx);
    declare_globals(app, ctx);
    for (const auto& [word, setup] : families())
        if (family == word) {
            setup(app, ctx);
            break;
        }
    apply_policies(app, ctx, family);
}

// CLI11's messages, said the way the rest of tcd speaks.
static std::string parse_error_words(const CLI::ParseError& e) {
    std::string msg = e.what();
    const std::string extras = "The following argument was not expected: ";
    const std::string extras_n = "The following arguments were not expected: ";
    for (const auto& prefix : {extras, extras_n}) {
        if (msg.rfind(prefix, 0) == 0) {
            std::string arg = msg.substr(prefix.size());
            return (arg.rfind("-", 0) == 0 ? "unknown option " : "unexpected argument ") + arg;
        }
    }
    if (msg.find("subcommand is required") != std::string::npos ||
        msg.find("A subcommand is required") != std::string::npos)
        return "a command is required";
    if (msg.size() > 1 && std::islower(static_cast<unsigned char>(msg[1])))
        msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
    return msg;
}

// The chosen command, "map set", for messages.
static std::string command_path(CLI::App& app) {
    std::string path;
    for (CLI::App* sub = &app;;) {
        auto chosen = sub->get_subcommands();
        if (chosen.empty()) break;
        sub = chosen.front();
        path += (path.empty() ? "" : " ") + sub->get_name();
    }
    return path.empty() ? "tcd" : path;
}

// How many of the words after an option word are its values, as CLI11
// reads them at `level` (and, falling through, its parents): a cluster of
// short flags goes on to its last letter, and the first letter that takes a
// value takes the rest of the word ("-qdDIR", "-dq": DIR, q) or, when it is
// the last, the next word ("-qd DIR", "-vjd DIR"); "--pin-dir DIR" takes one,
// "--pin-dir=DIR" and flags none. An option CLI11 does not know takes none
// (CLI11 names it).
static int option_values(CLI::App* level, const std::string& word) {
    auto find = [level](const std::string& name) -> const CLI::Option* {
        for (CLI::App* at = level; at; at = at->get_parent())
            if (const CLI::Option* o = at->get_option_no_throw(name)) return o;
        return nullptr;
    };
    auto takes = [](const CLI::Option* o) {
        return o->get_items_expected_max() == 0 ? 0
                                                : std::max(1, std::min(o->get_type_size_min(), o->get_items_expected_min()));
    };
    if (word.rfind("--", 0) == 0) {
        if (word.find('=') != std::string::npos) return 0;
        const CLI::Option* o = find(word);
        return o ? takes(o) : 0;
    }
    for (size_t at = 1; at < word.size(); ++at) {
        const CLI::Option* o = find(std::string("-") + word[at]);
        if (!o) return 0;
        if (int n = takes(o)) return at + 1 < word.size() ? 0 : n;
    }
    return 0;
}

// The first word of the command line that names no command, checked before
// CLI11 parses (which would call it an unexpected argument, or print the
// top-level help for it when --help follows). Options and their values are
// skipped (option_values); the words of a command group are checked at their
// level.
static std::optional<std::string> unknown_command(CLI::App& app, int argc, const char* const* argv) {
    CLI::App* level = &app;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--") return std::nullopt;
        if (a.size() > 1 && a[0] == '-') {
            i += option_values(level, a);
            continue;
        }
        auto subs = level->get_subcommands([](CLI::App* s) { return !s->get_name().empty(); });
        if (subs.empty()) return std::nullopt;  // a command's own arguments
        auto it = std::find_if(subs.begin(), subs.end(), [&](CLI::App* s) { return s->get_name() == a; });
        if (it == subs.end()) {
            std::vector<std::string> names;
            for (CLI::App* s : subs) names.push_back(s->get_name());
            std::string where = level == &app ? "" : level->get_name() + " ";
            return "unknown command '" + where + a + "' (the commands" + (where.empty() ? "" : " of " + level->get_name()) +
                   ": " + fmt::format("{}", fmt::join(names, ", ")) + "; see 'tcd " + where + "--help')";
        }
        level = *it;
    }
    return std::nullopt;
}

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    // `tcd --version` alone: what CLI11 would print, without a command tree.
    if (argc == 2 && (std::string(argv[1]) == "-V" || std::string(argv[1]) == "--version")) {
        out << version_text() << '\n';
        return 0;
    }
    Context ctx(out, err);
    CLI::App app;
    build_app_for(app, ctx, family_of(argc, argv));
    if (auto bad = unknown_command(app, argc, argv)) {
        err << "tcd: " << *bad << '\n';
        return static_cast<int>(ExitCode::usage);
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        out << app.help();
        return 0;
    } catch (const CLI::CallForAllHelp&) {
        out << app.help("", CLI::AppFormatMode::All);
        return 0;
    } catch (const CLI::CallForVersion&) {
        out << version_text() << '\n';
        return 0;
    } catch (const CLI::ParseError& e) {
        // Name the command being parsed, so the hint points at its help.
        std::string path = "tcd";
        for (CLI::App* sub = &app;;) {
            auto chosen = sub->get_subcommands();
            if (chosen.empty()) break;
            sub = chosen.front();
            path += " " + sub->get_name();
        }
        err << "tcd: " << parse_error_words(e) << " (see " << path << " --help)\n";
        return static_cast<int>(ExitCode::usage);
    }
    // Conflicts are errors, not resolved silently: -d given twice, or empty.
    if (auto* d = app.get_option("--pin-dir"); d->count() > 1) {
        err << "tcd: -d: given " << d->count() << " times; one pin dir per command (see tcd --help)\n";
        return static_cast<int>(ExitCode::usage);
    } else if (d->count() == 1 && ctx.g.pin_dir.empty()) {
        err << "tcd: -d: an empty pin dir (see tcd --help)\n";
        return static_cast<int>(ExitCode::usage);
    }
    // $TCD_LOCK_TIMEOUT, which every command that locks reads: a number of
    // seconds, or an error (not 0 s).
    if (const char* t = std::getenv("TCD_LOCK_TIMEOUT")) {
        char* end = nullptr;
        errno = 0;
        double v = std::strtod(t, &end);
        if (!*t || *end || errno || !std::isfinite(v) || v < 0) {
            err << "tcd: TCD_LOCK_TIMEOUT=" << t << ": not a number of seconds (0 or more)\n";
            return static_cast<int>(ExitCode::usage);
        }
    }
    while (ctx.g.pin_dir.size() > 1 && ctx.g.pin_dir.back() == '/') ctx.g.pin_dir.pop_back();
    set_library_verbosity(ctx.g.verbose);
    if (!ctx.action) {
        err << "tcd: a command is required (see tcd --help)\n";
        return static_cast<int>(ExitCode::usage);
    }
    // The chosen command's policy. The privilege check comes first: without
    // it the lock directory in /run is what fails, and that says nothing
    // useful. Commands that change an instance run one at a time per pin
    // directory.
    const Policy& policy = *ctx.policy;
    if (policy.privileged) {
        if (auto p = check_privileges(command_path(app)); !p) {
            err << "tcd: " << said(p.error()) << '\n';
            return static_cast<int>(p.error().code);
        }
    }
    bool changes = policy.changes == Policy::Changes::instance &&
                   (!policy.only_with || ctx.command->get_option(policy.only_with)->count() > 0);
    std::optional<InstanceLock> lock;
    if (changes) {
        auto l = InstanceLock::acquire(ctx.g.pin_dir, lock_timeout());
        if (!l) {
            err << "tcd: " << said(l.error()) << '\n';
            return static_cast<int>(l.error().code);
        }
        lock.emplace(std::move(*l));
    }
    // A monitor killed with SIGKILL left its monitoring dispatcher: every
    // command on the instance (monitor itself does it on its tree) puts the
    // plain one back first, and says so.
    if (policy.privileged && std::string(policy.command) != "monitor")
        if (auto note = recover_orphaned_monitor(ctx.g.pin_dir)) err << "tcd: note: " << said(*note) << '\n';
    // A C++ exception (a library's, or a bug) is still one tcd: line, never
    // an abort.
    Result<> r;
    try {
        r = ctx.action();
    } catch (const std::exception& e) {
        out.flush();
        err << "tcd: " << command_path(app) << ": internal error: " << e.what() << '\n';
        return static_cast<int>(ExitCode::failed);
    } catch (...) {
        out.flush();
        err << "tcd: " << command_path(app) << ": internal error: unknown exception\n";
        return static_cast<int>(ExitCode::failed);
    }
    if (!r) {
        out.flush();
        err << "tcd: " << said(r.error()) << '\n';
        return static_cast<int>(r.error().code);
    }
    return 0;
}

void add_kind_options(CLI::App& cmd, std::optional<KeyKind>& key, std::optional<Hook>& hook,
                      const std::string& key_help, const std::string& hook_help) {
    add_enum_option<KeyKind>(cmd, "--key", key, key_help)->type_name("proto|port");
    add_enum_option<Hook>(cmd, "--hook", hook, hook_help)->type_name("xdp|tc");
}

}  // namespace tcd::cli
