// End to end for tc instances beside other programs (issue 12): on tcx links
// next to another agent's tcx program and clsact filter, in the order asked,
// two tcd instances on one interface and direction, detach and unload that
// take out only tcd, a load --force under traffic, and the clsact fallback
// (forced with the test knob TCD_TEST_NO_TCX, so it runs on this kernel).
// The other agent is tests/bpf/neighbour.bpf.c, attached by the test itself
// (bpf_link_create, bpf_tc_attach); namespaces, links and pins are the
// test's own and go away also when an assertion fails.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <net/if.h>

#include <chrono>
#include <cstring>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "core/attach.h"
#include "core/bpffs.h"
#include "core/fd.h"
#include "tests/common/no_tcx.h"
#include "tests/common/kernel.h"
#include "tests/common/shell.h"
#include "tests/e2e/neighbours.h"
#include "tests/e2e/pair.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::packets;
using tcdtest::Neighbour;
using tcdtest::Pair;
using tcdtest::sh;

constexpr uint32_t kTcxIngress = 46;  // BPF_TCX_INGRESS (Debian 12's headers lack it)

const std::string kTo = "10.202.0.2";

json attached(const Pair& p, const std::string& dir) {
    json st = p.tcd_json(dir, "status");
    return st.is_object() ? st["attached"] : json::array();
}

// A foreign tcx program before tcd (it came first), then tcd first: both
// count every datagram, whichever runs first (tcd's misses go on: next).
// detach and unload take out tcd's link only.
TEST(TcxE2E, ForeignTcxProgramBesideTcd) {
    REQUIRE_TCX();
    PAIR(p);
    NEIGHBOUR(nb, p);
    ASSERT_TRUE(nb.tcx("nb_count"));
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    Cmd a = p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress");
    ASSERT_EQ(a.rc, 0) << a.err;
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["mode"], "tcx");
    EXPECT_EQ(at[0]["position"], 2);  // --order last, the default: after the agent
    EXPECT_EQ(at[0]["chain"], 2);
    EXPECT_EQ(p.udp(kTo, 7301, 20), 20);
    EXPECT_EQ(nb.seen(0), 20u);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);

    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    EXPECT_TRUE(attached(p, p.dir1()).empty());
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress --order first").rc, 0);
    at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["position"], 1);
    EXPECT_EQ(p.udp(kTo, 7301, 20), 20);
    EXPECT_EQ(nb.seen(0), 40u);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 40u);
    // Asked for another place than it holds: refused, nothing changes.
    Cmd moved = p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress --order last");
    EXPECT_EQ(moved.rc, 1);
    EXPECT_NE(moved.err.find("already attached at place 1 of 2"), std::string::npos) << moved.err;

    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    EXPECT_EQ(p.udp(kTo, 7301, 10), 10);
    EXPECT_EQ(nb.seen(0), 50u) << "detach left the agent's program in place";
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7301, 10), 10);
    EXPECT_EQ(nb.seen(0), 60u) << "unload left the agent's program in place";
}

// A foreign clsact filter: tcd's tcx link runs before tc's classic filters,
// and its misses reach them (miss action next, the default on tc).
TEST(TcxE2E, ForeignClsactFilterBesideTcd) {
    REQUIRE_TCX();
    PAIR(p);
    NEIGHBOUR(nb, p);
    ASSERT_TRUE(nb.clsact("nb_count"));
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7302, 20), 20);
    EXPECT_EQ(nb.seen(0), 20u);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    // A wired handler that passes (TC_ACT_OK) ends the chain: the filter no longer sees UDP.
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp pass").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7302, 10), 10);
    EXPECT_EQ(nb.seen(0), 20u);
    ASSERT_EQ(p.tcd(p.dir1(), "map del udp").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    EXPECT_EQ(p.udp(kTo, 7302, 10), 10);
    EXPECT_EQ(nb.seen(0), 30u);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    EXPECT_TRUE(p.clsact_on_vb()) << "the agent's qdisc is not tcd's to remove";
    EXPECT_EQ(p.udp(kTo, 7302, 10), 10);
    EXPECT_EQ(nb.seen(0), 40u);
}

// --order decides who sees a datagram first: with an agent that drops UDP,
// tcd first counts the UDP (and hands it on: next), tcd last never sees it.
TEST(TcxE2E, OrderDecidesWhoSeesFirst) {
    REQUIRE_TCX();
    PAIR(p);
    NEIGHBOUR(nb, p);
    ASSERT_TRUE(nb.tcx("nb_drop_udp"));
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress --order last").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7303, 20), 0);
    EXPECT_EQ(nb.seen(1), 20u);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 0u);
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress --order first").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7303, 20), 0);
    EXPECT_EQ(nb.seen(1), 40u);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
}

// --order before:PROG / after:PROG put tcd right next to a named program of
// the chain (by name or id): before the agent's nb_drop_udp tcd counts the
// UDP it drops, after it tcd never sees it. The chain is [nb_count,
// nb_drop_udp] first. An unknown or ambiguous PROG is refused before
// anything changes (the attach that would have loaded the instance leaves
// nothing loaded).
TEST(TcxE2E, OrderRelativeToANamedProgram) {
    REQUIRE_TCX();
    PAIR(p);
    NEIGHBOUR(nb, p);
    ASSERT_TRUE(nb.tcx("nb_count"));
    ASSERT_TRUE(nb.tcx("nb_drop_udp"));
    const std::string at = "attach vb --netns " + p.b() + " --direction ingress --order ";

    Cmd unknown = p.tcd(p.dir1(), at + "before:nb_nosuch");
    EXPECT_EQ(unknown.rc, 1);
    EXPECT_NE(unknown.err.find("no program named nb_nosuch runs in the tcx chain of vb ingress"), std::string::npos)
        << unknown.err;
    // The hint names what runs there (Debian 12's bpftool net show lists no tcx programs).
    EXPECT_TRUE(std::regex_search(unknown.err, std::regex(R"(it holds, first to last: nb_count \(id \d+\), nb_drop_udp \(id \d+\))")))
        << unknown.err;
    EXPECT_FALSE(tcd::bpffs::exists(p.dir1())) << "the refused attach left its load behind";
    Cmd bad_id = p.tcd(p.dir1(), at + "after:4294967295");
    EXPECT_EQ(bad_id.rc, 1);
    EXPECT_NE(bad_id.err.find("no program with id 4294967295"), std::string::npos) << bad_id.err;
    Cmd empty = p.tcd(p.dir1(), at + "before:");
    EXPECT_EQ(empty.rc, 2) << empty.err;

    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    Cmd before = p.tcd(p.dir1(), at + "before:nb_drop_udp");
    ASSERT_EQ(before.rc, 0) << before.err;
    json a = attached(p, p.dir1());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["position"], 2);
    EXPECT_EQ(a[0]["chain"], 3);
    EXPECT_EQ(p.udp(kTo, 7307, 20), 0);  // nb_drop_udp drops them, after tcd saw them
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    EXPECT_EQ(nb.seen(0), 20u);
    EXPECT_EQ(nb.seen(1), 20u);
    // The state asked for holds: nothing to do. Another place: refused.
    EXPECT_EQ(p.tcd(p.dir1(), at + "before:" + std::to_string(nb.id("nb_drop_udp"))).rc, 0);
    EXPECT_EQ(p.tcd(p.dir1(), at + "after:nb_count").rc, 0);  // the same place, said the other way
    Cmd moved = p.tcd(p.dir1(), at + "after:nb_drop_udp");
    EXPECT_EQ(moved.rc, 1);
    EXPECT_NE(moved.err.find("already attached at place 2 of 3"), std::string::npos) << moved.err;
    Cmd self = p.tcd(p.dir1(), at + "before:tc_dispatch");
    EXPECT_EQ(self.rc, 1);
    EXPECT_NE(self.err.find("own dispatcher"), std::string::npos) << self.err;

    // After nb_drop_udp, by its id: last in the chain, tcd sees no UDP.
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    Cmd after = p.tcd(p.dir1(), at + "after:" + std::to_string(nb.id("nb_drop_udp")));
    ASSERT_EQ(after.rc, 0) << after.err;
    a = attached(p, p.dir1());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["position"], 3);
    EXPECT_EQ(p.udp(kTo, 7307, 20), 0);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);  // none more
    EXPECT_EQ(nb.seen(1), 40u);

    // Two programs named nb_count in the chain: the name is ambiguous, an id is not.
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    Neighbour other(p);
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE(other.tcx("nb_count"));
    Cmd two = p.tcd(p.dir1(), at + "after:nb_count");
    EXPECT_EQ(two.rc, 1);
    EXPECT_NE(two.err.find("2 programs named nb_count run in the tcx chain of vb ingress"), std::string::npos)
        << two.err;
    EXPECT_TRUE(attached(p, p.dir1()).empty());
    Cmd by_id = p.tcd(p.dir1(), at + "after:" + std::to_string(nb.id("nb_count")));
    ASSERT_EQ(by_id.rc, 0) << by_id.err;
    a = attached(p, p.dir1());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["position"], 2);  // [nb_count, tcd, nb_drop_udp, nb_count]
    EXPECT_EQ(a[0]["chain"], 4);
}

// tcd's dispatcher attached by another tool, not through tcd's link: a
// bpf_link_create of the pinned tc_dispatch (the link held by the test), and
// a link-less attach as `bpftool net attach tcx_ingress` makes. status finds
// it (mode tcx, tcd_link false) instead of calling it missing; load --force
// swaps it there; detach and unload take it off.
TEST(TcxE2E, DispatcherAttachedByAnotherTool) {
    REQUIRE_TCX();
    PAIR(p);
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    auto in_b = [&] { return tcd::NetnsGuard::enter("/run/netns/" + p.b()); };
    tcd::UniqueFd prog(bpf_obj_get((p.dir1() + "/tc_dispatch").c_str()));
    ASSERT_TRUE(prog) << strerror(errno);
    uint32_t ifindex = 0;
    tcd::UniqueFd link;
    {
        auto g = in_b();
        ASSERT_TRUE(g);
        ifindex = if_nametoindex("vb");
        link.reset(bpf_link_create(prog.get(), ifindex, static_cast<bpf_attach_type>(kTcxIngress), nullptr));
        ASSERT_TRUE(link) << strerror(errno);
    }
    // vb is in another namespace: status looks where tcd recorded an
    // attachment, so the place is recorded first by an attach that finds it.
    Cmd found = p.tcd(p.dir1(), "-j attach vb --netns " + p.b() + " --direction ingress");
    ASSERT_EQ(found.rc, 0) << found.err;
    EXPECT_EQ(json::parse(found.out)["changed"], false) << found.out;  // it runs there already
    json a = attached(p, p.dir1());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["mode"], "tcx");
    EXPECT_EQ(a[0]["tcd_link"], false);
    EXPECT_EQ(a[0]["position"], 1);
    Cmd plain = p.tcd(p.dir1(), "status");
    EXPECT_NE(plain.out.find("tcx, not through tcd's link, 1 of 1 in the chain"), std::string::npos) << plain.out;
    EXPECT_TRUE(p.tcd_json(p.dir1(), "status")["problems"].empty());
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp pass").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7308, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 10u);
    // load --force replaces the program inside that link.
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc --force --miss-action pass").rc, 0);
    a = attached(p, p.dir1());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["tcd_link"], false);
    EXPECT_EQ(p.udp(kTo, 7308, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    // detach takes it off (the link, the test's, is left defunct).
    Cmd d = p.tcd(p.dir1(), "-j detach vb --netns " + p.b());
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_TRUE(attached(p, p.dir1()).empty());
    EXPECT_EQ(p.udp(kTo, 7308, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    link.reset();

    // Without a link (BPF_PROG_ATTACH with a tcx attach type).
    prog.reset(bpf_obj_get((p.dir1() + "/tc_dispatch").c_str()));
    ASSERT_TRUE(prog);
    {
        auto g = in_b();
        ASSERT_TRUE(g);
        ASSERT_EQ(bpf_prog_attach_opts(prog.get(), static_cast<int>(ifindex),
                                       static_cast<bpf_attach_type>(kTcxIngress), nullptr),
                  0)
            << strerror(errno);
    }
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    a = attached(p, p.dir1());
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0]["tcd_link"], false);
    EXPECT_EQ(p.udp(kTo, 7308, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 30u);
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    auto g = in_b();
    ASSERT_TRUE(g);
    uint32_t ids[4] = {}, count = 4;
    LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .prog_cnt = count);
    ASSERT_EQ(bpf_prog_query_opts(static_cast<int>(ifindex), static_cast<bpf_attach_type>(kTcxIngress), &q), 0);
    EXPECT_EQ(q.prog_cnt, 0u) << "unload left the dispatcher in the chain";
}

// Two tcd instances on one interface and direction (tcx only): the first
// one's misses reach the second; what it drops does not.
TEST(TcxE2E, TwoInstancesOnOneDirection) {
    REQUIRE_TCX();
    PAIR(p);
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "load --key port --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    Cmd second = p.tcd(p.dir2(), "attach vb --netns " + p.b() + " --direction ingress");
    ASSERT_EQ(second.rc, 0) << second.err;
    json a1 = attached(p, p.dir1()), a2 = attached(p, p.dir2());
    ASSERT_EQ(a1.size(), 1u);
    ASSERT_EQ(a2.size(), 1u);
    EXPECT_EQ(a1[0]["position"], 1);
    EXPECT_EQ(a2[0]["position"], 2);
    EXPECT_EQ(p.udp(kTo, 7304, 20), 20);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    EXPECT_EQ(packets(p.tcd_json(p.dir2(), "stats --all"), 7304), 0u);  // no slot: counted among other ports
    EXPECT_GE(p.tcd_json(p.dir2(), "stats")["other_ports"]["packets"].get<uint64_t>(), 20u);
    // The first drops UDP now: the second sees none of it.
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp drop").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "map set 7304 pass").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7304, 10), 0);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 30u);
    EXPECT_EQ(packets(p.tcd_json(p.dir2(), "stats"), 7304), 0u);
    // Unloading the first leaves the second attached and counting.
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7304, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir2(), "stats"), 7304), 10u);
    a2 = attached(p, p.dir2());
    ASSERT_EQ(a2.size(), 1u);
    EXPECT_EQ(a2[0]["position"], 1);
}

// load --force swaps the program inside tcd's link (BPF_LINK_UPDATE) while a
// UDP stream crosses it: not one datagram is lost, and the link stays.
TEST(TcxE2E, LoadForceUnderTrafficLosesNothing) {
    REQUIRE_TCX();
    PAIR(p);
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp udp_handler").rc, 0);
    // Four reloads while a stream runs (it lasts as long as they do).
    int reloads = 0;
    auto r = tcdtest::udp_stream_around(p.a(), p.b(), kTo, 7305, 200, [&] {
        for (const char* miss : {"drop", "next", "pass", "next"})
            reloads +=
                sh(std::string(TCD_BIN) + " -q -d " + p.dir1() + " load --hook tc --force --miss-action " + miss).rc ==
                0;
    });
    EXPECT_EQ(reloads, 4);
    json st = tcdtest::expect_reloads_kept_the_stream(p, r);
    ASSERT_EQ(st["attached"].size(), 1u);
    EXPECT_EQ(st["attached"][0]["mode"], "tcx");
}

// The clsact fallback, forced with the test knob: mode tc, one tcd filter
// slot per interface and direction (a second instance is refused), --order
// refused; the agent's clsact filter beside it keeps counting.
TEST(TcxE2E, ClsactFallbackWithoutTcx) {
    tcdtest::NoTcx knob;
    PAIR(p);
    NEIGHBOUR(nb, p);
    ASSERT_EQ(p.tcd(p.dir1(), "load --hook tc").rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), "load --hook tc").rc, 0);
    Cmd ordered = p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress --order first");
    EXPECT_EQ(ordered.rc, 1);
    EXPECT_NE(ordered.err.find("no tcx links"), std::string::npos) << ordered.err;
    ASSERT_EQ(p.tcd(p.dir1(), "attach vb --netns " + p.b() + " --direction ingress").rc, 0);
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["mode"], "tc");
    EXPECT_FALSE(at[0].contains("position"));
    Cmd twice = p.tcd(p.dir2(), "attach vb --netns " + p.b() + " --direction ingress");
    EXPECT_EQ(twice.rc, 1);
    EXPECT_NE(twice.err.find("another program holds tcd's tc filter slot"), std::string::npos) << twice.err;
    // The agent's filter (priority 1) runs before tcd's (0x7cd); tcd counts after it.
    ASSERT_TRUE(nb.clsact("nb_count"));
    EXPECT_EQ(p.udp(kTo, 7306, 20), 20);
    EXPECT_EQ(nb.seen(0), 20u);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7306, 10), 10);
    EXPECT_EQ(nb.seen(0), 30u);
}

// XDP keeps pass as its default and refuses next.
TEST(TcxE2E, MissActionNextIsForTc) {
    PAIR(p);
    Cmd x = p.tcd(p.dir1(), "load --miss-action next");
    EXPECT_EQ(x.rc, 2) << x.err;
    EXPECT_NE(x.err.find("is for tc instances"), std::string::npos) << x.err;
    EXPECT_FALSE(tcd::bpffs::exists(p.dir1()));
    ASSERT_EQ(p.tcd(p.dir1(), "load").rc, 0);
    EXPECT_EQ(p.tcd_json(p.dir1(), "status")["dispatcher"]["miss_action"], "pass");
    ASSERT_EQ(p.tcd(p.dir2(), "load --hook tc").rc, 0);
    EXPECT_EQ(p.tcd_json(p.dir2(), "status")["dispatcher"]["miss_action"], "next");
}

}  // namespace
