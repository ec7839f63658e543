// tcd stats [--watch --interval --count --all --reset --format --listen]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <iostream>

#include "cli/cli.h"
#include "cli/metrics_server.h"
#include "cli/options.h"
#include "cli/render.h"
#include "cli/stop_signal.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/stats.h"

namespace tcd::cli {
namespace {

// Sleeps for seconds unless a signal comes first.
void nap(double seconds, const StopOnSignal& sig) {
    timespec ts{static_cast<time_t>(seconds), static_cast<long>((seconds - double(time_t(seconds))) * 1e9)};
    while (!sig.stopped() && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

}  // namespace

Result<> run_stats(const StatsOptions& o, Context& ctx) {
    if (!(o.interval > 0) || o.interval > 86400)
        return usage_error("--interval", "must be a number of seconds above 0", "e.g. --interval 0.5");
    if (o.count < 0) return usage_error("--count", "must be 0 (until Ctrl-C) or more");
    if ((o.count || o.interval != 1.0) && !o.watch)
        return usage_error("stats", "--interval and --count go with --watch");
    if (o.reset && o.watch) return usage_error("stats", "--reset and --watch do not go together");
    if (o.format == StatsFormat::prometheus && ctx.json())
        return usage_error("stats", "-j asks for JSON, --format prometheus for the Prometheus text", "give one of them");
    if (o.format == StatsFormat::prometheus && o.watch)
        return usage_error("stats", "--format prometheus is one reading; a scraper or a timer repeats it");
    if (!o.listen.empty()) {
        if (o.watch || o.reset) return usage_error("stats", "--listen serves until stopped, not with --watch or --reset");
        if (o.format == StatsFormat::json)
            return usage_error("stats", std::string("--listen serves the Prometheus text, not --format ") +
                                            name_of(o.format));
        return run_stats_listen(o, ctx);
    }
    if (o.format == StatsFormat::json) ctx.g.json = true;
    auto in = Instance::open(ctx.g.pin_dir);
    if (!in) return propagate(in);

    auto view_now = [&](const StatsSnapshot* prev, StatsSnapshot& now) -> Result<StatsView> {
        auto s = read_stats(in->stats_fd(), in->kind().key);
        if (!s) return propagate(s);
        auto w = list_wiring(*in, /*slotted_only=*/true);
        if (!w) return propagate(w);
        now = *s;
        return make_stats_view(now, prev, *w, o.all);
    };

    if (!o.watch) {
        StatsSnapshot now;
        auto v = view_now(nullptr, now);
        if (!v) return propagate(v);
        if (o.reset) {
            if (auto r = reset_stats(in->stats_fd(), in->kind().key); !r) return r;
        }
        if (o.format == StatsFormat::prometheus) {
            if (!ctx.g.quiet) ctx.out << render::stats_prometheus(*v, ctx.g.pin_dir) << std::flush;
            return {};
        }
        ctx.print(render::stats_json(*v), render::stats_plain(*v));
        return {};
    }

    StopOnSignal sig;
    bool tty = !ctx.json() && isatty(STDOUT_FILENO) && &ctx.out == &std::cout;
    StatsSnapshot prev;
    {
        auto first = read_stats(in->stats_fd(), in->kind().key);
        if (!first) return propagate(first);
        prev = *first;
    }
    for (long i = 0; (o.count == 0 || i < o.count) && !sig.stopped(); i++) {
        nap(o.interval, sig);
        if (sig.stopped()) break;
        StatsSnapshot now;
        auto v = view_now(&prev, now);
        if (!v) return propagate(v);
        prev = now;
        if (ctx.json()) {
            auto line = render::stats_json(*v);
            line["time"] = render::iso_time(static_cast<int64_t>(time(nullptr)));  // when this reading was taken
            ctx.print_line(line);
        } else if (!ctx.g.quiet) {
            char stamp[32];
            time_t t = time(nullptr);
            struct tm tm {};
            localtime_r(&t, &tm);
            strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
            if (tty) ctx.out << "\033[H\033[2J";  // redraw in place
            ctx.out << "tcd stats  " << ctx.g.pin_dir << "  " << stamp << "  every " << o.interval
                    << "s  (Ctrl-C quits)\n"
                    << render::stats_plain(*v);
            if (!tty) ctx.out << '\n';
            ctx.out.flush();
        }
    }
    return {};
}

void setup_stats(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<StatsOptions>();
    auto* stats = app.add_subcommand("stats", "per-key packets, bytes and misses, summed over all CPUs");
    stats->add_flag("--watch", o->watch, "redraw every interval (JSON Lines with -j); Ctrl-C quits");
    stats->add_option("--interval", o->interval, "seconds between readings with --watch (default 1)")
        ->type_name("SECONDS");
    stats->add_option("--count", o->count, "stop after N readings with --watch")->type_name("N");
    stats->add_flag("--all", o->all, "all 256 keys, not only wired or counted ones");
    stats->add_flag("--reset", o->reset, "print, then zero the counters");
    add_enum_option<StatsFormat>(*stats, "--format", o->format,
                                 "plain (default), json (as -j) or prometheus (text exposition)")
        ->type_name("plain|json|prometheus");
    stats->add_option("--listen", o->listen,
                      "serve the Prometheus text over HTTP at /metrics, read on each scrape, until SIGTERM")
        ->type_name("ADDR:PORT");
    stats->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_stats(*o, ctx); }; });
}

}  // namespace tcd::cli
