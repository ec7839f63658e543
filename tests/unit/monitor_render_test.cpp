// tcd monitor's frame summaries and event renderers (plain line, JSON Lines
// record, end record) over hand-made frames and events; its option checks.
#include <gtest/gtest.h>

#include <vector>

#include "cli/render.h"
#include "core/frame_summary.h"
#include "core/monitor.h"

namespace {

// Ethernet (with `vlans` 802.1Q tags), IPv4 10.0.0.1 -> 10.0.0.2, UDP
// 40000 -> 53 (or a later fragment, without ports).
std::vector<uint8_t> udp4(std::vector<uint16_t> vlans = {}, bool later_fragment = false) {
    std::vector<uint8_t> f(12, 0xaa);
    for (uint16_t v : vlans) f.insert(f.end(), {0x81, 0x00, uint8_t(v >> 8), uint8_t(v)});
    f.insert(f.end(), {0x08, 0x00});
    f.insert(f.end(), {0x45, 0, 0, 28, 0, 0, uint8_t(later_fragment ? 0x00 : 0x00), uint8_t(later_fragment ? 0x10 : 0x00),
                       64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2});
    f.insert(f.end(), {0x9c, 0x40, 0x00, 0x35, 0, 8, 0, 0});
    return f;
}

TEST(MonitorSummary, Ipv4UdpWithVlans) {
    auto f = udp4({10, 20});
    auto s = tcd::summarize_frame(f.data(), f.size());
    EXPECT_EQ(s.ethertype, "ipv4");
    EXPECT_EQ(s.vlans, (std::vector<uint16_t>{10, 20}));
    EXPECT_EQ(s.src, "10.0.0.1");
    EXPECT_EQ(s.dst, "10.0.0.2");
    EXPECT_EQ(s.l4, "udp");
    ASSERT_TRUE(s.sport && s.dport);
    EXPECT_EQ(*s.sport, 40000);
    EXPECT_EQ(*s.dport, 53);
    EXPECT_FALSE(s.truncated());
    EXPECT_EQ(tcd::frame_summary(s, 70), "vlan 10, vlan 20, IP 10.0.0.1.40000 > 10.0.0.2.53: udp, length 70");
}

TEST(MonitorSummary, LaterFragmentHasNoPorts) {
    auto f = udp4({}, true);
    auto s = tcd::summarize_frame(f.data(), f.size());
    EXPECT_TRUE(s.fragment);
    EXPECT_FALSE(s.sport);
    EXPECT_EQ(tcd::frame_summary(s, 42), "IP 10.0.0.1 > 10.0.0.2: udp, fragment, length 42");
}

TEST(MonitorSummary, SnapEndsInsideTheHeaders) {
    auto f = udp4();
    auto s = tcd::summarize_frame(f.data(), 14 + 20 + 2);  // half a UDP header
    EXPECT_EQ(s.src, "10.0.0.1");
    EXPECT_TRUE(s.truncated());
    EXPECT_FALSE(s.dport);
    auto none = tcd::summarize_frame(f.data(), 10);
    EXPECT_TRUE(none.truncated());
    EXPECT_EQ(tcd::frame_summary(none, 600), "ethernet truncated, length 600");
}

TEST(MonitorSummary, Ipv6TcpAndNonIp) {
    std::vector<uint8_t> f(12, 0);
    f.insert(f.end(), {0x86, 0xdd, 0x60, 0, 0, 0, 0, 20, 6, 64});
    for (int i = 0; i < 32; i++) f.push_back(i < 16 ? (i == 15 ? 1 : 0) : (i == 31 ? 2 : 0));
    f.insert(f.end(), {0x01, 0xbb, 0x1f, 0x90});
    f.resize(f.size() + 16, 0);
    auto s = tcd::summarize_frame(f.data(), f.size());
    EXPECT_EQ(s.ethertype, "ipv6");
    EXPECT_EQ(s.src, "::1");
    EXPECT_EQ(s.dst, "::2");
    EXPECT_EQ(s.l4, "tcp");
    EXPECT_EQ(*s.sport, 443);
    EXPECT_EQ(*s.dport, 8080);
    std::vector<uint8_t> arp(12, 0);
    arp.insert(arp.end(), {0x08, 0x06});
    arp.resize(42, 0);
    EXPECT_EQ(tcd::summarize_frame(arp.data(), arp.size()).ethertype, "arp");
}

tcd::MonitorEvent event() {
    tcd::MonitorEvent e;
    e.time_ns = 1700000000123456789LL;
    e.ifindex = 7;
    e.ifname = "vb";
    e.netns = "/run/netns/blue";
    e.hook = tcd::Hook::tc;
    e.ingress = false;
    e.instance = "/sys/fs/bpf/tcd";
    e.level = 1;
    e.cls = "ipv4";
    e.key = 17;
    e.key_name = "udp";
    e.decision = tcd::Decision::direct;
    e.site = 2;
    e.handler = "udp_handler";
    e.prog_id = 42;
    e.len = 70;
    e.frame = udp4();
    e.summary = tcd::summarize_frame(e.frame.data(), e.frame.size());
    return e;
}

TEST(MonitorRender, PlainLine) {
    auto e = event();
    std::string line = tcd::render::monitor_event_plain(e);
    // The time is local; the rest is fixed.
    auto at = line.find(' ');
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(line.substr(at + 1), "vb@blue egress /sys/fs/bpf/tcd/L1 udp(17) direct udp_handler#42: "
                                   "IP 10.0.0.1.40000 > 10.0.0.2.53: udp, length 70\n");
    e.decision = tcd::Decision::miss;
    e.miss_action = tcd::MissAction::next;
    e.handler.clear();
    e.prog_id = 0;
    line = tcd::render::monitor_event_plain(e);
    EXPECT_NE(line.find(" udp(17) miss next: "), std::string::npos) << line;
    e.cls = "non-ip";
    e.decision = tcd::Decision::undispatched;
    e.miss_action = tcd::MissAction::pass;
    line = tcd::render::monitor_event_plain(e);
    EXPECT_NE(line.find(" non-ip undispatched pass: "), std::string::npos) << line;
}

TEST(MonitorRender, JsonRecord) {
    auto j = tcd::render::monitor_event_json(event());
    EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123456789Z");
    EXPECT_EQ(j["iface"], "vb");
    EXPECT_EQ(j["netns"], "/run/netns/blue");
    EXPECT_EQ(j["direction"], "egress");
    EXPECT_EQ(j["level"], 1);
    EXPECT_EQ(j["key"], 17);
    EXPECT_EQ(j["key_name"], "udp");
    EXPECT_EQ(j["decision"], "direct");
    EXPECT_EQ(j["site"], 2);
    EXPECT_EQ(j["handler"], "udp_handler");
    EXPECT_EQ(j["prog_id"], 42);
    EXPECT_TRUE(j["verdict"].is_null());
    EXPECT_TRUE(j["miss_action"].is_null());
    EXPECT_EQ(j["caplen"], 42);  // 14 + 20 + 8
    EXPECT_EQ(j["frame"]["dport"], 53);
    auto end = tcd::render::monitor_end_json(5, 7, 0);
    EXPECT_EQ(end["end"]["events"], 5);
    EXPECT_EQ(end["end"]["suppressed"], 7);
    EXPECT_NE(end["end"]["verdict"].get<std::string>().find("not shown"), std::string::npos);
    EXPECT_EQ(tcd::render::monitor_end_plain(5, 7, 0), "5 events, 7 suppressed by the rate limit, 0 lost\n");
}

TEST(MonitorOptions, Checked) {
    tcd::MonitorOptions o;
    EXPECT_TRUE(tcd::check_monitor_options(o));
    o.sample = 0;
    EXPECT_FALSE(tcd::check_monitor_options(o));
    o = {};
    o.rate = 0;
    EXPECT_FALSE(tcd::check_monitor_options(o));
    o = {};
    o.snaplen = 4096;
    EXPECT_FALSE(tcd::check_monitor_options(o));
    o = {};
    o.keys.assign(17, 6);
    EXPECT_FALSE(tcd::check_monitor_options(o));
    o = {};
    o.level = -1;
    EXPECT_FALSE(tcd::check_monitor_options(o));
}

}  // namespace
