// tcd stats --listen without a kernel: --listen's grammar, what each path
// answers when there is no instance, and the options it does not go with.
#include <gtest/gtest.h>

#include <sstream>

#include "cli/cli.h"
#include "cli/metrics_server.h"

namespace {

using tcd::cli::HttpAnswer;
using tcd::cli::listen_text;
using tcd::cli::metrics_answer;
using tcd::cli::parse_listen;

TEST(Listen, Addresses) {
    struct Case {
        const char* spec;
        const char* host;
        int port;
        const char* text;
    };
    for (const Case& c : {Case{":9435", "", 9435, ":9435"}, Case{"127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0"},
                          Case{"[::1]:80", "::1", 80, "[::1]:80"}, Case{"[::]:9435", "::", 9435, "[::]:9435"},
                          Case{"localhost:65535", "localhost", 65535, "localhost:65535"},
                          Case{"node-1.example:9435", "node-1.example", 9435, "node-1.example:9435"}}) {
        auto a = parse_listen(c.spec);
        ASSERT_TRUE(a.has_value()) << c.spec << ": " << a.error().message();
        EXPECT_EQ(a->host, c.host) << c.spec;
        EXPECT_EQ(a->port, c.port) << c.spec;
        EXPECT_EQ(listen_text(*a), c.text);
    }
}

TEST(Listen, BadAddressesAreUsageErrors) {
    for (const char* spec : {"9435", "", ":", ":65536", ":-1", ":94a", ":123456", "::1:80", "[::1:80", "[::x]:80",
                             "a b:80", "a/b:80"}) {
        auto a = parse_listen(spec);
        ASSERT_FALSE(a.has_value()) << spec;
        EXPECT_EQ(a.error().code, tcd::ExitCode::usage) << spec;
    }
    EXPECT_EQ(parse_listen("9435").error().message(),
              "--listen 9435: not ADDR:PORT (e.g. --listen :9435 or --listen 127.0.0.1:9435)");
    EXPECT_EQ(parse_listen("::1:80").error().message(),
              "--listen ::1:80: an IPv6 address goes in brackets, [::1]:PORT (e.g. --listen :9435 or --listen "
              "127.0.0.1:9435)");
}

TEST(Listen, PathsWithoutAnInstance) {
    const std::string dir = "/sys/fs/bpf/tcd_no_such_instance_here";
    HttpAnswer m = metrics_answer("/metrics", dir, false);
    EXPECT_EQ(m.status, 503);
    EXPECT_EQ(m.body.rfind("tcd: instance " + dir + ": ", 0), 0u) << m.body;
    EXPECT_EQ(m.body.back(), '\n');
    HttpAnswer r = metrics_answer("/-/ready", dir, false);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, m.body);
    EXPECT_EQ(metrics_answer("/-/healthy", dir, false).status, 200);
    HttpAnswer nf = metrics_answer("/metricz", dir, false);
    EXPECT_EQ(nf.status, 404);
    EXPECT_EQ(nf.body, "404 page not found\n");
    EXPECT_EQ(metrics_answer("", dir, false).status, 404);
    EXPECT_EQ(metrics_answer("/metrics/", dir, false).status, 404);
    HttpAnswer root = metrics_answer("/", "/sys/fs/bpf/<a&b>", false);
    EXPECT_EQ(root.status, 200);
    EXPECT_EQ(root.content_type, "text/html; charset=utf-8");
    EXPECT_NE(root.body.find("/sys/fs/bpf/&lt;a&amp;b&gt;"), std::string::npos) << root.body;
}

TEST(Listen, DoesNotGoWithWatchResetOrAnotherFormat) {
    std::ostringstream out, err;
    tcd::cli::Context ctx(out, err);
    ctx.g.pin_dir = "/sys/fs/bpf/tcd_no_such_instance_here";
    tcd::cli::StatsOptions o;
    o.listen = ":9435";
    o.watch = true;
    auto r = tcd::cli::run_stats(o, ctx);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, tcd::ExitCode::usage);
    EXPECT_EQ(r.error().message(), "stats: --listen serves until stopped, not with --watch or --reset");
    o.watch = false;
    o.reset = true;
    EXPECT_EQ(tcd::cli::run_stats(o, ctx).error().code, tcd::ExitCode::usage);
    o.reset = false;
    o.format = tcd::cli::StatsFormat::json;
    r = tcd::cli::run_stats(o, ctx);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().message(), "stats: --listen serves the Prometheus text, not --format json");
    o.format = tcd::cli::StatsFormat::plain;
    o.listen = "9435";
    r = tcd::cli::run_stats(o, ctx);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, tcd::ExitCode::usage);
    EXPECT_EQ(out.str(), "");
}

}  // namespace
