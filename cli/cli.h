// The command line: a thin layer over the core. Each command family has a
// setup_x(CLI::App&, Context&) that declares it, CLI11 parsing into typed
// options (the core's requests and enums, cli/options.h), and
// run_x(options, ctx) that does it (tests/unit/listen_test calls run_stats so).
#pragma once

#include <optional>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/error.h"
#include "core/kind.h"
#include "core/lifecycle.h"
#include "core/monitor.h"
#include "core/names.h"

namespace CLI {
class App;
}

namespace tcd {
namespace cli {
// stats --format.
enum class StatsFormat { plain, json, prometheus };
}  // namespace cli
template <>
struct Names<cli::StatsFormat> {
    static constexpr EnumName<cli::StatsFormat> table[] = {
        {cli::StatsFormat::plain, "plain"}, {cli::StatsFormat::json, "json"}, {cli::StatsFormat::prometheus, "prometheus"}};
};
}  // namespace tcd

namespace tcd::cli {

struct Globals {
    std::string pin_dir;
    bool json = false;
    bool pretty = false;
    bool quiet = false;
    bool verbose = false;
};

// What a command needs and what it changes, apart from its options: one row
// per command in the table build_app walks (policies() in cli/app.cpp). run()
// acts on the chosen command's row before the command runs: the privilege
// check first, then the instance lock.
struct Policy {
    enum class Changes {
        nothing,   // reads only; no lock
        instance,  // the --pin-dir instance: run() takes its lock
        its_own,   // the instance it works out itself (apply: the file's pin_dir), whose lock it takes
    };
    const char* command;  // its path, "map set"
    bool privileged;      // needs root, or CAP_BPF (or CAP_SYS_ADMIN) with CAP_NET_ADMIN
    Changes changes;
    const char* only_with = nullptr;  // changes the instance only when this flag is given ("--reset")
};

// The policy table, one row per command (build_app holds it to the tree).
const std::vector<Policy>& policies();

struct Context {
    Globals g;
    std::ostream& out;
    std::ostream& err;
    std::function<Result<>()> action;  // what the parsed command line asks for
    const Policy* policy = nullptr;    // the chosen command's row
    CLI::App* command = nullptr;       // the chosen command, for its flags

    Context(std::ostream& o, std::ostream& e) : out(o), err(e) {}
    bool json() const { return g.json || g.pretty; }
    // One document per command: JSON with -j/-p, else the plain text; -q
    // silences both.
    void print(const nlohmann::ordered_json& j, const std::string& plain) const;
    // One JSON line (streams such as stats --watch).
    void print_line(const nlohmann::ordered_json& j) const;
};

// Declares the whole command tree on app (used by main and the sync tests).
void build_app(CLI::App& app, Context& ctx);

// Parses argv, runs the command, prints an error once; returns the exit status.
int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

// Command families.
void setup_instance(CLI::App& app, Context& ctx);  // load, unload, status
void setup_map(CLI::App& app, Context& ctx);       // map set|del|list
void setup_attach(CLI::App& app, Context& ctx);    // attach, detach
void setup_stats(CLI::App& app, Context& ctx);     // stats
void setup_handler(CLI::App& app, Context& ctx);   // handler load|list|unload
void setup_trace(CLI::App& app, Context& ctx);     // trace
void setup_object(CLI::App& app, Context& ctx);    // object
void setup_apply(CLI::App& app, Context& ctx);     // apply
void setup_monitor(CLI::App& app, Context& ctx);   // monitor

// --key proto|port and --hook xdp|tc, as load, object and trace take them
// (not given: left as they are).
void add_kind_options(CLI::App& cmd, std::optional<KeyKind>& key, std::optional<Hook>& hook,
                      const std::string& key_help, const std::string& hook_help);

Result<> run_load(const LoadRequest& o, Context& ctx);
Result<> run_unload(bool force, Context& ctx);
Result<> run_status(bool scan, Context& ctx);

struct MapSetOptions {
    std::string key, handler;
    std::vector<std::string> more;  // further KEY HANDLER pairs
};
Result<> run_map_set(const MapSetOptions& o, Context& ctx);
Result<> run_map_del(const std::vector<std::string>& keys, Context& ctx);
Result<> run_map_list(Context& ctx);

struct AttachOptions {
    AttachRequest req;
    std::optional<Error> bad_order;  // --order's text was no placement: said when the command runs
};
Result<> run_attach(const AttachOptions& o, Context& ctx);

using DetachOptions = DetachRequest;
Result<> run_detach(const DetachOptions& o, Context& ctx);

struct StatsOptions {
    bool watch = false;
    double interval = 1.0;
    long count = 0;  // 0 = until Ctrl-C
    bool all = false;
    bool reset = false;
    StatsFormat format = StatsFormat::plain;
    std::string listen;            // ADDR:PORT: serve /metrics there (cli/metrics_server.h)
};
Result<> run_stats(const StatsOptions& o, Context& ctx);

struct HandlerLoadOptions {
    std::string object;
    std::vector<std::string> progs;
};
Result<> run_handler_load(const HandlerLoadOptions& o, Context& ctx);
Result<> run_handler_list(Context& ctx);
struct HandlerUnloadOptions {
    std::string name;
    bool force = false;
};
Result<> run_handler_unload(const HandlerUnloadOptions& o, Context& ctx);

struct MonitorCliOptions {
    MonitorOptions core;            // keys filled from `keys` by the instance's key kind
    std::vector<std::string> keys;  // --key, as given
    std::string iface, netns;
    long count = 0;                 // 0: until Ctrl-C
    double duration = 0;            // 0: until Ctrl-C
    std::string write;              // -w FILE: a pcapng capture ("-" stdout), no event lines
};
Result<> run_monitor(const MonitorCliOptions& o, Context& ctx);

struct TraceOptions {
    std::string pcap;
    std::string hex;
    std::optional<KeyKind> key;  // the dispatcher to run when none is loaded (proto, xdp when not given)
    std::optional<Hook> hook;
    uint32_t repeat = 0;  // time each level with this many test runs a frame; 0 = not given
};
Result<> run_trace(const TraceOptions& o, Context& ctx);

struct ObjectOptions {
    std::string output;
    std::optional<KeyKind> key;  // proto when not given
    std::optional<Hook> hook;    // xdp when not given
};
Result<> run_object(const ObjectOptions& o, Context& ctx);

struct ApplyOptions {
    std::string file;
    bool dry_run = false;
};
Result<> run_apply(const ApplyOptions& o, Context& ctx);

}  // namespace tcd::cli
