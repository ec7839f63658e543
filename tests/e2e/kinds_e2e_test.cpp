// End to end for the dispatcher kinds: port and proto instances on the tc
// hook and side by side on one veth pair, the tc chain example on egress
// traffic, headers past a tc skb's linear part, and the clsact qdisc tcd made
// when two instances share an interface. Namespaces, links and pins are the
// test's own and go away in the destructor, also when an assertion fails.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/fd.h"
#include "tests/common/kernel.h"
#include "tests/common/packet.h"
#include "tests/common/shell.h"
#include "tests/e2e/pair.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::sh;

using tcdtest::key_row;
using tcdtest::packets;
using tcdtest::Pair;
using tcdtest::stats_when;


// Gap: a tc instance must see headers that lie past the skb's linear part.
// A packet socket sends a frame of a page or more as a paged skb whose linear
// part is the Ethernet header alone (packet_alloc_skb); so it leaves va
// (egress) and reaches vb (ingress, veth hands the skb over as it is).
void headers_past_the_linear_part(const std::string& key_kind) {
    PAIR(p, true);
    const bool port = key_kind == "port";
    ASSERT_EQ(p.tcd(p.dir1(), "load --key " + key_kind + " --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach va --netns " + p.a() + " --direction egress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), port ? "map set 5353 pass" : "map set udp pass").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), port ? "map set 8080 pass" : "map set tcp pass").rc, 0);

    using namespace tcdtest;
    auto port_at = [](Bytes f, size_t off, uint16_t dport) {
        f[off + 2] = uint8_t(dport >> 8);
        f[off + 3] = uint8_t(dport);
        return f;
    };
    // Per size: UDP to 5353 over IPv4, over IPv6 after two extension
    // headers and over 802.1Q IPv4; TCP to 8080 over IPv6.
    std::vector<Bytes> frames;
    for (size_t len : {5000u, 8000u, 120u}) {  // two paged, one small (linear)
        frames.push_back(port_at(eth(0x0800) + ipv4(17, 5, len), 14 + 20, 5353));
        frames.push_back(port_at(eth(0x86dd) + ipv6(6, {}, len), 14 + 40, 8080));
        frames.push_back(port_at(eth(0x86dd) + ipv6(17, {{0}, {60, 1}}, len), 14 + 40 + 8 + 16, 5353));
        frames.push_back(port_at(eth(0x0800, {0x8100}) + ipv4(17, 5, len), 18 + 20, 5353));
    }
    {
        auto guard = tcd::NetnsGuard::enter("/run/netns/" + p.a());
        ASSERT_TRUE(guard);
        tcd::UniqueFd sock(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(sock) << strerror(errno);
        sockaddr_ll ll{};
        ll.sll_family = AF_PACKET;
        ll.sll_ifindex = static_cast<int>(if_nametoindex("va"));
        ll.sll_halen = ETH_ALEN;
        ASSERT_NE(ll.sll_ifindex, 0);
        for (const auto& f : frames)
            ASSERT_EQ(sendto(sock.get(), f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&ll), sizeof ll),
                      ssize_t(f.size()))
                << strerror(errno);
    }
    uint64_t bytes_udp = 0, bytes_tcp = 0;
    for (size_t i = 0; i < frames.size(); i++) (i % 4 == 1 ? bytes_tcp : bytes_udp) += frames[i].size();
    const int udp = port ? 5353 : 17, tcp = port ? 8080 : 6;
    // Each frame is counted twice: leaving va and arriving at vb.
    json s = stats_when(p, p.dir1(), 2 * frames.size());
    EXPECT_EQ(s["total"]["packets"].get<uint64_t>(), 2 * frames.size());
    EXPECT_EQ(s["malformed"]["packets"].get<uint64_t>(), 0u);
    if (port) EXPECT_EQ(s["no_port"]["packets"].get<uint64_t>(), 0u);
    ASSERT_TRUE(key_row(s, udp));
    ASSERT_TRUE(key_row(s, tcp));
    EXPECT_EQ(packets(s, udp), 2 * 9u);
    EXPECT_EQ(packets(s, tcp), 2 * 3u);
    // Bytes are skb->len: the whole frame, paged or not; on ingress without
    // the 802.1Q tag, which the stack moves into the skb's metadata before tc
    // runs (3 tagged frames, 4 bytes each).
    EXPECT_EQ((*key_row(s, udp))["bytes"].get<uint64_t>(), 2 * bytes_udp - 3 * 4);
    EXPECT_EQ((*key_row(s, tcp))["bytes"].get<uint64_t>(), 2 * bytes_tcp);
}

TEST(KindsE2E, TcPortSeesHeadersPastTheLinearPart) { headers_past_the_linear_part("port"); }
TEST(KindsE2E, TcProtoSeesHeadersPastTheLinearPart) { headers_past_the_linear_part("proto"); }

// Gap: whether tcd made the clsact qdisc belongs to the interface. Instance 1
// makes it (ingress), instance 2 attaches egress beside it; the qdisc goes
// with the last tcd filter, whichever instance takes that off.
TEST(KindsE2E, ClsactQdiscBelongsToTheInterface) {
    tcdtest::NoTcx clsact;  // the qdisc is the clsact fallback's
    PAIR(p);
    for (bool first_unloads_first : {true, false}) {
        SCOPED_TRACE(first_unloads_first ? "1 unloads first" : "2 unloads first");
        ASSERT_FALSE(p.clsact_on_vb());
        ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
        ASSERT_EQ(p.tcd(p.dir2(), "load --key port --hook tc").rc, 0);
        ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
        ASSERT_TRUE(p.clsact_on_vb());
        ASSERT_EQ(p.tcd(p.dir2(), "attach vb --netns " + p.b() + " --direction egress").rc, 0);
        // tcd's filter slot on one interface and direction is one: a second
        // instance is refused there (and nothing changes).
        Cmd twice = p.tcd(p.dir2(), "attach vb --netns " + p.b() + " --direction ingress");
        EXPECT_EQ(twice.rc, 1);
        EXPECT_NE(twice.err.find("another program holds tcd's tc filter slot"), std::string::npos) << twice.err;
        json st2 = p.tcd_json(p.dir2(), "status");
        EXPECT_EQ(st2["attached"].size(), 1u);

        const std::string& first = first_unloads_first ? p.dir1() : p.dir2();
        const std::string& second = first_unloads_first ? p.dir2() : p.dir1();
        ASSERT_EQ(p.tcd(first, "unload").rc, 0);
        EXPECT_TRUE(p.clsact_on_vb()) << "the other instance's filter still uses it";
        ASSERT_EQ(p.tcd(second, "unload").rc, 0);
        EXPECT_FALSE(p.clsact_on_vb()) << "tcd made it and no filter is left";
        EXPECT_EQ(sh(p.in_ns(p.b(), "tc filter show dev vb ingress")).out, "");
    }
    // detach (not unload) takes the last filter off: the same.
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction egress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    EXPECT_TRUE(p.clsact_on_vb());
    ASSERT_EQ(p.tcd(p.dir2(), "detach vb --netns " + p.b() + " --direction ingress").rc, 0);
    EXPECT_FALSE(p.clsact_on_vb());
    // A qdisc tcd did not make stays, whoever attached to it.
    ASSERT_EQ(sh(p.in_ns(p.b(), "tc qdisc add dev vb clsact")).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction egress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "unload").rc, 0);
    EXPECT_TRUE(p.clsact_on_vb());
}

// detach --all on a tc instance takes both directions' filters off, the
// clsact qdisc tcd made with them, and every attach record (status clean).
TEST(KindsE2E, DetachAllOnATcInstance) {
    PAIR(p);
    for (bool tcx : {true, false}) {
        SCOPED_TRACE(tcx ? "tcx links" : "clsact");
        std::optional<tcdtest::NoTcx> clsact;
        if (!tcx) clsact.emplace();
        ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
        ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
        ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction egress").rc, 0);
        ASSERT_EQ(p.tcd_json(p.dir1(), "status")["attached"].size(), 2u);
        Cmd all = p.tcd(p.dir1(), "detach --all");
        ASSERT_EQ(all.rc, 0) << all.err;
        json st = p.tcd_json(p.dir1(), "status");
        EXPECT_EQ(st["attached"].size(), 0u) << st.dump();
        EXPECT_TRUE(!st.contains("problems") || st["problems"].empty()) << st.dump();
        EXPECT_EQ(sh(p.in_ns(p.b(), "tc filter show dev vb ingress")).out, "");
        EXPECT_EQ(sh(p.in_ns(p.b(), "tc filter show dev vb egress")).out, "");
        EXPECT_FALSE(p.clsact_on_vb());
        EXPECT_EQ(p.tcd(p.dir1(), "detach --all").rc, 0);  // idempotent
        EXPECT_FALSE(tcd::bpffs::exists(p.dir1() + "/links"));
        ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    }
}

// Gap: two instances of different kinds on one veth pair, each with its own
// dispatcher, hook and counters.
TEST(KindsE2E, TwoKindsSideBySide) {
    PAIR(p);
    // 1: proto on XDP, on vb (what arrives at B). 2: port on tc egress, on va
    // (what leaves A).
    ASSERT_EQ(p.tcd(p.dir1(), "load").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "load --key port --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "attach va --netns " + p.a() + " --direction egress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp udp_handler").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "map set 7101 pass").rc, 0);

    json st1 = p.tcd_json(p.dir1(), "status");
    json st2 = p.tcd_json(p.dir2(), "status");
    EXPECT_EQ(st1["dispatcher"]["key"], "proto");
    EXPECT_EQ(st1["dispatcher"]["hook"], "xdp");
    EXPECT_EQ(st1["dispatcher"]["name"], "xdp_dispatch");
    EXPECT_EQ(st2["dispatcher"]["key"], "port");
    EXPECT_EQ(st2["dispatcher"]["hook"], "tc");
    EXPECT_EQ(st2["dispatcher"]["name"], "tc_dispatch");
    EXPECT_NE(st1["dispatcher"]["prog_id"], st2["dispatcher"]["prog_id"]);
    ASSERT_EQ(st1["attached"].size(), 1u);
    ASSERT_EQ(st2["attached"].size(), 1u);
    EXPECT_EQ(st1["attached"][0]["ifname"], "vb");
    EXPECT_EQ(st2["attached"][0]["ifname"], "va");
    EXPECT_EQ(st2["attached"][0]["direction"], "egress");
    EXPECT_EQ(st1["wired"].size(), 1u);
    EXPECT_EQ(st2["wired"].size(), 1u);

    ASSERT_EQ(p.udp("10.202.0.2", 7101, 25), 25);
    ASSERT_EQ(p.udp("fd00:202::2", 7102, 15), 15);
    json s1 = p.tcd_json(p.dir1(), "stats");
    json s2 = p.tcd_json(p.dir2(), "stats");
    // Instance 1 counts protocols: every datagram under key 17.
    EXPECT_GE(packets(s1, 17), 40u);
    for (const auto& k : s1["keys"]) EXPECT_LE(k["key"].get<int>(), 255);
    EXPECT_EQ(s1.count("no_port"), 0u);
    // Instance 2 counts ports: 7101 in its slot, 7102 among the other ports.
    EXPECT_EQ(packets(s2, 7101), 25u);
    EXPECT_EQ(key_row(s2, 17), nullptr);
    EXPECT_GE(s2["other_ports"]["packets"].get<uint64_t>(), 15u);
    // Resetting one leaves the other alone.
    ASSERT_EQ(p.tcd(p.dir2(), "stats --reset").rc, 0);
    // The UDP rows are zero; the link is live, so a stray frame of another
    // class (an IPv6 neighbour solicitation on egress: no-port) may be
    // counted after the reset (seen in the 6.1 guest).
    json reset = p.tcd_json(p.dir2(), "stats");
    EXPECT_EQ(packets(reset, 7101), 0u) << reset.dump();
    EXPECT_EQ(reset["other_ports"]["packets"].get<uint64_t>(), 0u) << reset.dump();
    EXPECT_GE(packets(p.tcd_json(p.dir1(), "stats"), 17), 40u);
    // Unloading one leaves the other attached and counting.
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    ASSERT_EQ(p.udp("10.202.0.2", 7101, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir2(), "stats"), 7101), 10u);
    EXPECT_EQ(p.tcd_json(p.dir2(), "status")["attached"].size(), 1u);
}

// Gap: the seed 002 chain (examples/tc_chain.bpf.c) on real egress traffic:
// IPv4 UDP to port 9 is marked, then dropped; other UDP, and IPv6, passes.
TEST(KindsE2E, TcChainExampleOnEgress) {
    PAIR(p);
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach va --netns " + p.a() + " --direction egress").rc, 0);
    Cmd h = p.tcd(p.dir1(), std::string("handler load ") + TCD_BPF_OBJ_DIR + "/tc_chain.bpf.o");
    ASSERT_EQ(h.rc, 0) << h.err;
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp tc_mark").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "map set 252 tc_inspect").rc, 0);

    EXPECT_EQ(p.udp("10.202.0.2", 9, 20), 0);       // marked and dropped on the way out
    EXPECT_EQ(p.udp("10.202.0.2", 7103, 20), 20);   // other ports pass
    EXPECT_EQ(p.udp("fd00:202::2", 9, 20), 20);     // the example marks IPv4 only
    json s = p.tcd_json(p.dir1(), "stats");
    EXPECT_GE(packets(s, 17), 60u);                 // every datagram went through tcd's key 17
    EXPECT_EQ((*key_row(s, 17))["missed"].get<uint64_t>(), 0u);
    // Unwiring the first stage lets port 9 through again.
    ASSERT_EQ(p.tcd(p.dir1(), "map del udp").rc, 0);
    EXPECT_EQ(p.udp("10.202.0.2", 9, 10), 10);
}

// Gap: a port instance on the tc hook counts real IPv4 and IPv6 TCP and UDP
// per destination port.
TEST(KindsE2E, PortInstanceOnTcCountsIPv4AndIPv6) {
    PAIR(p);
    ASSERT_EQ(p.tcd(p.dir1(), "load --key port --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "map set 7201 pass").rc, 0);  // UDP
    ASSERT_EQ(p.tcd(p.dir1(), "map set 7202 pass").rc, 0);  // TCP
    ASSERT_EQ(p.tcd(p.dir1(), "map set 7203 drop").rc, 0);  // UDP, dropped at B's ingress

    ASSERT_EQ(p.udp("10.202.0.2", 7201, 20), 20);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 7201), 20u);
    ASSERT_EQ(p.udp("fd00:202::2", 7201, 30), 30);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 7201), 50u);

    ASSERT_TRUE(p.tcp("10.202.0.2", 7202, 20000));
    uint64_t v4 = packets(p.tcd_json(p.dir1(), "stats"), 7202);
    EXPECT_GE(v4, 4u);  // SYN, data, FIN, ACKs: A -> B towards 7202
    ASSERT_TRUE(p.tcp("fd00:202::2", 7202, 20000));
    uint64_t both = packets(p.tcd_json(p.dir1(), "stats"), 7202);
    EXPECT_GE(both, v4 + 4);

    EXPECT_EQ(p.udp("10.202.0.2", 7203, 10), 0);
    EXPECT_EQ(p.udp("fd00:202::2", 7203, 10), 0);
    json s = p.tcd_json(p.dir1(), "stats");
    EXPECT_EQ(packets(s, 7203), 20u);
    EXPECT_EQ((*key_row(s, 7203))["missed"].get<uint64_t>(), 0u);
    EXPECT_EQ((*key_row(s, 7201))["missed"].get<uint64_t>(), 0u);
    EXPECT_EQ(s["malformed"]["packets"].get<uint64_t>(), 0u);
}

}  // namespace
