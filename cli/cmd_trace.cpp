// tcd trace (--pcap FILE | --hex HEXBYTES) [--key proto|port] [--hook xdp|tc] [--repeat N]
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "cli/render.h"
#include "cli/words.h"
#include "core/kind.h"
#include "core/pcap_reader.h"
#include "core/trace.h"

namespace tcd::cli {
namespace {

// Streams frames out as they are traced: memory does not grow with the file.
class TraceWriter {
public:
    TraceWriter(Context& ctx, uint32_t repeat) : ctx_(ctx) { summary_.set_repeat(repeat); }
    void frame(const TraceFrame& f) {
        summary_.add(f);
        if (ctx_.g.quiet) return;
        if (ctx_.json()) {
            ctx_.out << (first_ ? "{\"frames\": [" : ",") << (ctx_.g.pretty ? "\n  " : "");
            ctx_.out << render::dump(render::trace_frame_json(f));
        } else {
            if (first_) ctx_.out << render::trace_header_plain();
            ctx_.out << render::trace_frame_plain(f);
        }
        first_ = false;
    }
    // note: what the trace could not show on this kernel ("" = nothing).
    void finish(const std::string& note) {
        if (ctx_.g.quiet) return;
        if (ctx_.json()) {
            if (first_) ctx_.out << "{\"frames\": [";
            ctx_.out << (ctx_.g.pretty ? "\n],\n\"summary\": " : "], \"summary\": ")
                     << render::dump(render::trace_summary_json(summary_), ctx_.g.pretty ? 2 : -1);
            if (!note.empty()) ctx_.out << (ctx_.g.pretty ? ",\n\"note\": " : ", \"note\": ") << render::dump(note);
            if (summary_.repeat()) ctx_.out << (ctx_.g.pretty ? ",\n\"repeat\": " : ", \"repeat\": ") << summary_.repeat();
            ctx_.out << "}\n";
        } else {
            ctx_.out << render::trace_summary_plain(summary_);
            if (!note.empty()) ctx_.out << "note: " << note << "\n";
        }
        ctx_.out.flush();
    }
    // A failure after frames went out: with -j the document is closed, its
    // summary of the frames traced so far followed by "error", so that stdout
    // holds one whole document (main prints the error on stderr as ever).
    void fail(const Error& e) {
        if (ctx_.g.quiet || !ctx_.json() || first_) return;
        ctx_.out << (ctx_.g.pretty ? "\n],\n\"summary\": " : "], \"summary\": ")
                 << render::dump(render::trace_summary_json(summary_), ctx_.g.pretty ? 2 : -1)
                 << (ctx_.g.pretty ? ",\n\"error\": " : ", \"error\": ") << render::dump(said(e));
        if (summary_.repeat()) ctx_.out << (ctx_.g.pretty ? ",\n\"repeat\": " : ", \"repeat\": ") << summary_.repeat();
        ctx_.out << "}\n";
        ctx_.out.flush();
    }

private:
    Context& ctx_;
    TraceSummary summary_;
    bool first_ = true;
};

}  // namespace

Result<> run_trace(const TraceOptions& o, Context& ctx) {
    if (o.pcap.empty() == o.hex.empty()) return usage_error("trace", "give exactly one of --pcap FILE or --hex HEXBYTES");
    const Kind kind{o.key.value_or(KeyKind::proto), o.hook.value_or(Hook::xdp)};
    std::vector<uint8_t> hex;
    std::optional<PcapReader> reader;
    if (!o.hex.empty()) {
        auto h = parse_hex(o.hex);
        if (!h) return propagate(h);
        hex = std::move(*h);
    } else {
        auto r = PcapReader::open(o.pcap);
        if (!r) return propagate(r);
        reader.emplace(std::move(*r));
    }
    auto tracer = Tracer::open(ctx.g.pin_dir, kind);
    if (!tracer) return propagate(tracer);
    // A loaded instance decides the dispatcher; --key/--hook may only agree.
    if (tracer->instance_loaded() &&
        ((o.key && tracer->kind().key != *o.key) || (o.hook && tracer->kind().hook != *o.hook)))
        return fail("trace", fmt::format("{} holds a {} dispatcher on {}", ctx.g.pin_dir,
                                         key_kind_name(tracer->kind().key), hook_name(tracer->kind().hook)),
                    "leave out --key/--hook to trace it, or give a --pin-dir with no instance");

    tracer->set_repeat(o.repeat);
    TraceWriter out(ctx, o.repeat);
    auto failed = [&out](const Error& e) {
        out.fail(e);
        return tl::unexpected<Error>(e);
    };
    if (!hex.empty()) {
        auto f = tracer->run(hex.data(), hex.size(), 1);
        if (!f) return propagate(f);
        out.frame(*f);
    } else {
        Frame fr{};
        while (true) {
            auto more = reader->next(fr);
            if (!more) return failed(more.error());
            if (!*more) break;
            auto f = tracer->run(fr.data, fr.caplen, fr.number);
            if (!f) return failed(f.error());
            out.frame(*f);
        }
    }
    out.finish(tracer->limitation());
    return {};
}

void setup_trace(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<TraceOptions>();
    auto* trace = app.add_subcommand(
        "trace", "run frames through the dispatcher with BPF_PROG_TEST_RUN (no interface, live counters untouched)");
    auto* pcap = trace->add_option("--pcap", o->pcap, "a pcap or pcapng capture (Ethernet)")->type_name("FILE");
    auto* hex = trace->add_option("--hex", o->hex, "one frame as hex bytes")->type_name("HEXBYTES");
    pcap->excludes(hex);
    trace->add_option("--repeat", o->repeat,
                      "time each level of each frame: N test runs of the level's program alone, mean ns per run "
                      "(the chain from that level down, and its own share)")
        ->check(CLI::Range(1u, 10000000u))
        ->type_name("N");
    add_kind_options(*trace, o->key, o->hook, "with no instance loaded: proto (default) or port",
                     "with no instance loaded: xdp (default) or tc");
    trace->callback([&ctx, o] { ctx.action = [&ctx, o] { return run_trace(*o, ctx); }; });
}

}  // namespace tcd::cli
