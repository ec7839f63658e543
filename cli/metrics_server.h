// `tcd stats --listen ADDR:PORT`: the counters over HTTP for Prometheus, read
// afresh on each scrape and rendered as `stats --format prometheus` renders
// them. The HTTP transport is a module of its own (cli/http_module.h); what
// each path answers is decided here.
#pragma once

#include <string>

#include "cli/cli.h"
#include "core/error.h"

namespace tcd::cli {

// --listen's value: HOST:PORT, [IPV6]:PORT or :PORT (every address); port
// 0 takes a free one.
struct ListenAddress {
    std::string host;  // without brackets; "" = every address
    int port = 0;
};
Result<ListenAddress> parse_listen(const std::string& spec);
// How tcd says it back: ":9435", "127.0.0.1:9435", "[::1]:9435".
std::string listen_text(const ListenAddress& a);

struct HttpAnswer {
    int status = 200;
    std::string content_type;
    std::string body;
};

// What a GET of path answers, for the instance in pin_dir:
//   /metrics    200, the Prometheus text read now; 503 with tcd's error line
//               when the instance cannot be read (not loaded, say)
//   /-/healthy  200 while the server answers (liveness)
//   /-/ready    200 when /metrics would answer 200, else 503 with the reason
//               (readiness: the instance is loaded and its counters read)
//   /           a page that links to the above
//   anything else 404
HttpAnswer metrics_answer(const std::string& path, const std::string& pin_dir, bool all);

// Serves until SIGINT or SIGTERM (then exit 0).
Result<> run_stats_listen(const StatsOptions& o, Context& ctx);

}  // namespace tcd::cli
