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
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/fd.h"
#include "tests/common/kernel.h"
#include "tests/common/packet.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"
#include "tests/common/wait.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::sh;

// Namespaces A and B joined by va (in A) and vb (in B), and two pin dirs.
// Addressed: 10.202.0.1/2 and fd00:202::1/2. Quiet: no addresses, IPv6 off,
// MTU 9000, so nothing but the frames a test injects crosses the link.
tcdtest::TopologySpec kinds_topology(bool quiet) {
    tcdtest::TopologySpec spec{.prefix = "tcdk",
                               .namespaces = {"a", "b"},
                               .veths = {{.a = {"a", "va"}, .b = {"b", "vb"}}},
                               .lo_up = true,
                               .ipv6 = !quiet,
                               .vlan_offload = false};
    if (quiet) {
        spec.veths[0].mtu = 9000;
    } else {
        spec.veths[0].a.addrs = {"10.202.0.1/24", "fd00:202::1/64"};
        spec.veths[0].b.addrs = {"10.202.0.2/24", "fd00:202::2/64"};
    }
    return spec;
}

class Pair {
public:
    explicit Pair(bool quiet = false) : net_(kinds_topology(quiet)) {
        std::string id = std::to_string(getpid());
        dir1_ = "/sys/fs/bpf/tcdk" + id + "_1";
        dir2_ = "/sys/fs/bpf/tcdk" + id + "_2";
        unload();
        // Neighbours resolved before a test counts or times anything (the
        // first IPv6 neighbour solicitation after link-up can take a second).
        if (net_.ok() && !quiet) {
            auto resolved = tcdtest::wait_until(
                [&] {
                    return sh(in_ns(a(), "ping -q -c 1 -W 1 10.202.0.2")).rc == 0 &&
                           sh(in_ns(a(), "ping -q -6 -c 1 -W 1 fd00:202::2")).rc == 0;
                },
                std::chrono::seconds(10), "va to reach vb by ping, over IPv4 and IPv6");
            if (!resolved) error_ = resolved.message();
        }
    }
    ~Pair() { unload(); }
    void unload() {
        std::string bin = TCD_BIN;
        sh(bin + " -q -d " + dir1_ + " unload; " + bin + " -q -d " + dir2_ + " unload");
    }
    bool ok() const { return net_.ok() && error_.empty(); }
    const std::string& error() const { return net_.ok() ? error_ : net_.error(); }
    const std::string& a() const { return net_.ns("a"); }
    const std::string& b() const { return net_.ns("b"); }
    const std::string& dir1() const { return dir1_; }
    const std::string& dir2() const { return dir2_; }

    Cmd tcd(const std::string& dir, const std::string& args) const {
        return sh(std::string(TCD_BIN) + " -d " + dir + " " + args);
    }
    json tcd_json(const std::string& dir, const std::string& args) const {
        Cmd c = tcd(dir, "-j " + args);
        EXPECT_EQ(c.rc, 0) << args << ": " << c.err;
        return json::parse(c.out.empty() ? "null" : c.out);
    }
    std::string in_ns(const std::string& ns, const std::string& cmd) const { return tcdtest::in_netns(ns, cmd); }
    bool clsact_on_vb() const { return sh(in_ns(b(), "tc qdisc show dev vb")).out.find("clsact") != std::string::npos; }

    // UDP datagrams from A to B (to an address of B, port); how many B got.
    int udp(const std::string& to, int port, int count) const {
        std::string peer = TCD_PEER;
        std::string recv = peer + " udp-recv --netns " + b() + " --port " + std::to_string(port) + " --count " +
                           std::to_string(count) + " --timeout-ms 700";
        FILE* r = popen(recv.c_str(), "r");
        if (!r) return -1;
        char line[128] = {};
        if (!fgets(line, sizeof line, r)) {  // "ready"
            pclose(r);
            return -1;
        }
        sh(peer + " udp-send --netns " + a() + " --to " + to + " --port " + std::to_string(port) + " --count " +
           std::to_string(count) + " --interval-us 200");
        int received = -1;
        while (fgets(line, sizeof line, r))
            if (std::sscanf(line, "received %d", &received) == 1) break;
        pclose(r);
        return received;
    }
    // A TCP connection from A to B carrying `bytes`.
    bool tcp(const std::string& to, int port, int bytes) const {
        std::string peer = TCD_PEER;
        std::string listen = peer + " tcp-listen --netns " + b() + " --port " + std::to_string(port) +
                             " --timeout-ms 3000 --bytes " + std::to_string(bytes);
        FILE* l = popen(listen.c_str(), "r");
        if (!l) return false;
        char line[128] = {};
        if (!fgets(line, sizeof line, l)) {
            pclose(l);
            return false;
        }
        Cmd s = sh(peer + " tcp-send --netns " + a() + " --to " + to + " --port " + std::to_string(port) +
                   " --bytes " + std::to_string(bytes) + " --timeout-ms 3000");
        int rc = pclose(l);
        return s.rc == 0 && rc == 0;
    }

private:
    tcdtest::Topology net_;
    std::string dir1_, dir2_;
    std::string error_;
};

#define PAIR(p, ...)                         \
    TCD_REQUIRE_KERNEL();                    \
    Pair p{__VA_ARGS__};                     \
    ASSERT_TRUE(p.ok()) << "could not build the veth pair: " << p.error()

const json* key_row(const json& stats, int key) {
    for (const auto& k : stats["keys"])
        if (k["key"] == key) return &k;
    return nullptr;
}

uint64_t packets(const json& stats, int key) {
    const json* r = key_row(stats, key);
    return r ? (*r)["packets"].get<uint64_t>() : 0;
}

// Waits until the instance's total reaches `want` packets (veth's NAPI may
// lag a moment); returns the last stats (the caller's assertions say what
// they hold).
json stats_when(const Pair& p, const std::string& dir, uint64_t want) {
    json s;
    (void)tcdtest::wait_until(
        [&] {
            s = p.tcd_json(dir, "stats --all");
            return s.is_object() && s["total"]["packets"].get<uint64_t>() >= want;
        },
        std::chrono::seconds(10), "the counters to reach " + std::to_string(want) + " packets");
    return s;
}

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
    EXPECT_EQ(p.tcd_json(p.dir2(), "stats")["total"]["packets"].get<uint64_t>(), 0u);
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
