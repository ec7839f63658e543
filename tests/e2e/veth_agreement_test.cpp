// The same frames over a real veth with the dispatcher attached (native and
// generic mode) agree with test_run and with the reference classifier: each
// frame goes through the instance's dispatcher by BPF_PROG_TEST_RUN (tcd's
// tracer, which leaves the live counters alone) and through the reference
// before it is sent, and every counter row of the live instance then matches.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "core/attach.h"
#include "core/bpffs.h"
#include "core/fd.h"
#include "core/instance.h"
#include "core/stats.h"
#include "core/trace.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/topology.h"
#include "tests/common/veth_test.h"
#include "tests/common/wait.h"
#include "tests/ref/framegen.h"
#include "tests/ref/ref_classifier.h"

namespace {

using nlohmann::json;

// Two namespaces, a veth pair with no addresses, IPv6 off and VLAN offload
// off, so nothing but the frames we inject crosses it, as they are.
tcdtest::TopologySpec quiet_topology() {
    return {.prefix = "tcdv",
            .namespaces = {"a", "b"},
            .veths = {{.a = {"a", "va"}, .b = {"b", "vb"}}},
            .ipv6 = false,
            .vlan_offload = false};
}

struct Row {
    uint64_t packets = 0, bytes = 0, missed = 0;
};

void agree(const std::string& mode) {
    tcdtest::NetFixture p(quiet_topology());
    ASSERT_TRUE(p.ok()) << p.error();
    json att = json::parse(p.tcd("-j attach vb --netns " + p.b() + " --mode " + mode).out);
    ASSERT_EQ(att["mode"], mode);

    uint64_t seed = std::random_device{}();
    std::printf("veth agreement (%s): seed %llu\n", mode.c_str(), (unsigned long long)seed);
    tcdref::FrameGen gen(seed);
    Row want[258]{};
    size_t sent = 0;
    auto tracer = tcd::Tracer::open(p.dir());
    ASSERT_TRUE(tracer) << tracer.error().message();
    ASSERT_TRUE(tracer->instance_loaded());
    auto live = tcd::Instance::open(p.dir());
    ASSERT_TRUE(live) << live.error().message();
    auto counted = [&]() -> uint64_t {
        auto st = tcd::read_stats(live->stats_fd());
        return st ? st->total().packets : 0;
    };
    {
        auto guard = tcd::NetnsGuard::enter("/run/netns/" + p.a());
        ASSERT_TRUE(guard);
        tcd::UniqueFd sock(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
        ASSERT_TRUE(sock) << "AF_PACKET socket: " << strerror(errno);
        sockaddr_ll ll{};
        ll.sll_family = AF_PACKET;
        ll.sll_ifindex = static_cast<int>(if_nametoindex("va"));
        ll.sll_halen = ETH_ALEN;
        ASSERT_NE(ll.sll_ifindex, 0);
        while (sent < 3000) {
            auto f = gen.next();
            if (f.size() < 14 || f.size() > 1514) continue;  // what a veth carries
            tcdref::RefResult r = tcdref::classify(f.data(), f.size());
            size_t slot = r.cls == tcdref::Class::non_ip ? 256 : r.cls == tcdref::Class::malformed ? 257 : size_t(r.key);
            auto t = tracer->run(f.data(), f.size(), sent + 1);
            ASSERT_TRUE(t) << t.error().message();
            ASSERT_TRUE(t->ran);
            size_t tslot = t->cls == "non-ip" ? 256 : t->cls == "malformed" ? 257 : size_t(t->key.value_or(9999));
            ASSERT_EQ(tslot, slot) << "test_run and the reference differ on frame " << sent + 1 << " (seed " << seed
                                   << "): " << t->cls;
            ASSERT_EQ(t->missed, slot < 256) << "frame " << sent + 1;
            ASSERT_EQ(sendto(sock.get(), f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&ll), sizeof ll),
                      ssize_t(f.size()))
                << strerror(errno);
            want[slot].packets++;
            want[slot].bytes += f.size();
            if (slot < 256) want[slot].missed++;
            // In batches: each one counted before the next is sent (a veth
            // holds 256 frames for its NAPI; more at once would be dropped).
            if (++sent % 64 == 0)
                ASSERT_TRUE(tcdtest::wait_until([&] { return counted() >= sent; }, std::chrono::seconds(10),
                                                "the live counters to reach " + std::to_string(sent) + " packets"));
        }
    }

    // veth's NAPI may lag a moment (the assertions below say what it counted).
    (void)tcdtest::wait_until([&] { return counted() >= sent; }, std::chrono::seconds(10),
                              "the live counters to reach " + std::to_string(sent) + " packets");
    json s = json::parse(p.tcd("-j stats --all").out);
    EXPECT_EQ(s["total"]["packets"].get<uint64_t>(), sent);
    std::printf("veth agreement (%s): %zu frames sent, %llu counted, %llu non-ip, %llu malformed\n", mode.c_str(), sent,
                (unsigned long long)s["total"]["packets"].get<uint64_t>(),
                (unsigned long long)s["non_ip"]["packets"].get<uint64_t>(),
                (unsigned long long)s["malformed"]["packets"].get<uint64_t>());
    for (const auto& k : s["keys"]) {
        int key = k["key"];
        EXPECT_EQ(k["packets"].get<uint64_t>(), want[key].packets) << "key " << key;
        EXPECT_EQ(k["bytes"].get<uint64_t>(), want[key].bytes) << "key " << key;
        EXPECT_EQ(k["missed"].get<uint64_t>(), want[key].missed) << "key " << key;
    }
    EXPECT_EQ(s["non_ip"]["packets"].get<uint64_t>(), want[256].packets);
    EXPECT_EQ(s["non_ip"]["bytes"].get<uint64_t>(), want[256].bytes);
    EXPECT_EQ(s["malformed"]["packets"].get<uint64_t>(), want[257].packets);
    EXPECT_EQ(s["malformed"]["bytes"].get<uint64_t>(), want[257].bytes);
}

TEST(VethAgreement, NativeMode) {
    TCD_REQUIRE_KERNEL();
    agree("native");
}

TEST(VethAgreement, GenericMode) {
    TCD_REQUIRE_KERNEL();
    agree("skb");
}

}  // namespace
