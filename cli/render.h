// Plain and JSON renderers over the same data (the core's structs; the core
// prints nothing). JSON shapes are the contract in docs/cli.md, "JSON
// output": fields are added, never renamed. Errors in them (status's
// problems) are worded by cli/words.h.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/stats.h"
#include "core/status.h"

namespace tcd::render {

using json = nlohmann::ordered_json;

json stats_json(const StatsView& v);
// UTC, YYYY-MM-DDTHH:MM:SSZ (the JSON documents' time format).
std::string iso_time(int64_t unix_seconds);
std::string stats_plain(const StatsView& v);
// Prometheus text exposition (node_exporter's textfile collector, a scrape).
std::string stats_prometheus(const StatsView& v, const std::string& pin_dir);

json wiring_json(const std::vector<WiredEntry>& w);
// The name column says PORT on a port instance, PROTO on a proto one.
std::string wiring_plain(const std::vector<WiredEntry>& w, KeyKind kind = KeyKind::proto);

json handlers_json(const std::vector<HandlerInfo>& h);
std::string handlers_plain(const std::vector<HandlerInfo>& h);

json status_json(const Status& s);
std::string status_plain(const Status& s, bool verbose);

json attachment_json(const Attachment& a);

json load_json(const LoadResult& r);
std::string load_plain(const LoadResult& r);
json unload_json(const UnloadResult& r);
std::string unload_plain(const UnloadResult& r);

json set_json(const SetResult& r);
std::string set_plain(const SetResult& r);
json del_json(const DelResult& r);
std::string del_plain(const DelResult& r);

json attach_json(const AttachResult& r);
std::string attach_plain(const AttachResult& r);
json detach_json(const std::vector<DetachResult>& r);
std::string detach_plain(const std::vector<DetachResult>& r);

// Serialises j; bytes that are not UTF-8 (interface or pin names) become
// U+FFFD instead of throwing. indent -1 = one line. Every JSON tcd prints
// goes through here.
std::string dump(const json& j, int indent = -1);

// 1234567 -> "1.23M"; used for rates.
std::string si(double v);

}  // namespace tcd::render

#include "core/handlers.h"
#include "core/trace.h"

namespace tcd::render {

json handler_load_json(const HandlerLoadResult& r);
std::string handler_load_plain(const HandlerLoadResult& r);
json handler_unload_json(const HandlerUnloadResult& r);
std::string handler_unload_plain(const HandlerUnloadResult& r);

json trace_frame_json(const TraceFrame& f);
std::string trace_frame_plain(const TraceFrame& f);
std::string trace_header_plain();
json trace_summary_json(const TraceSummary& s);
std::string trace_summary_plain(const TraceSummary& s);

}  // namespace tcd::render

#include "core/monitor.h"

namespace tcd::render {

// tcd monitor: one line per event, like tcpdump's; JSON Lines with -j.
std::string monitor_event_plain(const MonitorEvent& e);
json monitor_event_json(const MonitorEvent& e);
// monitor -w: the frame comment ("tcd ingress DIR/L0 tcp(6) direct
// tcp_handler#812") and the capture's interface name ("veth0@NETNS").
std::string monitor_event_comment(const MonitorEvent& e);
std::string monitor_iface(const MonitorEvent& e);
// The first record of -j: {"start": {"instances": [{"instance", "level"}], "pid", "verdict"}}.
json monitor_start_json(const std::vector<std::pair<std::string, int>>& instances);
// The last record of -j: {"end": {...}}; the plain one goes to stderr.
json monitor_end_json(uint64_t events, uint64_t suppressed, uint64_t lost);
std::string monitor_end_plain(uint64_t events, uint64_t suppressed, uint64_t lost);

}  // namespace tcd::render
