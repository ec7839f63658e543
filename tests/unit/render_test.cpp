// JSON shapes of docs/cli.md ("JSON output"), from the renderers over hand-made data.
#include <gtest/gtest.h>

#include "cli/render.h"

#include <sstream>

namespace {

tcd::StatsSnapshot snapshot() {
    tcd::StatsSnapshot s;
    s.keys[6] = {10, 740, 0};
    s.keys[1] = {3, 294, 3};
    s.non_ip = {2, 84, 0};
    s.malformed = {1, 10, 0};
    s.taken_ns = 2'000'000'000;
    return s;
}

std::vector<tcd::WiredEntry> wiring() { return {{6, "tcp", "tcp_handler", 42, "abcd"}, {17, "udp", "udp_handler", 43, "ef01"}}; }

}  // namespace

TEST(RenderStats, SpecShape) {
    auto s = snapshot();
    auto v = tcd::make_stats_view(s, nullptr, wiring(), false);
    auto j = tcd::render::stats_json(v);
    ASSERT_EQ(j["keys"].size(), 3u);  // 1 (counted), 6 and 17 (wired)
    EXPECT_EQ(j["keys"][0]["key"], 1);
    EXPECT_TRUE(j["keys"][0]["handler"].is_null());
    EXPECT_EQ(j["keys"][0]["missed"], 3);
    EXPECT_EQ(j["keys"][1]["proto"], "tcp");
    EXPECT_EQ(j["keys"][1]["handler"], "tcp_handler");
    EXPECT_EQ(j["keys"][1]["packets"], 10);
    EXPECT_EQ(j["keys"][1]["bytes"], 740);
    EXPECT_EQ(j["keys"][2]["packets"], 0);
    EXPECT_EQ(j["non_ip"]["packets"], 2);
    EXPECT_EQ(j["malformed"]["bytes"], 10);
    EXPECT_EQ(j["total"]["packets"], 16);
    EXPECT_EQ(j["total"]["bytes"], 740 + 294 + 84 + 10);
    EXPECT_FALSE(j.contains("interval_s"));
    EXPECT_FALSE(j["keys"][0].contains("pps"));
    // Parses back as JSON.
    EXPECT_EQ(nlohmann::json::parse(j.dump()).size(), 4u);
}

TEST(RenderStats, AllKeysAndRates) {
    auto prev = snapshot();
    auto now = prev;
    now.keys[6].packets += 100;
    now.keys[6].bytes += 1000;
    now.taken_ns += 500'000'000;  // half a second later
    auto v = tcd::make_stats_view(now, &prev, wiring(), true);
    auto j = tcd::render::stats_json(v);
    EXPECT_EQ(j["keys"].size(), 256u);
    EXPECT_DOUBLE_EQ(j["interval_s"].get<double>(), 0.5);
    EXPECT_DOUBLE_EQ(j["keys"][6]["pps"].get<double>(), 200.0);
    EXPECT_DOUBLE_EQ(j["keys"][6]["bps"].get<double>(), 16000.0);
    EXPECT_DOUBLE_EQ(j["keys"][17]["pps"].get<double>(), 0.0);
    std::string plain = tcd::render::stats_plain(v);
    EXPECT_NE(plain.find("PPS"), std::string::npos);
    EXPECT_NE(plain.find("tcp_handler"), std::string::npos);
}

TEST(RenderStats, PlainHasClassesAndTotal) {
    auto v = tcd::make_stats_view(snapshot(), nullptr, wiring(), false);
    std::string plain = tcd::render::stats_plain(v);
    for (const char* s : {"KEY", "PROTO", "HANDLER", "PACKETS", "BYTES", "MISSED", "non-ip", "malformed", "total"})
        EXPECT_NE(plain.find(s), std::string::npos) << s;
}

TEST(RenderMap, ListShape) {
    auto j = tcd::render::wiring_json(wiring());
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["key"], 6);
    EXPECT_EQ(j[0]["proto"], "tcp");
    EXPECT_EQ(j[0]["handler"], "tcp_handler");
    EXPECT_EQ(j[0]["prog_id"], 42);
    EXPECT_EQ(j[0]["tag"], "abcd");
    EXPECT_EQ(tcd::render::wiring_plain({}), "no key is wired\n");
}

TEST(RenderHandlers, ListShape) {
    std::vector<tcd::HandlerInfo> hs = {{"tcp_handler", 42, "abcd", "xdp", 0, true, {6}}};
    auto j = tcd::render::handlers_json(hs);
    EXPECT_EQ(j[0]["name"], "tcp_handler");
    EXPECT_EQ(j[0]["prog_id"], 42);
    EXPECT_EQ(j[0]["builtin"], true);
    EXPECT_EQ(j[0]["keys"].dump(), "[6]");
}

TEST(RenderStatus, Shape) {
    tcd::Status s;
    s.pin_dir = "/sys/fs/bpf/tcd";
    s.loaded = true;
    s.dispatcher = tcd::DispatcherStatus{7, "tag", "pass", 0, 100, 800, 600};
    s.wired = wiring();
    tcd::Attachment eth0;
    eth0.ifname = "eth0";
    eth0.ifindex = 2;
    eth0.mode = tcd::AttachMode::native;
    s.attached = {eth0};
    auto j = tcd::render::status_json(s);
    EXPECT_EQ(j["pin_dir"], "/sys/fs/bpf/tcd");
    EXPECT_EQ(j["loaded"], true);
    EXPECT_EQ(j["dispatcher"]["prog_id"], 7);
    EXPECT_EQ(j["dispatcher"]["miss_action"], "pass");
    EXPECT_EQ(j["attached"][0]["ifname"], "eth0");
    EXPECT_EQ(j["attached"][0]["ifindex"], 2);
    EXPECT_TRUE(j["attached"][0]["netns"].is_null());
    EXPECT_EQ(j["attached"][0]["mode"], "native");
    EXPECT_TRUE(j.contains("handlers"));
    EXPECT_EQ(j["wired"].size(), 2u);
    tcd::Status off;
    off.pin_dir = "/x";
    EXPECT_TRUE(tcd::render::status_json(off)["dispatcher"].is_null());
}

// A tcx link: mode tcx, its direction and place in the chain (plain and
// JSON); a clsact filter stays mode tc, without a place.
TEST(RenderStatus, TcxAndClsactAttachments) {
    tcd::Status s;
    s.pin_dir = "/sys/fs/bpf/tcd";
    s.loaded = true;
    s.kind.hook = tcd::Hook::tc;
    s.dispatcher = tcd::DispatcherStatus{7, "tag", "next", 0, 100, 800, 600};
    tcd::Attachment link;
    link.ifname = "eth0";
    link.ifindex = 2;
    link.mode = tcd::AttachMode::tcx;
    link.direction = tcd::Direction::ingress;
    link.position = 2;
    link.link_pin = "/sys/fs/bpf/tcd/links/tcx-1-2-ingress";  // tcd's own link
    link.chain = 3;
    tcd::Attachment filter = link;
    filter.mode = tcd::AttachMode::tc;
    filter.direction = tcd::Direction::egress;
    s.attached = {link, filter};
    auto j = tcd::render::status_json(s);
    EXPECT_EQ(j["dispatcher"]["miss_action"], "next");
    EXPECT_EQ(j["attached"][0]["mode"], "tcx");
    EXPECT_EQ(j["attached"][0]["direction"], "ingress");
    EXPECT_EQ(j["attached"][0]["position"], 2);
    EXPECT_EQ(j["attached"][0]["tcd_link"], true);
    EXPECT_EQ(j["attached"][0]["chain"], 3);
    EXPECT_EQ(j["attached"][1]["mode"], "tc");
    EXPECT_EQ(j["attached"][1]["direction"], "egress");
    EXPECT_FALSE(j["attached"][1].contains("position"));
    std::string plain = tcd::render::status_plain(s, false);
    EXPECT_NE(plain.find("attached: eth0 ingress (ifindex 2, netns -, tcx link, 2 of 3 in the chain)"),
              std::string::npos)
        << plain;
    EXPECT_NE(plain.find("attached: eth0 egress (ifindex 2, netns -, tc clsact)"), std::string::npos) << plain;
}

// One table of names each for modes, directions and orders; next is tc's.
TEST(AttachNames, RoundTrip) {
    for (auto m : {tcd::AttachMode::auto_mode, tcd::AttachMode::native, tcd::AttachMode::skb, tcd::AttachMode::hw,
                   tcd::AttachMode::tc, tcd::AttachMode::tcx})
        EXPECT_EQ(tcd::from_name<tcd::AttachMode>(tcd::mode_name(m)), m) << tcd::mode_name(m);
    // Aliases are read, never printed; the CLI lists XDP's modes alone.
    EXPECT_EQ(tcd::from_name<tcd::AttachMode>("offload"), tcd::AttachMode::hw);
    EXPECT_STREQ(tcd::mode_name(tcd::AttachMode::hw), "hw");
    EXPECT_EQ(tcd::names_of<tcd::AttachMode>(tcd::is_xdp_mode), (std::vector<std::string>{"auto", "native", "skb", "hw"}));
    EXPECT_EQ(tcd::names_of<tcd::Direction>(), (std::vector<std::string>{"ingress", "egress"}));
    EXPECT_EQ(tcd::or_list(tcd::names_of<tcd::MissAction>()), "pass, drop or next");
    EXPECT_EQ(tcd::verdict_name(tcd::Hook::tc, uint32_t(-1)), "TC_ACT_UNSPEC");
    EXPECT_EQ(tcd::verdict_name(tcd::Hook::xdp, 9), "XDP_9");
    EXPECT_EQ(*tcd::parse_xdp_mode("drv"), tcd::AttachMode::native);
    EXPECT_FALSE(tcd::parse_xdp_mode("tcx"));
    EXPECT_EQ(*tcd::parse_direction(""), tcd::Direction::none);
    EXPECT_EQ(*tcd::parse_direction("egress"), tcd::Direction::egress);
    EXPECT_FALSE(tcd::parse_direction("both"));
    EXPECT_EQ(tcd::parse_order("first")->order, tcd::Order::first);
    EXPECT_STREQ(tcd::order_name(tcd::Order::last), "last");
    EXPECT_FALSE(tcd::parse_order("middle"));
    // Relative to a program of the chain, by id or name.
    auto before = tcd::parse_order("before:1234");
    ASSERT_TRUE(before);
    EXPECT_EQ(before->order, tcd::Order::before);
    EXPECT_EQ(before->relative, "1234");
    EXPECT_TRUE(before->is_relative());
    auto after = tcd::parse_order("after:cil_from_netdev");
    ASSERT_TRUE(after);
    EXPECT_EQ(after->order, tcd::Order::after);
    EXPECT_EQ(after->relative, "cil_from_netdev");
    EXPECT_FALSE(tcd::parse_order("last")->is_relative());
    for (const char* bad : {"before:", "after:", "before", "beside:x", "First"}) {
        auto r = tcd::parse_order(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, tcd::ExitCode::usage) << bad;
    }
    EXPECT_EQ(*tcd::parse_miss_action("next", tcd::Hook::tc), tcd::MissAction::next);
    EXPECT_FALSE(tcd::parse_miss_action("next", tcd::Hook::xdp));
    EXPECT_EQ(tcd::default_miss_action(tcd::Hook::tc), tcd::MissAction::next);
    EXPECT_EQ(tcd::default_miss_action(tcd::Hook::xdp), tcd::MissAction::pass);
    EXPECT_EQ(tcd::miss_action_verdict(tcd::MissAction::next, tcd::Hook::tc), uint32_t(-1));  // TC_ACT_UNSPEC
    EXPECT_EQ(tcd::undispatched_verdict(tcd::MissAction::drop, tcd::Hook::tc), 0u);          // TC_ACT_OK
}

TEST(RenderTrace, FrameShape) {
    tcd::TraceFrame f;
    f.frame = 1;
    f.len = 74;
    f.cls = "ipv4";
    f.key = 6;
    f.handler = "tcp_handler";
    f.verdict = {tcd::Hook::xdp, 2};  // XDP_PASS
    auto j = tcd::render::trace_frame_json(f);
    EXPECT_EQ(j["frame"], 1);
    EXPECT_EQ(j["len"], 74);
    EXPECT_EQ(j["class"], "ipv4");
    EXPECT_EQ(j["key"], 6);
    EXPECT_EQ(j["handler"], "tcp_handler");
    EXPECT_EQ(j["verdict"], "XDP_PASS");
    tcd::TraceFrame n;
    n.cls = "non-ip";
    n.verdict = {tcd::Hook::xdp, 2};
    EXPECT_TRUE(tcd::render::trace_frame_json(n)["key"].is_null());
}

TEST(RenderStats, Prometheus) {
    auto v = tcd::make_stats_view(snapshot(), nullptr, wiring(), false);
    std::string p = tcd::render::stats_prometheus(v, "/sys/fs/bpf/t\"cd");
    EXPECT_NE(p.find("# TYPE tcd_packets_total counter"), std::string::npos);
    EXPECT_NE(p.find("tcd_packets_total{pin_dir=\"/sys/fs/bpf/t\\\"cd\",key=\"6\",proto=\"tcp\",handler=\"tcp_handler\"} 10"),
              std::string::npos)
        << p;
    EXPECT_NE(p.find("tcd_missed_total{pin_dir=\"/sys/fs/bpf/t\\\"cd\",key=\"1\",proto=\"icmp\",handler=\"\"} 3"),
              std::string::npos);
    EXPECT_NE(p.find("tcd_class_packets_total{pin_dir=\"/sys/fs/bpf/t\\\"cd\",class=\"non-ip\"} 2"), std::string::npos);
    EXPECT_NE(p.find("tcd_total_packets_total{pin_dir=\"/sys/fs/bpf/t\\\"cd\"} 16"), std::string::npos);
    // Every sample line is NAME{labels} VALUE.
    std::istringstream in(p);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("#", 0) == 0) continue;
        EXPECT_NE(line.find("} "), std::string::npos) << line;
    }
}

// A port instance's key column holds ports: the header says PORT there, in
// every plain table stats prints (one reading, --watch with rates, --all).
TEST(RenderStats, PortHeaderSaysPort) {
    tcd::StatsSnapshot s;
    s.kind = tcd::KeyKind::port;
    s.keys = std::vector<tcd::Counters>(1024);
    s.keys[1] = {5, 500, 0};
    s.taken_ns = 1'000'000'000;
    tcd::WiredEntry http{80, "http", "pass", 7, "aa"};
    http.slot = 1;
    auto later = s;
    later.taken_ns += 1'000'000'000;
    for (bool all : {false, true}) {
        for (const tcd::StatsSnapshot* prev : std::initializer_list<const tcd::StatsSnapshot*>{nullptr, &s}) {
            auto v = tcd::make_stats_view(later, prev, {http}, all);
            std::string plain = tcd::render::stats_plain(v);
            std::string header = plain.substr(0, plain.find('\n'));
            std::istringstream words(header);
            std::string key, col;
            words >> key >> col;
            EXPECT_EQ(key, "KEY") << header;
            EXPECT_EQ(col, "PORT") << header;
            EXPECT_EQ(header.find("PROTO"), std::string::npos) << header;
        }
    }
    // A proto instance keeps PROTO.
    auto v = tcd::make_stats_view(snapshot(), nullptr, wiring(), true);
    std::string plain = tcd::render::stats_plain(v);
    EXPECT_EQ(plain.substr(0, plain.find('\n')).find("PORT"), std::string::npos);
    EXPECT_NE(plain.substr(0, plain.find('\n')).find("PROTO"), std::string::npos);
}

// map list's table says the same: PORT on a port instance.
TEST(RenderMap, PortHeaderSaysPort) {
    tcd::WiredEntry http{80, "http", "pass", 7, "aa"};
    std::string port = tcd::render::wiring_plain({http}, tcd::KeyKind::port);
    std::istringstream words(port.substr(0, port.find('\n')));
    std::string key, col;
    words >> key >> col;
    EXPECT_EQ(key, "KEY") << port;
    EXPECT_EQ(col, "PORT") << port;
    std::string proto = tcd::render::wiring_plain(wiring(), tcd::KeyKind::proto);
    EXPECT_NE(proto.substr(0, proto.find('\n')).find("PROTO"), std::string::npos) << proto;
}

// unload --force names each parent's key the way that parent knows it: by
// protocol on a proto parent, by port (and service) on a port parent.
TEST(RenderUnload, UnwiredKeysNamedByTheParentsKind) {
    tcd::UnloadResult r;
    r.changed = true;
    r.pin_dir = "/sys/fs/bpf/child";
    r.unwired = {{"/sys/fs/bpf/p", 17, "udp"}, {"/sys/fs/bpf/q", 80, "http"}, {"/sys/fs/bpf/q", 7101, ""}};
    EXPECT_EQ(tcd::render::unload_plain(r),
              "unwired from /sys/fs/bpf/p at key 17 (udp)\n"
              "unwired from /sys/fs/bpf/q at key 80 (http)\n"
              "unwired from /sys/fs/bpf/q at key 7101\n"
              "/sys/fs/bpf/child: unloaded\n");
    auto j = tcd::render::unload_json(r);
    EXPECT_EQ(j["unwired"][0], (tcd::render::json{{"instance", "/sys/fs/bpf/p"}, {"key", 17}}));
}

// "1 frame", not "1 frames" (issue 20).
TEST(RenderTrace, SummaryCountsFramesInWords) {
    tcd::TraceSummary s;
    tcd::TraceFrame f;
    f.frame = 1;
    f.len = 60;
    f.cls = "ipv4";
    f.verdict = {tcd::Hook::xdp, 2};
    s.add(f);
    EXPECT_EQ(tcd::render::trace_summary_plain(s).rfind("\n1 frame\n", 0), 0u) << tcd::render::trace_summary_plain(s);
    f.frame = 2;
    s.add(f);
    EXPECT_EQ(tcd::render::trace_summary_plain(s).rfind("\n2 frames\n", 0), 0u) << tcd::render::trace_summary_plain(s);
}

// A summary row's verdicts are named, and ordered by name, only when
// rendered: TC_ACT_STOLEN (4) after TC_ACT_REDIRECT (7).
TEST(RenderTrace, SummaryVerdictsByName) {
    tcd::TraceSummary s;
    tcd::TraceFrame f;
    f.len = 60;
    f.cls = "ipv4";
    for (uint32_t code : {4u, 7u, 4u}) {
        f.frame++;
        f.verdict = {tcd::Hook::tc, code};
        s.add(f);
    }
    auto j = tcd::render::trace_summary_json(s);
    ASSERT_EQ(j.size(), 1u) << j.dump();
    EXPECT_EQ(j[0]["verdicts"].dump(), R"({"TC_ACT_REDIRECT":1,"TC_ACT_STOLEN":2})");
    std::string plain = tcd::render::trace_summary_plain(s);
    EXPECT_NE(plain.find("TC_ACT_REDIRECT 1, TC_ACT_STOLEN 2"), std::string::npos) << plain;
}

// Columns are as wide as their widest cell: a five-digit port and a child's
// pin path as the handler push the later columns right instead of running
// into them, in stats and map list alike; map list on a port instance has
// the SLOT column the docs name.
TEST(RenderColumns, WideCellsWidenTheirColumn) {
    const std::string child = "/sys/fs/bpf/a-rather-long-child-instance";
    tcd::WiredEntry wide{65535, "", child, 7, "0123456789abcdef"};
    wide.slot = 3;
    tcd::WiredEntry narrow{80, "http", "pass", 8, "fedcba9876543210"};
    narrow.slot = 1;
    // The column of each header word, and each row's cell there.
    auto column_of = [](const std::string& line, const std::string& word) { return line.find(word); };
    std::string list = tcd::render::wiring_plain({narrow, wide}, tcd::KeyKind::port);
    std::istringstream lines(list);
    std::string header, row1, row2;
    std::getline(lines, header);
    std::getline(lines, row1);
    std::getline(lines, row2);
    size_t pid = column_of(header, "PROG ID"), slot = column_of(header, "SLOT");
    ASSERT_NE(slot, std::string::npos) << list;
    EXPECT_GT(pid, column_of(header, "HANDLER") + child.size()) << list;
    EXPECT_EQ(row2.substr(column_of(header, "HANDLER"), child.size()), child) << list;
    EXPECT_EQ(row1.substr(slot), "   1") << list;
    EXPECT_EQ(row2.substr(slot), "   3") << list;
    EXPECT_EQ(row2.substr(0, 5), "65535") << list;
    EXPECT_EQ(header.find("KEY") + 3, row1.find("80") + 2) << list;  // keys right-aligned under KEY
    // A proto instance's map list has no SLOT column.
    EXPECT_EQ(tcd::render::wiring_plain({narrow}, tcd::KeyKind::proto).find("SLOT"), std::string::npos);

    tcd::StatsSnapshot s;
    s.kind = tcd::KeyKind::port;
    s.keys = std::vector<tcd::Counters>(1024);
    s.keys[1] = {5, 500, 0};
    s.keys[3] = {7, 700, 0};
    s.taken_ns = 1'000'000'000;
    auto v = tcd::make_stats_view(s, nullptr, {narrow, wide}, false);
    std::string plain = tcd::render::stats_plain(v);
    std::istringstream st(plain);
    std::string h;
    std::getline(st, h);
    size_t packets_end = column_of(h, "PACKETS") + 7;
    std::string line;
    int rows = 0;
    while (std::getline(st, line)) {
        if (line.empty()) continue;
        // Every row's packet count ends where the PACKETS header ends.
        ASSERT_GE(line.size(), packets_end) << plain;
        EXPECT_NE(line[packets_end - 1], ' ') << "row: " << line << "\n" << plain;
        EXPECT_EQ(line[packets_end], ' ') << "row: " << line << "\n" << plain;
        rows++;
    }
    EXPECT_GE(rows, 5) << plain;
}

namespace {

// A frame of two levels timed with --repeat (trace_frame_*: ns per level),
// a tcd_next that missed between them (not timed).
tcd::TraceFrame timed_frame(uint64_t frame, uint64_t ns0, uint64_t ns2) {
    tcd::TraceFrame f;
    f.frame = frame;
    f.len = 60;
    f.cls = "ipv4";
    f.key = 6;
    f.key_name = "tcp";
    f.handler = "hop_first";
    f.verdict = {tcd::Hook::xdp, 1};  // XDP_DROP
    f.repeat = 100;
    tcd::TraceLevel l0;
    l0.instance = "/sys/fs/bpf/tcd";
    l0.cls = "ipv4", l0.key = 6, l0.key_name = "tcp", l0.handler = "hop_first";
    l0.ns = ns0, l0.self_ns = int64_t(ns0) - int64_t(ns2);
    tcd::TraceLevel l1;
    l1.via = tcd::Via::tcd_next, l1.from = "hop_first", l1.cls = "ipv4", l1.key = 250, l1.missed = true;
    tcd::TraceLevel l2;
    l2.via = tcd::Via::tcd_next, l2.from = "hop_first", l2.cls = "ipv4", l2.key = 251, l2.handler = "hop_second";
    l2.ns = ns2, l2.self_ns = int64_t(ns2);
    f.levels = {l0, l1, l2};
    return f;
}

}  // namespace

TEST(RenderTrace, RepeatAddsNsPerLevel) {
    auto f = timed_frame(1, 40, 15);
    auto j = tcd::render::trace_frame_json(f);
    EXPECT_EQ(j["ns"], 40);
    ASSERT_EQ(j["levels"].size(), 3u);
    EXPECT_EQ(j["levels"][0]["ns"], 40);
    EXPECT_EQ(j["levels"][0]["self_ns"], 25);
    EXPECT_TRUE(j["levels"][1]["ns"].is_null());
    EXPECT_TRUE(j["levels"][1]["self_ns"].is_null());
    EXPECT_EQ(j["levels"][2]["ns"], 15);
    EXPECT_EQ(j["levels"][2]["self_ns"], 15);
    const std::string p = tcd::render::trace_frame_plain(f);
    EXPECT_NE(p.find("XDP_DROP  40 ns (self 25)\n"), std::string::npos) << p;
    EXPECT_NE(p.find("(miss)  (not timed)\n"), std::string::npos) << p;
    EXPECT_NE(p.find("hop_second  15 ns (self 15)\n"), std::string::npos) << p;
    // Not timed: the shape is as before, no "ns" anywhere.
    f.repeat = 0;
    auto u = tcd::render::trace_frame_json(f);
    EXPECT_FALSE(u.contains("ns"));
    EXPECT_FALSE(u["levels"][0].contains("ns"));
    EXPECT_EQ(tcd::render::trace_frame_plain(f).find(" ns"), std::string::npos);
}

// Summary rows carry the mean of their levels' figures, rounded to the
// nearest; a row whose levels were not timed has none.
TEST(RenderTrace, RepeatSummaryMeans) {
    tcd::TraceSummary s;
    s.set_repeat(100);
    s.add(timed_frame(1, 40, 15));
    s.add(timed_frame(2, 43, 16));  // means: 41.5 -> 42, 15.5 -> 16; self 25, 27 -> 26
    auto j = tcd::render::trace_summary_json(s);
    ASSERT_EQ(j.size(), 3u) << j.dump();
    EXPECT_EQ(j[0]["ns"], 42);
    EXPECT_EQ(j[0]["self_ns"], 26);
    EXPECT_TRUE(j[1]["ns"].is_null()) << j[1].dump();  // the missed tcd_next
    EXPECT_EQ(j[2]["ns"], 16);
    EXPECT_EQ(j[2]["self_ns"], 16);
    const std::string p = tcd::render::trace_summary_plain(s);
    EXPECT_NE(p.find("NS  SELF_NS  VERDICTS"), std::string::npos) << p;
    EXPECT_NE(p.find("      42       26  XDP_DROP 2"), std::string::npos) << p;
    EXPECT_NE(p.find("       -        -  XDP_DROP 2"), std::string::npos) << p;
    EXPECT_NE(p.find("(100 test runs a frame)"), std::string::npos) << p;
    // A negative own share (noise) rounds away from 0 and shows its sign.
    tcd::TraceSummary neg;
    neg.set_repeat(10);
    neg.add(timed_frame(1, 15, 16));
    neg.add(timed_frame(2, 15, 17));
    EXPECT_EQ(tcd::render::trace_summary_json(neg)[0]["self_ns"], -2);  // -1.5
    tcd::TraceSummary none;
    none.add(timed_frame(1, 1, 1));
    EXPECT_FALSE(tcd::render::trace_summary_json(none)[0].contains("ns"));
    EXPECT_EQ(tcd::render::trace_summary_plain(none).find("NS"), std::string::npos);
}
