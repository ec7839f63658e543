// Instance trees end to end: a proto instance handing keys to a port
// instance on one hook (docs/datapath.md, "Instance trees"): wiring by pin
// dir, naming the child, the tree in status, the refusals (loop, hook, depth,
// a directory without an instance, unloading a wired child), unload --force,
// live veth traffic through two levels, and SIGKILL while wiring a child.
// Pins and namespaces are the test's own and go in destructors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

// Pin dirs named tcdt<pid>_TAG (tests/common/pin_dirs.h).
struct Dirs : tcdtest::PinDirs {
    Dirs() : PinDirs("tcdt") {}
};

using tcdtest::tcd;
using tcdtest::tcd_json;
const auto key_row = tcdtest::row_of_key;

// bpftool, for the tests that wire by hand: skipped without it (a failure in CI).
#define REQUIRE_BPFTOOL()                                                                        \
    if (sh("command -v bpftool").rc != 0) {                                                      \
        if (tcdtest::in_ci()) FAIL() << "bpftool is missing (scripts/packages.txt)";              \
        GTEST_SKIP() << "bpftool is missing";                                                    \
    }

// root, a proto instance, and web, a port instance: loaded.
void load_root_and_web(const std::string& root, const std::string& web) {
    ASSERT_EQ(tcd(root, "load").rc, 0);
    ASSERT_EQ(tcd(web, "load --key port").rc, 0);
}

TEST(Tree, ChildWiredByPinDirIsNamedAndShownAsATree) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string root = d.add("root"), web = d.add("web");
    ASSERT_EQ(tcd(root, "load").rc, 0);
    ASSERT_EQ(tcd(web, "load --key port").rc, 0);
    ASSERT_EQ(tcd(web, "map set http pass").rc, 0);

    // Was "permission denied (needs root ...)" even for root.
    Cmd set = tcd(root, "-j map set tcp " + web);
    ASSERT_EQ(set.rc, 0) << set.err;
    json sj = json::parse(set.out);
    EXPECT_EQ(sj["instance"], web);
    EXPECT_EQ(sj["handler"], web);

    Cmd list = tcd(root, "map list");
    EXPECT_NE(list.out.find(web), std::string::npos) << list.out;
    EXPECT_EQ(list.out.find("id:"), std::string::npos) << list.out;
    json lj = tcd_json(root, "map list");
    const json* r = key_row(lj, 6);
    ASSERT_TRUE(r);
    EXPECT_EQ((*r)["instance"], web);
    EXPECT_EQ(key_row(tcd_json(web, "map list"), 80)->at("instance"), nullptr);

    json stats = tcd_json(root, "stats");
    ASSERT_TRUE(key_row(stats["keys"], 6));
    EXPECT_EQ(key_row(stats["keys"], 6)->at("instance"), web);

    json rs = tcd_json(root, "status"), ws = tcd_json(web, "status");
    ASSERT_EQ(rs["children"].size(), 1u);
    EXPECT_EQ(rs["children"][0]["instance"], web);
    EXPECT_EQ(rs["children"][0]["key"], 6);
    EXPECT_TRUE(rs["parents"].empty());
    ASSERT_EQ(ws["parents"].size(), 1u);
    EXPECT_EQ(ws["parents"][0]["instance"], root);
    EXPECT_EQ(ws["parents"][0]["proto"], "tcp");
    EXPECT_NE(tcd(root, "status").out.find("child: 6 (tcp) -> " + web), std::string::npos);
    EXPECT_NE(tcd(web, "status").out.find("parent: " + root + " (key 6 (tcp))"), std::string::npos);

    // A third level shows in the root's tree.
    std::string leaf = d.add("leaf");
    ASSERT_EQ(tcd(leaf, "load --key port").rc, 0);
    ASSERT_EQ(tcd(web, "map set 8080 " + leaf).rc, 0);
    rs = tcd_json(root, "status");
    ASSERT_EQ(rs["children"][0]["children"].size(), 1u);
    EXPECT_EQ(rs["children"][0]["children"][0]["instance"], leaf);
    EXPECT_EQ(rs["children"][0]["children"][0]["key"], 8080);

    // Unloading a wired child: refused, the parent named, nothing removed.
    Cmd un = tcd(web, "unload");
    EXPECT_EQ(un.rc, 1);
    EXPECT_NE(un.err.find("is wired in " + root + " at key tcp"), std::string::npos) << un.err;
    EXPECT_NE(un.err.find("map del tcp"), std::string::npos) << un.err;
    EXPECT_TRUE(tcd(web, "status").out.find("not loaded") == std::string::npos);
    // Unwired by the parent, it goes (its own child is still wired by it, which is fine).
    ASSERT_EQ(tcd(root, "map del tcp").rc, 0);
    EXPECT_EQ(tcd(web, "unload").rc, 0);
    // --force unwires it in the parent first.
    ASSERT_EQ(tcd(root, "map set udp " + leaf).rc, 0);
    Cmd forced = tcd(leaf, "-j unload --force");
    ASSERT_EQ(forced.rc, 0) << forced.err;
    json fj = json::parse(forced.out);
    ASSERT_EQ(fj["unwired"].size(), 1u);
    EXPECT_EQ(fj["unwired"][0]["instance"], root);
    EXPECT_EQ(fj["unwired"][0]["key"], 17);
    EXPECT_TRUE(tcd_json(root, "map list").empty());
}

TEST(Tree, RefusedWirings) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::string a = d.add("a"), b = d.add("b"), c = d.add("c"), t = d.add("t");
    for (const auto& x : {a, b, c}) ASSERT_EQ(tcd(x, "load").rc, 0);
    ASSERT_EQ(tcd(t, "load --hook tc").rc, 0);
    ASSERT_EQ(tcd(a, "map set tcp " + b).rc, 0);

    // Child to parent.
    Cmd loop = tcd(b, "map set udp " + a);
    EXPECT_EQ(loop.rc, 1);
    EXPECT_NE(loop.err.find("makes a loop"), std::string::npos) << loop.err;
    // A longer loop: a -> b -> c -> a.
    ASSERT_EQ(tcd(b, "map set udp " + c).rc, 0);
    Cmd loop3 = tcd(c, "map set 1 " + a);
    EXPECT_EQ(loop3.rc, 1);
    EXPECT_NE(loop3.err.find(a + " -> " + b + " -> " + c + " -> " + a), std::string::npos) << loop3.err;
    // Itself.
    EXPECT_EQ(tcd(a, "map set 2 " + a).rc, 1);
    // Another hook.
    Cmd hook = tcd(a, "map set 3 " + t);
    EXPECT_EQ(hook.rc, 1);
    EXPECT_NE(hook.err.find("same hook"), std::string::npos) << hook.err;
    // A directory with no instance (was: permission denied).
    Cmd dir = tcd(a, "map set 4 /sys/fs/bpf");
    EXPECT_EQ(dir.rc, 1);
    EXPECT_NE(dir.err.find("is a directory"), std::string::npos) << dir.err;
    EXPECT_EQ(dir.err.find("permission denied"), std::string::npos) << dir.err;
    // None of it was written.
    for (const auto& x : {a, b, c}) {
        json l = tcd_json(x, "map list");
        for (int k : {1, 2, 3, 4}) EXPECT_FALSE(key_row(l, k)) << x << " key " << k;
    }
    EXPECT_FALSE(key_row(tcd_json(b, "map list"), 6));
}

// 33 instances in a row: the 33rd level would make the first one's frames
// take 33 tail calls, the kernel's limit, of which tcd keeps one for its
// entry into libxdp's dispatcher (tree::kEntryTailCalls): one too many.
TEST(Tree, ChainPastTheTailCallLimitIsRefused) {
    TCD_REQUIRE_KERNEL();
    Dirs d;
    std::vector<std::string> n;
    for (int i = 0; i < 33; i++) {
        n.push_back(d.add("n" + std::to_string(i)));
        ASSERT_EQ(tcd(n.back(), "load").rc, 0);
    }
    // Leaf first, then upwards: each instance wires the next.
    ASSERT_EQ(tcd(n[32], "map set tcp pass").rc, 0);
    for (int i = 31; i >= 1; i--) ASSERT_EQ(tcd(n[i], "map set tcp " + n[i + 1]).rc, 0) << i;
    // n1 now takes 32 tail calls: the limit less the entry's. n0 -> n1 would take 33.
    Cmd deep = tcd(n[0], "map set tcp " + n[1]);
    EXPECT_EQ(deep.rc, 1);
    EXPECT_NE(deep.err.find("33 tail calls"), std::string::npos) << deep.err;
    EXPECT_NE(deep.err.find("allows 33 (1 kept for tcd's entry into libxdp's dispatcher)"), std::string::npos)
        << deep.err;
    EXPECT_TRUE(tcd_json(n[0], "map list").empty());
    // A chaining handler counts as a level too: n32's leaf replaced by one
    // would make n1's frames take 33.
}

// Traffic through two levels on a veth: a proto instance on vb hands UDP to
// a port instance, whose port 7001 passes and 7002 drops. Each level counts
// every datagram once.
TEST(Tree, LiveTrafficThroughTwoLevels) {
    TCD_REQUIRE_KERNEL();
    tcdtest::Topology net({.prefix = "tcdt",
                           .namespaces = {"a", "b"},
                           .veths = {{.a = {"a", "va", {"10.203.0.1/24"}}, .b = {"b", "vb", {"10.203.0.2/24"}}}},
                           .lo_up = true,
                           .ipv6 = false});
    ASSERT_TRUE(net.ok()) << net.error();
    Dirs d;
    std::string root = d.add("lroot"), web = d.add("lweb");
    ASSERT_TRUE(tcdtest::wait_until([&] { return sh(tcdtest::in_netns(net.ns("a"), "ping -q -c 1 -W 1 10.203.0.2")).rc == 0; },
                                    std::chrono::seconds(10), "va to reach vb"));
    ASSERT_EQ(tcd(web, "load --key port").rc, 0);
    ASSERT_EQ(tcd(web, "map set 7001 pass").rc, 0);
    ASSERT_EQ(tcd(web, "map set 7002 drop").rc, 0);
    ASSERT_EQ(tcd(root, "attach vb --mode skb --netns " + net.ns("b")).rc, 0);
    ASSERT_EQ(tcd(root, "map set udp " + web).rc, 0);

    auto udp = [&](int port, int count) {
        std::string peer = TCD_PEER;
        std::string recv = peer + " udp-recv --netns " + net.ns("b") + " --port " + std::to_string(port) +
                           " --count " + std::to_string(count) + " --timeout-ms 700";
        FILE* r = popen(recv.c_str(), "r");
        if (!r) return -1;
        char line[128] = {};
        if (!fgets(line, sizeof line, r)) {
            pclose(r);
            return -1;
        }
        sh(peer + " udp-send --netns " + net.ns("a") + " --to 10.203.0.2 --port " + std::to_string(port) +
           " --count " + std::to_string(count) + " --interval-us 200");
        int got = -1;
        while (fgets(line, sizeof line, r))
            if (std::sscanf(line, "received %d", &got) == 1) break;
        pclose(r);
        return got;
    };
    EXPECT_EQ(udp(7001, 50), 50);
    EXPECT_EQ(udp(7002, 50), 0);

    json rs, ws;
    (void)tcdtest::wait_until(
        [&] {
            rs = tcd_json(root, "stats");
            ws = tcd_json(web, "stats");
            const json* p1 = key_row(ws["keys"], 7001);
            const json* p2 = key_row(ws["keys"], 7002);
            return p1 && p2 && (*p1)["packets"] >= 50 && (*p2)["packets"] >= 50;
        },
        std::chrono::seconds(10), "the child's counters to reach 50 per port");
    const json* u = key_row(rs["keys"], 17);
    ASSERT_TRUE(u);
    EXPECT_EQ((*u)["instance"], web);
    // Every datagram once in the root (key udp), once in the child (its port).
    EXPECT_EQ((*u)["packets"].get<uint64_t>(),
              key_row(ws["keys"], 7001)->at("packets").get<uint64_t>() +
                  key_row(ws["keys"], 7002)->at("packets").get<uint64_t>() + ws["other_ports"]["packets"].get<uint64_t>());
    EXPECT_EQ(key_row(ws["keys"], 7001)->at("packets"), 50);
    EXPECT_EQ(key_row(ws["keys"], 7002)->at("packets"), 50);
    ASSERT_EQ(tcd(root, "detach --all").rc, 0);
}

// SIGKILL on either side of the jump-table update that wires a child: the
// child is wired whole or not at all, and everything reads and unloads.
TEST(Tree, KilledWhileWiringAChild) {
    TCD_REQUIRE_KERNEL();
    for (int n : {1, 2}) {
        Dirs d;
        std::string root = d.add("kroot"), web = d.add("kweb");
        ASSERT_EQ(tcd(root, "load").rc, 0);
        ASSERT_EQ(tcd(web, "load --key port").rc, 0);
        Cmd k = sh("TCD_CRASHPOINT=map:" + std::to_string(n) + " " + TCD_BIN + " -d " + root + " map set tcp " + web);
        EXPECT_NE(k.rc, 0) << "crash point map:" << n << " was not reached";
        json l = tcd_json(root, "map list");
        const json* r = key_row(l, 6);
        if (n == 1) {
            EXPECT_FALSE(r) << "killed before the update, yet wired";
            EXPECT_TRUE(tcd_json(web, "status")["parents"].empty());
        } else {
            ASSERT_TRUE(r) << "killed after the update, yet not wired";
            EXPECT_EQ((*r)["instance"], web);
            EXPECT_EQ(tcd(web, "unload").rc, 1);  // wired: refused
        }
        // The command can be run again and finishes the job.
        EXPECT_EQ(tcd(root, "map set tcp " + web).rc, 0);
        EXPECT_EQ(tcd(root, "unload").rc, 0);
        EXPECT_EQ(tcd(web, "unload").rc, 0);
    }
}

// trace through two levels for every kind: parent proto|port, child the
// other key kind, on XDP and on tc. An IPv4 TCP frame to port 80: key 6 at a
// proto level, 80 at a port level; the child drops it. Each level is named
// with its class, key and handler, the summary has a row per level, and no
// live counter of either level moves.
TEST(Tree, TraceFollowsTheChainForEveryKind) {
    TCD_REQUIRE_KERNEL();
    const std::string frame =
        "ffffffffffff0000000000010800"
        "4500002800010000400600000a0000010a000002"
        "3039005000000000000000005002200000000000";
    for (std::string hook : {"xdp", "tc"})
        for (std::string pkey : {"proto", "port"}) {
            SCOPED_TRACE(pkey + " parent on " + hook);
            std::string ckey = pkey == "proto" ? "port" : "proto";
            Dirs d;
            std::string parent = d.add("tp" + pkey + hook), child = d.add("tc" + ckey + hook);
            // Miss action pass on both (a tc instance's default is next).
            ASSERT_EQ(tcd(parent, "load --miss-action pass --key " + pkey + " --hook " + hook).rc, 0);
            ASSERT_EQ(tcd(child, "load --miss-action pass --key " + ckey + " --hook " + hook).rc, 0);
            int pk = pkey == "proto" ? 6 : 80, ck = ckey == "proto" ? 6 : 80;
            ASSERT_EQ(tcd(child, "map set " + std::to_string(ck) + " drop").rc, 0);
            Cmd set = tcd(parent, "map set " + std::to_string(pk) + " " + child);
            ASSERT_EQ(set.rc, 0) << set.err;

            json t = tcd_json(parent, "trace --hex " + frame);
            ASSERT_EQ(t["frames"].size(), 1u);
            const json& f = t["frames"][0];
            EXPECT_EQ(f["verdict"], hook == "xdp" ? "XDP_DROP" : "TC_ACT_SHOT");
            ASSERT_EQ(f["levels"].size(), 2u) << f.dump();
            EXPECT_EQ(f["levels"][0]["instance"], parent);
            EXPECT_EQ(f["levels"][0]["class"], "ipv4");
            EXPECT_EQ(f["levels"][0]["key"], pk);
            EXPECT_EQ(f["levels"][0]["handler"], child);
            EXPECT_EQ(f["levels"][1]["instance"], child);
            EXPECT_EQ(f["levels"][1]["class"], "ipv4");
            EXPECT_EQ(f["levels"][1]["key"], ck);
            EXPECT_EQ(f["levels"][1]["handler"], "drop");
            EXPECT_EQ(f["levels"][1]["missed"], false);
            ASSERT_EQ(t["summary"].size(), 2u);
            EXPECT_EQ(t["summary"][0]["level"], 0);
            EXPECT_EQ(t["summary"][1]["level"], 1);
            EXPECT_EQ(t["summary"][1]["instance"], child);
            EXPECT_EQ(t["summary"][1]["key"], ck);
            // A key the child has no handler for: the child level misses.
            ASSERT_EQ(tcd(child, "map del " + std::to_string(ck)).rc, 0);
            json m = tcd_json(parent, "trace --hex " + frame);
            ASSERT_EQ(m["frames"][0]["levels"].size(), 2u);
            EXPECT_EQ(m["frames"][0]["levels"][1]["missed"], true);
            EXPECT_EQ(m["frames"][0]["verdict"], hook == "xdp" ? "XDP_PASS" : "TC_ACT_OK");
            // Plain output names the child level under the frame.
            Cmd plain = tcd(parent, "trace --hex " + frame);
            EXPECT_NE(plain.out.find("-> " + child + ": ipv4"), std::string::npos) << plain.out;
            // Live counters untouched at both levels.
            EXPECT_EQ(tcd_json(parent, "stats")["total"]["packets"], 0);
            EXPECT_EQ(tcd_json(child, "stats")["total"]["packets"], 0);
        }
}

// A parent wired by hand with bpftool has no link record: only `status
// --scan` finds it (and says so); wiring it again with map set records it,
// and then every command sees it (docs/datapath.md, "Instance trees").
TEST(Tree, WiredByHandIsFoundByStatusScan) {
    TCD_REQUIRE_KERNEL();
    REQUIRE_BPFTOOL();
    Dirs d;
    std::string root = d.add("root"), web = d.add("web");
    ASSERT_NO_FATAL_FAILURE(load_root_and_web(root, web));
    Cmd hand = sh("bpftool map update pinned " + root + "/maps/jt key 6 0 0 0 value pinned " + web + "/xdp_dispatch");
    ASSERT_EQ(hand.rc, 0) << hand.err;

    auto has_problem = [](const json& st, const std::string& what) {
        for (const auto& p : st["problems"])
            if (p.get<std::string>().find(what) != std::string::npos) return true;
        return false;
    };
    // Not seen without the scan.
    EXPECT_TRUE(tcd_json(web, "status")["parents"].empty());
    EXPECT_TRUE(tcd_json(root, "status")["children"].empty());
    // Found by it, and named as a link without a record, on both sides.
    json ws = tcd_json(web, "status --scan");
    ASSERT_EQ(ws["parents"].size(), 1u) << ws.dump();
    EXPECT_EQ(ws["parents"][0]["instance"], root);
    EXPECT_EQ(ws["parents"][0]["key"], 6);
    EXPECT_TRUE(has_problem(ws, "without tcd's record")) << ws.dump();
    json rs = tcd_json(root, "status --scan");
    ASSERT_EQ(rs["children"].size(), 1u) << rs.dump();
    EXPECT_EQ(rs["children"][0]["instance"], web);
    EXPECT_TRUE(has_problem(rs, "without tcd's record")) << rs.dump();

    // map set of the same wiring records it: seen without the scan, and
    // the child's unload is refused again.
    ASSERT_EQ(tcd(root, "map set tcp " + web).rc, 0);
    json again = tcd_json(web, "status");
    ASSERT_EQ(again["parents"].size(), 1u) << again.dump();
    EXPECT_EQ(again["parents"][0]["instance"], root);
    EXPECT_FALSE(has_problem(tcd_json(web, "status --scan"), "without tcd's record"));
    Cmd un = tcd(web, "unload");
    EXPECT_NE(un.rc, 0);
    EXPECT_NE(un.err.find(root), std::string::npos) << un.err;
}

// Killed after writing the parent's link record, and after the child's,
// before the key: not wired, the records (stale) are ignored, and map set
// run again wires and records the link.
TEST(Tree, KilledWhileRecordingALink) {
    TCD_REQUIRE_KERNEL();
    for (int n : {1, 2}) {
        Dirs d;
        std::string root = d.add("rroot"), web = d.add("rweb");
        ASSERT_EQ(tcd(root, "load").rc, 0);
        ASSERT_EQ(tcd(web, "load --key port").rc, 0);
        Cmd k = sh("TCD_CRASHPOINT=record:" + std::to_string(n) + " " + TCD_BIN + " -d " + root + " map set tcp " + web);
        EXPECT_NE(k.rc, 0) << "crash point record:" << n << " was not reached";
        EXPECT_FALSE(key_row(tcd_json(root, "map list"), 6)) << "killed before the update, yet wired";
        EXPECT_TRUE(tcd_json(web, "status")["parents"].empty());
        EXPECT_TRUE(tcd_json(root, "status")["children"].empty());
        ASSERT_EQ(tcd(root, "map set tcp " + web).rc, 0);
        json ws = tcd_json(web, "status");
        ASSERT_EQ(ws["parents"].size(), 1u) << ws.dump();
        EXPECT_EQ(ws["parents"][0]["instance"], root);
        EXPECT_EQ(tcd(web, "unload").rc, 1);  // wired: refused
    }
}

// A record whose link is gone (the parent's key unwired by hand, as a kill
// between the unwiring and the record's removal leaves it) is ignored, and
// the next map set on the parent removes it.
TEST(Tree, StaleLinkRecordIsIgnoredAndPruned) {
    TCD_REQUIRE_KERNEL();
    REQUIRE_BPFTOOL();
    Dirs d;
    std::string root = d.add("root"), web = d.add("web");
    ASSERT_NO_FATAL_FAILURE(load_root_and_web(root, web));
    ASSERT_EQ(tcd(root, "map set tcp " + web).rc, 0);
    EXPECT_NE(sh("ls " + root + "/tree").out.find("down-6-"), std::string::npos);
    EXPECT_NE(sh("ls " + web + "/tree").out.find("up-6-"), std::string::npos);
    Cmd hand = sh("bpftool map delete pinned " + root + "/maps/jt key 6 0 0 0");
    ASSERT_EQ(hand.rc, 0) << hand.err;
    EXPECT_TRUE(tcd_json(web, "status")["parents"].empty());
    EXPECT_TRUE(tcd_json(root, "status")["children"].empty());
    EXPECT_EQ(tcd(web, "unload").rc, 0);  // no parent: not refused
    ASSERT_EQ(tcd(root, "map set udp pass").rc, 0);
    EXPECT_EQ(sh("ls " + root + "/tree 2>/dev/null").out.find("down-"), std::string::npos);
}

}  // namespace
