// Two network namespaces joined by a veth pair, and two pin dirs (a
// tcdtest::NetFixture), for the end-to-end tests of tc instances
// (kinds_e2e_test, tcx_e2e_test). They are the test's own and go away in the
// destructor, also when an assertion fails.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/common/commands.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/no_tcx.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"
#include "tests/common/veth_test.h"
#include "tests/common/wait.h"

namespace tcdtest {

using nlohmann::json;

// Namespaces A and B joined by va (in A) and vb (in B), and two pin dirs.
// Addressed: 10.202.0.1/2 and fd00:202::1/2. Quiet: no addresses, IPv6 off,
// MTU 9000, so nothing but the frames a test injects crosses the link.
inline tcdtest::TopologySpec kinds_topology(bool quiet) {
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

class Pair : public NetFixture {
public:
    explicit Pair(bool quiet = false) : NetFixture(kinds_topology(quiet), {"_1", "_2"}) {
        // Neighbours resolved before a test counts or times anything (the
        // first IPv6 neighbour solicitation after link-up can take a second).
        if (ok() && !quiet) {
            auto resolved = tcdtest::wait_until(
                [&] {
                    return sh(in_ns(a(), "ping -q -c 1 -W 1 10.202.0.2")).rc == 0 &&
                           sh(in_ns(a(), "ping -q -6 -c 1 -W 1 fd00:202::2")).rc == 0;
                },
                std::chrono::seconds(10), "va to reach vb by ping, over IPv4 and IPv6");
            if (!resolved) failed(resolved.message());
        }
    }
    const std::string& dir1() const { return dir(0); }
    const std::string& dir2() const { return dir(1); }
    bool clsact_on_vb() const { return sh(in_ns(b(), "tc qdisc show dev vb")).out.find("clsact") != std::string::npos; }

    // UDP datagrams from A to B (to an address of B, port); how many B got.
    int udp(const std::string& to, int port, int count) const { return udp_across(a(), b(), to, port, count); }
    // A TCP connection from A to B carrying `bytes`.
    bool tcp(const std::string& to, int port, int bytes) const { return tcp_across(a(), b(), to, port, bytes); }
};

#define PAIR(p, ...) NET_FIXTURE(Pair, p, __VA_ARGS__)

// Waits until the instance's total reaches `want` packets (veth's NAPI may
// lag a moment); returns the last stats (the caller's assertions say what
// they hold).
inline json stats_when(const Pair& p, const std::string& dir, uint64_t want) {
    json s;
    (void)tcdtest::wait_until(
        [&] {
            s = p.tcd_json(dir, "stats --all");
            return s.is_object() && s["total"]["packets"].get<uint64_t>() >= want;
        },
        std::chrono::seconds(10), "the counters to reach " + std::to_string(want) + " packets");
    return s;
}

// After a UDP stream to key 17 ran through reloads of dir1's instance: all of
// it arrived, and the instance has one attachment, one wired key, no problems,
// and counters that kept the stream across the swaps. Its status.
inline json expect_reloads_kept_the_stream(const Pair& p, const StreamResult& r) {
    EXPECT_GT(r.sent, 4);
    EXPECT_EQ(r.received, r.sent);
    EXPECT_EQ(r.missing, 0);
    json st = p.tcd_json(p.dir1(), "status");
    EXPECT_EQ(st["attached"].size(), 1u);
    EXPECT_TRUE(st["problems"].empty()) << st.dump();
    EXPECT_EQ(st["wired"].size(), 1u);
    EXPECT_GE(packets(p.tcd_json(p.dir1(), "stats"), 17), uint64_t(r.sent));
    return st;
}

}  // namespace tcdtest
