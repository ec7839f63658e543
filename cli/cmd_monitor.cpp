// tcd monitor [--key K]... [--misses] [--iface IFACE [--netns NS]] [--level N]
//             [--count N] [--duration S] [--sample N] [--rate N] [--snaplen N] [-w FILE]
#include <CLI/CLI.hpp>
#include <csignal>
#include <chrono>
#include <map>
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/render.h"
#include "cli/stop_signal.h"
#include "cli/words.h"
#include "core/keys.h"
#include "core/monitor.h"
#include "core/netns.h"
#include "core/pcapng.h"
#include "tcd/shared.h"

namespace tcd::cli {

Result<> run_monitor(const MonitorCliOptions& o, Context& ctx) {
    if (o.count < 0) return usage_error("--count", "must be 0 (until Ctrl-C) or more");
    if (o.duration < 0 || o.duration > 31536000) return usage_error("--duration", "must be a number of seconds, 0 (until Ctrl-C) or more");
    if (!o.netns.empty() && o.iface.empty()) return usage_error("--netns", "goes with --iface");
    if (o.core.sample == 0) return usage_error("--sample", "must be 1 (every frame) or more");
    if (o.core.rate == 0) return usage_error("--rate", "must be 1 event per second or more");
    if (o.core.snaplen > TCD_MON_SNAP_MAX)
        return usage_error("--snaplen", fmt::format("must be {} bytes or fewer", TCD_MON_SNAP_MAX));
    if (o.keys.size() > TCD_MON_KEYS)
        return usage_error("--key", fmt::format("given {} times; at most {} keys", o.keys.size(), TCD_MON_KEYS));
    if (o.core.level && (*o.core.level < 0 || *o.core.level > 254)) return usage_error("--level", "must be 0 to 254");
    if (o.write == "-" && ctx.json())
        return usage_error("-w -", "the capture and the JSON records would share stdout", "write the capture to a file");
    MonitorOptions m = o.core;
    auto kind = pinned_kind(ctx.g.pin_dir);
    for (const auto& k : o.keys) {
        auto key = parse_key(k, kind ? kind->key : KeyKind::proto);
        if (!key) return propagate(key);
        m.keys.push_back(*key);
    }
    m.iface = o.iface;
    if (!o.netns.empty()) {
        auto ns = resolve_netns(o.netns);
        if (!ns) return propagate(ns);
        m.netns = *ns;
    }
    // -w: the capture is made before any dispatcher is swapped (a file that
    // cannot be written changes nothing); one interface block per interface
    // (and netns) as its first frame comes.
    std::optional<PcapngWriter> cap;
    std::map<std::string, uint32_t> cap_ifaces;
    if (!o.write.empty()) {
        auto w = PcapngWriter::open(o.write, o.core.snaplen);
        if (!w) return propagate(w);
        cap.emplace(std::move(*w));
    }
    StopOnSignal sig;
    auto mon = Monitor::start(ctx.g.pin_dir, m);
    if (!mon) return propagate(mon);
    Result<> cap_failed;
    if (!ctx.g.quiet && ctx.json()) ctx.print_line(render::monitor_start_json(mon->instances()));
    if (!ctx.g.quiet && !ctx.json()) {
        std::string levels;
        for (const auto& [dir, level] : mon->instances()) levels += fmt::format("{}{} (L{})", levels.empty() ? "" : ", ", dir, level);
        ctx.err << "tcd: monitoring " << levels << "; verdict: " << kVerdictNotShown << '\n';
        ctx.err.flush();
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.duration);
    long events = 0;
    bool done = false;
    auto emit = [&](const MonitorEvent& e) {
        if (cap) {
            const std::string name = render::monitor_iface(e);
            auto at = cap_ifaces.find(name);
            if (at == cap_ifaces.end()) {
                auto id = cap->add_interface(name);
                if (!id) {
                    cap_failed = propagate(id);
                    return false;
                }
                at = cap_ifaces.emplace(name, *id).first;
            }
            auto r = cap->write(at->second, static_cast<uint64_t>(e.time_ns), e.len, e.frame,
                                render::monitor_event_comment(e));
            if (!r) {
                cap_failed = r;
                return false;
            }
        } else if (!ctx.g.quiet) {
            if (ctx.json()) ctx.print_line(render::monitor_event_json(e));
            else ctx.out << render::monitor_event_plain(e);
        }
        ++events;
        if (o.count && events >= o.count) done = true;
        return !done;
    };
    while (!done && !sig.stopped()) {
        auto r = mon->poll(100, emit);
        if (!r) return propagate(r);
        if (!cap_failed) return cap_failed;
        if (cap) {
            if (auto f = cap->flush(); !f) return f;
        } else if (!ctx.g.quiet && !ctx.json()) {
            ctx.out.flush();
        }
        if (o.duration > 0 && std::chrono::steady_clock::now() >= until) break;
    }
    if (!done) {
        auto r = mon->drain(emit);  // what came before the signal or the end of --duration
        if (!r) return propagate(r);
        if (!cap_failed) return cap_failed;
    }
    uint64_t suppressed = mon->suppressed(), lost = mon->lost();
    if (auto r = mon->stop(); !r) return propagate(r);
    if (cap) {
        if (auto r = cap->close(); !r) return r;
    }
    if (!ctx.g.quiet) {
        if (ctx.json()) ctx.print_line(render::monitor_end_json(events, suppressed, lost));
        else ctx.err << "tcd: " << render::monitor_end_plain(events, suppressed, lost);
    }
    return {};
}

void setup_monitor(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<MonitorCliOptions>();
    auto* mon = app.add_subcommand("monitor", "watch live frames as the dispatcher handles them (sampled, rate-limited)");
    mon->add_option("--key", o->keys, "only this key (repeatable, at most 16)")->type_name("KEY");
    mon->add_flag("--misses", o->core.misses, "only frames whose key has no handler");
    mon->add_option("--iface", o->iface, "only frames on this interface")->type_name("IFACE");
    mon->add_option("--netns", o->netns, "the interface's network namespace (/run/netns/NAME or a path)")->type_name("NAME|PATH");
    mon->add_option("--level", o->core.level, "only this level of the instance tree (0: the instance)")->type_name("N");
    mon->add_option("--count", o->count, "stop after N events (default 0: until Ctrl-C)")->type_name("N");
    mon->add_option("--duration", o->duration, "stop after S seconds (default 0: until Ctrl-C)")->type_name("S");
    mon->add_option("--sample", o->core.sample, "one frame in N is a candidate (default 1)")->type_name("N");
    mon->add_option("--rate", o->core.rate, "events per second at most, all CPUs together (default 1000)")->type_name("N");
    mon->add_option("--snaplen", o->core.snaplen, "bytes of each frame captured (default 128, at most 1024)")->type_name("N");
    mon->add_option("-w,--write", o->write,
                    "write the frames to FILE as pcapng (\"-\" stdout), tcd's decision in each frame's comment")
        ->type_name("FILE");
    mon->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_monitor(*o, ctx); }; });
}

}  // namespace tcd::cli
