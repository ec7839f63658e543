// Instance trees under concurrency, reloads, crashes and deep chains
// (docs/datapath.md, "Instance trees"): a map set wiring a child racing the
// child's unload, two instances wiring each other at once, a child reloaded
// and respecialised under traffic through its parent, a child's load --force
// killed at every step, and chaining handlers counted as levels against the
// kernel's 33 tail calls on real traffic. Pins and namespaces are the
// test's own and go in destructors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/bpffs.h"
#include "tests/common/commands.h"
#include "tests/common/kernel.h"
#include "tests/common/pin_dirs.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"
#include "tests/common/tcd_cmd.h"
#include "tests/common/topology.h"
#include "tests/common/wait.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::sh;

constexpr int kKilled = 128 + 9;

// Pin dirs named tcds<pid>_TAG (tests/common/pin_dirs.h).
struct Dirs : tcdtest::PinDirs {
    Dirs() : PinDirs("tcds") {}
};

using tcdtest::dispatcher_id;
using tcdtest::tcd;
using tcdtest::tcd_json;
using tcdtest::wired_id;
const auto key_row = tcdtest::row_of_key;

// Two commands started together; their results.
std::pair<Cmd, Cmd> at_once(const std::string& a, const std::string& b) {
    Cmd ra, rb;
    std::thread ta([&] { ra = sh(a); });
    std::thread tb([&] { rb = sh(b); });
    ta.join();
    tb.join();
    return {ra, rb};
}

// Datagrams from a to b's port for as long as `work` runs.
tcdtest::StreamResult udp_stream_around(const tcdtest::Topology& net, const std::string& to, int port,
                                        int interval_us, const std::function<void()>& work) {
    return tcdtest::udp_stream_around(net.ns("a"), net.ns("b"), to, port, interval_us, work);
}

// A map set in the parent wiring the child, and the child's unload, started
// together, round after round: one of them wins, and never is a parent left
// wiring a child that is gone (the unload's parent check and removal, and
// the map set's check and write, both happen under the child's lock).
TEST(TreeSafety, WiringRacesTheChildsUnload) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string parent = d.add("rp"), child = d.add("rc");
    ASSERT_EQ(tcd(parent, "load").rc, 0);
    int wired_first = 0, unloaded_first = 0;
    for (int round = 0; round < 30; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        ASSERT_EQ(tcd(child, "load").rc, 0);
        auto [set, un] = at_once(std::string(TCD_BIN) + " -d " + parent + " map set tcp " + child,
                                 std::string(TCD_BIN) + " -d " + child + " unload");
        EXPECT_FALSE(set.rc == 0 && un.rc == 0) << "both succeeded: " << set.err << un.err;
        EXPECT_NE(set.rc == 0, un.rc == 0) << "neither succeeded: " << set.err << " / " << un.err;
        json cs = tcd_json(child, "status");
        bool loaded = cs.value("loaded", false);
        uint64_t at = wired_id(parent, 6);
        if (at) {
            EXPECT_TRUE(loaded) << "the parent wires a child that was unloaded";
            EXPECT_EQ(at, dispatcher_id(child));
            EXPECT_EQ(un.rc, 1);
            EXPECT_NE(un.err.find("is wired in " + parent), std::string::npos) << un.err;
            wired_first++;
            ASSERT_EQ(tcd(parent, "map del tcp").rc, 0);
            ASSERT_EQ(tcd(child, "unload").rc, 0);
        } else {
            EXPECT_FALSE(loaded) << "neither wired nor unloaded";
            EXPECT_NE(set.rc, 0);
            unloaded_first++;
        }
        EXPECT_FALSE(tcd::bpffs::exists(child));
    }
    std::printf("map set won %d rounds, unload %d\n", wired_first, unloaded_first);
}

// Two instances wiring each other at the same time: neither waits for the
// other for ever (the locks are taken in one order), and the one that comes
// second is refused as a loop, so no cycle is ever made.
TEST(TreeSafety, TwoInstancesWiringEachOtherAtOnce) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string a = d.add("ma"), b = d.add("mb");
    ASSERT_EQ(tcd(a, "load").rc, 0);
    ASSERT_EQ(tcd(b, "load").rc, 0);
    // A lock wait past 30 s would be a deadlock: it fails with "has held its lock".
    const std::string bin = "TCD_LOCK_TIMEOUT=30 " + std::string(TCD_BIN);
    int a_won = 0, b_won = 0;
    for (int round = 0; round < 20; round++) {
        SCOPED_TRACE("round " + std::to_string(round));
        auto [ab, ba] = at_once(bin + " -d " + a + " map set tcp " + b, bin + " -d " + b + " map set tcp " + a);
        EXPECT_NE(ab.rc == 0, ba.rc == 0) << ab.err << " / " << ba.err;
        const Cmd& loser = ab.rc == 0 ? ba : ab;
        EXPECT_EQ(loser.rc, 1);
        EXPECT_NE(loser.err.find("makes a loop"), std::string::npos) << loser.err;
        EXPECT_EQ(loser.err.find("held its lock"), std::string::npos) << loser.err;
        bool at_a = wired_id(a, 6) != 0, at_b = wired_id(b, 6) != 0;
        EXPECT_NE(at_a, at_b) << "a cycle (or nothing) was made";
        for (const auto& x : {a, b}) {
            json st = tcd_json(x, "status");
            for (const auto& p : st["problems"])
                EXPECT_EQ(p.get<std::string>().find("loop"), std::string::npos) << p;
        }
        (at_a ? a_won : b_won)++;
        ASSERT_EQ(tcd(at_a ? a : b, "map del tcp").rc, 0);
    }
    std::printf("a wired b in %d rounds, b wired a in %d\n", a_won, b_won);
}

// A child that the parent reaches on a live link is reloaded and
// respecialised (a port wired and unwired changes its direct ports) for as
// long as a UDP stream runs through parent -> child: every time the parent
// wires the child's new dispatcher, no datagram is lost, and the counters of
// both levels keep counting across the reloads.
TEST(TreeSafety, ChildReloadedUnderTrafficMovesItsParent) {
    TCD_REQUIRE_KERNEL();
    tcdtest::Topology net({.prefix = "tcds",
                           .namespaces = {"a", "b"},
                           .veths = {{.a = {"a", "va", {"10.206.0.1/24"}}, .b = {"b", "vb", {"10.206.0.2/24"}}}},
                           .lo_up = true,
                           .ipv6 = false});
    ASSERT_TRUE(net.ok()) << net.error();
    Dirs d;
    std::string root = d.add("lroot"), web = d.add("lweb");
    ASSERT_TRUE(tcdtest::wait_until(
        [&] { return sh(tcdtest::in_netns(net.ns("a"), "ping -q -c 1 -W 1 10.206.0.2")).rc == 0; },
        std::chrono::seconds(10), "va to reach vb"));
    ASSERT_EQ(tcd(web, "load --key port").rc, 0);
    ASSERT_EQ(tcd(web, "map set 7003 pass").rc, 0);
    ASSERT_EQ(tcd(root, "attach vb --mode skb --netns " + net.ns("b")).rc, 0);
    ASSERT_EQ(tcd(root, "map set udp " + web).rc, 0);
    ASSERT_EQ(wired_id(root, 17), dispatcher_id(web));
    const uint64_t first = dispatcher_id(web);
    // load --force says which parents' keys it moved.
    json lf = tcd_json(web, "load --force --key port");
    ASSERT_EQ(lf["repointed"].size(), 1u) << lf.dump();
    EXPECT_EQ(lf["repointed"][0]["instance"], root);
    EXPECT_EQ(lf["repointed"][0]["key"], 17);
    EXPECT_NE(tcd(web, "load --force --key port").out.find("repointed " + root + " key 17"), std::string::npos);
    EXPECT_EQ(wired_id(root, 17), dispatcher_id(web));

    // The child is reloaded 4 times and respecialised 8 times (map set and
    // del of 7010, each a new direct set) while the datagrams flow.
    constexpr int kRounds = 12;
    int reloads = 0, respecialised = 0, failed = 0, behind = 0;
    auto r = udp_stream_around(net, "10.206.0.2", 7003, 300, [&] {
        for (int i = 0; i < kRounds; i++) {
            switch (i % 3) {
            case 0:
                if (tcd(web, "-q load --force --key port").rc == 0) reloads++;
                else failed++;
                break;
            case 1:
            case 2: {
                json j = tcd_json(web, i % 3 == 1 ? "map set 7010 drop" : "map del 7010");
                if (j.is_object() && j.value("respecialised", false)) respecialised++;
                else failed++;
                break;
            }
            }
            if (wired_id(root, 17) != dispatcher_id(web)) behind++;
        }
    });
    EXPECT_EQ(failed, 0);
    EXPECT_EQ(behind, 0) << "the parent was left at an earlier dispatcher of the child";
    EXPECT_EQ(reloads, 4);
    EXPECT_EQ(respecialised, 8);
    std::printf("%d reloads and %d respecialisations of the child during a stream of %d datagrams\n", reloads,
                respecialised, r.sent);
    EXPECT_GT(r.sent, kRounds);
    const int count = r.sent;
    EXPECT_EQ(r.received, count);
    EXPECT_EQ(r.missing, 0);
    EXPECT_NE(dispatcher_id(web), first);
    EXPECT_EQ(wired_id(root, 17), dispatcher_id(web));
    // Each level counted every datagram once, across all the reloads.
    json rs = tcd_json(root, "stats"), ws = tcd_json(web, "stats");
    ASSERT_TRUE(key_row(rs["keys"], 17));
    ASSERT_TRUE(key_row(ws["keys"], 7003));
    EXPECT_EQ((*key_row(rs["keys"], 17))["packets"], count);
    EXPECT_EQ((*key_row(rs["keys"], 17))["missed"], 0);
    EXPECT_EQ((*key_row(ws["keys"], 7003))["packets"], count);
    EXPECT_EQ((*key_row(ws["keys"], 7003))["missed"], 0);
    EXPECT_TRUE(tcd_json(web, "status")["problems"].empty());
    for (const auto& name : tcd::bpffs::list_pins(web)) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
    ASSERT_EQ(tcd(root, "detach --all").rc, 0);
}

// A child with two parents, its load --force (and a respecialising map set)
// killed at every step, the steps between moving the parents' keys and
// renaming the pin among them: status says so whenever a parent does not
// wire the pinned dispatcher, and the next command finishes the job (the
// parents end at the pinned dispatcher, no temporary pin left).
TEST(TreeSafety, ChildReloadKilledAtEveryStep) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string p1 = d.add("kp1"), p2 = d.add("kp2"), child = d.add("kc");
    for (const auto& x : {p1, p2, child}) ASSERT_EQ(tcd(x, "load").rc, 0);
    ASSERT_EQ(tcd(child, "map set tcp drop").rc, 0);
    ASSERT_EQ(tcd(p1, "map set tcp " + child).rc, 0);
    ASSERT_EQ(tcd(p2, "map set udp " + child).rc, 0);
    struct Case {
        std::string command, again;
    };
    // gre joins the direct keys: the map set loads a new dispatcher; the
    // map del after it loads one again.
    for (const Case& c : {Case{"load --force", "load"}, Case{"map set gre pass", "map set gre pass"},
                          Case{"map del gre", "map del gre"}}) {
        int steps = 0, split = 0;
        for (int n = 1; n < 40; n++) {
            SCOPED_TRACE(c.command + ", killed at load step " + std::to_string(n));
            Cmd k = sh("TCD_CRASHPOINT=load:" + std::to_string(n) + " " + TCD_BIN + " -d " + child + " " + c.command);
            if (k.rc != kKilled) {
                EXPECT_EQ(k.rc, 0) << k.err;
                break;
            }
            steps++;
            json st = tcd_json(child, "status");
            ASSERT_TRUE(st.value("loaded", false));
            uint64_t pinned = st["dispatcher"]["prog_id"].get<uint64_t>();
            bool behind = wired_id(p1, 6) != pinned || wired_id(p2, 17) != pinned;
            if (behind) {
                split++;
                EXPECT_FALSE(st["problems"].empty()) << "a parent is not at the pinned dispatcher, status says nothing";
            }
            Cmd again = tcd(child, c.again);
            EXPECT_EQ(again.rc, 0) << again.err;
            pinned = dispatcher_id(child);
            EXPECT_EQ(wired_id(p1, 6), pinned);
            EXPECT_EQ(wired_id(p2, 17), pinned);
            EXPECT_TRUE(tcd_json(child, "status")["problems"].empty()) << tcd(child, "status").out;
            for (const auto& name : tcd::bpffs::list_pins(child))
                EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
            // Back to the wiring the next round starts from.
            if (c.command == "map del gre") ASSERT_EQ(tcd(child, "map set gre pass").rc, 0);
            if (c.command == "map set gre pass") ASSERT_EQ(tcd(child, "map del gre").rc, 0);
        }
        EXPECT_GE(steps, 3) << c.command;
        // Killed after the first parent's key moved and after the second's.
        EXPECT_GE(split, 2) << c.command;
        std::printf("%s killed at each of %d steps, %d of them with a parent not at the pinned dispatcher\n",
                    c.command.c_str(), steps, split);
        if (c.command == "map set gre pass") ASSERT_EQ(tcd(child, "map set gre pass").rc, 0);
    }
    // Everything still unloads.
    EXPECT_EQ(tcd(child, "unload --force").rc, 0);
}

// Chaining handlers count as levels (core/tree.h analyse()): 16 proto
// instances in a row, each but the last handing UDP to chain.bpf.c's mark,
// which hands every frame on to key 252, which wires the next instance. A
// frame into the first takes 2 tail calls per such level and one into the
// last one's drop: 31. An instance on top wiring the first at 252 makes 32,
// the kernel's 33 less the one tcd keeps for its entry into libxdp's
// dispatcher: accepted. Its udp to mark as well would make 33: refused,
// naming the chain. Its udp straight to the first dispatcher is 32 as well,
// and on a live link, attached at the top, the datagrams really reach the
// last level (each level counts them, the last drops them): 33 tail calls in
// libxdp's dispatcher, where the entry takes one.
TEST(TreeSafety, ChainingHandlersCountAsLevels) {
    TCD_REQUIRE_KERNEL();
    tcdtest::Topology net({.prefix = "tcds",
                           .namespaces = {"a", "b"},
                           .veths = {{.a = {"a", "va", {"10.207.0.1/24"}}, .b = {"b", "vb", {"10.207.0.2/24"}}}},
                           .lo_up = true,
                           .ipv6 = false});
    ASSERT_TRUE(net.ok()) << net.error();
    Dirs d;
    const int levels = 16;
    const std::string chain = std::string(TCD_BPF_OBJ_DIR) + "/chain.bpf.o";
    std::vector<std::string> n;
    for (int i = 0; i < levels; i++) {
        n.push_back(d.add("c" + std::to_string(i)));
        ASSERT_EQ(tcd(n.back(), "load").rc, 0);
        Cmd h = tcd(n.back(), "handler load " + chain);
        ASSERT_EQ(h.rc, 0) << h.err;
    }
    // From the leaf upwards.
    ASSERT_EQ(tcd(n[levels - 1], "map set udp drop").rc, 0);
    for (int i = levels - 2; i >= 0; i--) {
        Cmd next = tcd(n[i], "map set 252 " + n[i + 1]);
        ASSERT_EQ(next.rc, 0) << i << ": " << next.err;
        Cmd mark = tcd(n[i], "map set udp mark");
        ASSERT_EQ(mark.rc, 0) << i << ": " << mark.err;
    }
    EXPECT_TRUE(tcd_json(n[0], "status")["problems"].empty());

    std::string all;
    for (const auto& x : n) all += (all.empty() ? "" : " -> ") + x;
    // An instance on top: 252 to the first is 32 tail calls, the limit.
    std::string top = d.add("ctop");
    ASSERT_EQ(tcd(top, "load").rc, 0);
    ASSERT_EQ(tcd(top, "handler load " + chain).rc, 0);
    Cmd at_limit = tcd(top, "map set 252 " + n[0]);
    EXPECT_EQ(at_limit.rc, 0) << at_limit.err;
    // Its udp to the chaining mark: one level more, 33.
    Cmd deep = tcd(top, "map set udp mark");
    EXPECT_EQ(deep.rc, 1);
    EXPECT_NE(deep.err.find("33 tail calls (" + top + " -> " + all + ")"), std::string::npos) << deep.err;
    EXPECT_NE(deep.err.find("allows 33 (1 kept"), std::string::npos) << deep.err;
    EXPECT_FALSE(key_row(tcd_json(top, "map list"), 17));
    // Its udp straight to the first instance's dispatcher: 32 tail calls
    // down to the leaf's drop, the most a wiring may make.
    Cmd direct = tcd(top, "map set udp " + n[0]);
    ASSERT_EQ(direct.rc, 0) << direct.err;

    // Live at the limit, attached at the top: 32 tail calls and, inside
    // libxdp's dispatcher (the 6.1 guest), the entry's one more, 33, the
    // kernel's limit. A tail call past the limit would fall through to the
    // miss action, pass, and the datagrams would arrive.
    ASSERT_TRUE(tcdtest::wait_until(
        [&] { return sh(tcdtest::in_netns(net.ns("a"), "ping -q -c 1 -W 1 10.207.0.2")).rc == 0; },
        std::chrono::seconds(10), "va to reach vb"));
    ASSERT_EQ(tcd(top, "attach vb --mode skb --netns " + net.ns("b")).rc, 0);
    json at = tcd_json(top, "status")["attached"];
    ASSERT_EQ(at.size(), 1u);
    std::printf("attached %s\n", at[0].value("multiprog", false) ? "inside libxdp's dispatcher" : "alone");
    const int count = 50;
    auto none = tcdtest::udp_stream(net.ns("a"), net.ns("b"), "10.207.0.2", 7005, count, 500);
    EXPECT_EQ(none.received, 0) << "datagrams got past the 16th level's drop";
    n.insert(n.begin(), top);
    for (size_t i = 0; i < n.size(); i++) {
        json s = tcd_json(n[i], "stats");
        const json* u = key_row(s["keys"], 17);
        ASSERT_TRUE(u) << "level " << i;
        EXPECT_EQ((*u)["packets"], count) << "level " << i;
        EXPECT_EQ((*u)["missed"], 0) << "level " << i;
    }
    ASSERT_EQ(tcd(top, "detach --all").rc, 0);
}

}  // namespace
