// Packet fixtures through BPF_PROG_TEST_RUN on a loaded dispatcher: class,
// key, verdict and the exact counter deltas of every case.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <optional>
#include <string>

#include "core/bpffs.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/stats.h"
#include "core/trace.h"
#include "tests/common/instance.h"
#include "tests/common/kernel.h"
#include "tests/common/packet.h"

namespace {

using namespace tcdtest;

enum : int { NONE = -1 };

struct Fixture {
    std::string name;
    Bytes frame;
    std::string cls;  // ipv4, ipv6, non-ip, malformed
    int key;          // NONE for non-ip / malformed
};

uint32_t expected_verdict(const Fixture& f, tcd::MissAction miss) {
    if (f.key == 6 || f.key == 17) return XDP_PASS;
    if (f.key == 47) return XDP_DROP;
    if (f.key == NONE) return XDP_PASS;  // non-ip and malformed pass
    return tcd::miss_action_verdict(miss);
}

bool wired(int key) { return key == 6 || key == 17 || key == 47; }

std::vector<Fixture> fixtures() {
    std::vector<Fixture> v = {
        {"ipv4_tcp", eth(0x0800) + ipv4(6), "ipv4", 6},
        {"ipv4_udp", eth(0x0800) + ipv4(17), "ipv4", 17},
        {"ipv4_icmp", eth(0x0800) + ipv4(1), "ipv4", 1},
        {"ipv4_gre", eth(0x0800) + ipv4(47), "ipv4", 47},
        {"ipv4_ipip", eth(0x0800) + ipv4(4) , "ipv4", 4},
        {"ipv4_6in4", eth(0x0800) + ipv4(41), "ipv4", 41},
        {"ipv4_options_tcp", eth(0x0800) + ipv4(6, 15), "ipv4", 6},
        {"ipv4_options_no_payload", eth(0x0800) + ipv4(6, 6, 0), "ipv4", 6},
        {"ipv4_version_5", eth(0x0800) + ipv4(6, 5, 20, 5), "malformed", NONE},
        {"ipv4_ihl_4", eth(0x0800) + ipv4(6, 4), "malformed", NONE},
        {"ipv4_ihl_past_end", truncate(eth(0x0800) + ipv4(6, 15, 0), 14 + 59), "malformed", NONE},
        {"ipv4_fragment_key", eth(0x0800) + ipv4(17, 5, 8), "ipv4", 17},
        // Real fragments: the key is still the protocol field, whatever the
        // offset (later fragments carry no L4 header, but the key does not need one).
        {"ipv4_first_fragment_mf", eth(0x0800) + ipv4_frag(17, 0x2000), "ipv4", 17},
        {"ipv4_middle_fragment_mf_offset", eth(0x0800) + ipv4_frag(17, 0x2000 | 185), "ipv4", 17},
        {"ipv4_last_fragment_offset", eth(0x0800) + ipv4_frag(6, 370, 8), "ipv4", 6},
        {"ipv4_fragment_unwired_key", eth(0x0800) + ipv4_frag(1, 0x2000 | 1, 0), "ipv4", 1},
        {"ipv6_tcp", eth(0x86dd) + ipv6(6), "ipv6", 6},
        {"ipv6_udp", eth(0x86dd) + ipv6(17), "ipv6", 17},
        {"ipv6_icmpv6", eth(0x86dd) + ipv6(58), "ipv6", 58},
        {"ipv6_hbh_rt_frag_dst", eth(0x86dd) + ipv6(17, {{0, 0}, {43, 1}, {44}, {60, 2}}), "ipv6", 17},
        {"ipv6_ah_is_key", eth(0x86dd) + ipv6(51), "ipv6", 51},
        {"ipv6_hbh_then_ah", eth(0x86dd) + ipv6(51, {{0, 0}}), "ipv6", 51},
        {"ipv6_no_next", eth(0x86dd) + ipv6(59, {{60, 0}}), "ipv6", 59},
        {"ipv6_8_ext", eth(0x86dd) + ipv6(6, {{0}, {60}, {43}, {44}, {60}, {43}, {44}, {60}}), "ipv6", 6},
        {"ipv6_9_ext", eth(0x86dd) + ipv6(6, {{0}, {60}, {43}, {44}, {60}, {43}, {44}, {60}, {60}}),
         "malformed", NONE},
        {"ipv6_ext_cut", truncate(eth(0x86dd) + ipv6(6, {{0, 3}}, 0), 14 + 40 + 16), "malformed", NONE},
        {"ipv6_version_4", eth(0x86dd) + ipv6(6, {}, 20, 4), "malformed", NONE},
        {"vlan_ipv4_tcp", eth(0x0800, {0x8100}) + ipv4(6), "ipv4", 6},
        {"qinq_ipv6_udp", eth(0x86dd, {0x88a8, 0x8100}) + ipv6(17), "ipv6", 17},
        {"qinq_8100_8100_ipv4", eth(0x0800, {0x8100, 0x8100}) + ipv4(1), "ipv4", 1},
        {"three_tags_non_ip", eth(0x0800, {0x88a8, 0x8100, 0x8100}) + ipv4(6), "non-ip", NONE},
        {"vlan_cut", truncate(eth(0x0800, {0x8100}), 16), "malformed", NONE},
        {"arp", eth(0x0806) + Bytes(28, 0), "non-ip", NONE},
        {"lldp", eth(0x88cc) + Bytes(30, 0), "non-ip", NONE},
        {"eth_only", eth(0x0800), "malformed", NONE},
        {"eth_only_ipv6", eth(0x86dd), "malformed", NONE},
        {"eth_only_arp", eth(0x0806), "non-ip", NONE},
    };

    // Truncation at every length of a few frames; the expected class comes
    // from where each header ends.
    struct Cut {
        std::string name;
        Bytes frame;
        size_t complete;  // shortest length that classifies
        std::string cls;
        int key;
        std::vector<size_t> vlan_ends;  // lengths below which a tag is cut
    };
    std::vector<Cut> cuts = {
        {"ipv4_opts_tcp", eth(0x0800) + ipv4(6, 6), 14 + 24, "ipv4", 6, {}},
        {"ipv6_chain_udp", eth(0x86dd) + ipv6(17, {{0, 1}, {44}}), 14 + 40 + 16 + 8, "ipv6", 17, {}},
        {"qinq_ipv4_udp", eth(0x0800, {0x88a8, 0x8100}) + ipv4(17), 22 + 20, "ipv4", 17, {18, 22}},
    };
    for (const auto& c : cuts) {
        for (size_t len = 14; len <= c.frame.size(); len++) {
            bool tag_cut = false;
            for (size_t end : c.vlan_ends)
                if (len < end) tag_cut = true;
            bool ok = len >= c.complete && !tag_cut;
            v.push_back({c.name + "_len" + std::to_string(len), truncate(c.frame, len), ok ? c.cls : "malformed",
                         ok ? c.key : NONE});
        }
    }
    return v;
}

tcd::Counters slot(const tcd::StatsSnapshot& s, const std::string& cls, int key) {
    if (cls == "non-ip") return s.non_ip;
    if (cls == "malformed") return s.malformed;
    return s.keys[key];
}

void check_suite(tcd::MissAction miss, const std::string& tag) {
    TestInstance inst(tag, miss);
    ASSERT_EQ(inst.error(), "");
    auto tracer = tcd::Tracer::open(inst.dir());
    ASSERT_TRUE(tracer) << tracer.error().message();

    for (const auto& f : fixtures()) {
        SCOPED_TRACE(f.name);
        auto before = tcd::read_stats(inst.in().stats_fd());
        ASSERT_TRUE(before);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.frame.data(),
                    .data_size_in = static_cast<uint32_t>(f.frame.size()), .repeat = 1);
        ASSERT_EQ(bpf_prog_test_run_opts(inst.in().dispatcher_fd(), &opts), 0) << "test_run failed";
        EXPECT_EQ(opts.retval, expected_verdict(f, miss));
        auto after = tcd::read_stats(inst.in().stats_fd());
        ASSERT_TRUE(after);

        // Exactly one row moved, by one packet of this length; missed only
        // for an unwired key.
        tcd::Counters want = slot(*before, f.cls, f.key == NONE ? 0 : f.key);
        want.packets += 1;
        want.bytes += f.frame.size();
        if (f.key != NONE && !wired(f.key)) want.missed += 1;
        tcd::Counters got = slot(*after, f.cls, f.key == NONE ? 0 : f.key);
        EXPECT_EQ(got.packets, want.packets);
        EXPECT_EQ(got.bytes, want.bytes);
        EXPECT_EQ(got.missed, want.missed);
        // Every other row, missed included, stayed as it was.
        for (int k = 0; k < 256; k++) {
            if (f.key != NONE && k == f.key) continue;
            SCOPED_TRACE("row " + std::to_string(k));
            EXPECT_EQ(after->keys[k].packets, before->keys[k].packets);
            EXPECT_EQ(after->keys[k].bytes, before->keys[k].bytes);
            EXPECT_EQ(after->keys[k].missed, before->keys[k].missed);
        }
        for (const char* cls : {"non-ip", "malformed"}) {
            if (f.cls == cls) continue;
            EXPECT_EQ(slot(*after, cls, 0).packets, slot(*before, cls, 0).packets) << cls;
            EXPECT_EQ(slot(*after, cls, 0).bytes, slot(*before, cls, 0).bytes) << cls;
            EXPECT_EQ(slot(*after, cls, 0).missed, slot(*before, cls, 0).missed) << cls;
        }
        tcd::Counters tb = before->total(), ta = after->total();
        EXPECT_EQ(ta.packets, tb.packets + 1);
        EXPECT_EQ(ta.bytes, tb.bytes + f.frame.size());

        // Class and key as the BPF program derived them.
        auto t = tracer->run(f.frame.data(), f.frame.size(), 1);
        ASSERT_TRUE(t) << t.error().message();
        EXPECT_EQ(t->cls, f.cls);
        if (f.key == NONE) {
            EXPECT_FALSE(t->key.has_value());
        } else {
            ASSERT_TRUE(t->key.has_value());
            EXPECT_EQ(int(*t->key), f.key);
            EXPECT_EQ(t->missed, !wired(f.key));
        }
        EXPECT_EQ(tcd::verdict_name(t->verdict), tcd::verdict_name(tcd::Hook::xdp, expected_verdict(f, miss)));
    }
}

TEST(Fixtures, MissActionPass) {
    TCD_REQUIRE_KERNEL();
    check_suite(tcd::MissAction::pass, "tcdfx_pass");
}

TEST(Fixtures, MissActionDrop) {
    TCD_REQUIRE_KERNEL();
    check_suite(tcd::MissAction::drop, "tcdfx_drop");
}

TEST(Fixtures, TraceLeavesLiveCountersAlone) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdfx_trace", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    auto before = tcd::read_stats(inst.in().stats_fd());
    auto tracer = tcd::Tracer::open(inst.dir());
    ASSERT_TRUE(tracer);
    Bytes f = eth(0x0800) + ipv4(6);
    for (int i = 0; i < 10; i++) ASSERT_TRUE(tracer->run(f.data(), f.size(), i + 1));
    auto after = tcd::read_stats(inst.in().stats_fd());
    EXPECT_EQ(after->total().packets, before->total().packets);
    auto own = tracer->counters();
    ASSERT_TRUE(own);
    EXPECT_EQ(own->keys[6].packets, 10u);
}

TEST(Fixtures, TraceWithoutInstanceMissesEveryKey) {
    TCD_REQUIRE_KERNEL();
    auto tracer = tcd::Tracer::open("/sys/fs/bpf/" + unique_name("tcdfx_none"));
    ASSERT_TRUE(tracer) << tracer.error().message();
    EXPECT_FALSE(tracer->instance_loaded());
    Bytes f = eth(0x0800) + ipv4(6);
    auto t = tracer->run(f.data(), f.size(), 1);
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->missed);
    EXPECT_FALSE(t->handler.has_value());
    EXPECT_EQ(tcd::verdict_name(t->verdict), "XDP_PASS");
}

TEST(Fixtures, WiredHandlerNamedByTrace) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdfx_names", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    auto tracer = tcd::Tracer::open(inst.dir());
    ASSERT_TRUE(tracer);
    Bytes f = eth(0x0800) + ipv4(47);
    auto t = tracer->run(f.data(), f.size(), 1);
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->handler.has_value());
    EXPECT_EQ(*t->handler, "drop");
    EXPECT_EQ(tcd::verdict_name(t->verdict), "XDP_DROP");
}

}  // namespace
