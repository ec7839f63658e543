// End to end for XDP instances beside other XDP programs (issue 12): tcd's
// entry shim inside libxdp's multi-program dispatcher, next to a program
// xdp-loader put there (tests/bpf/xdp_neighbour.bpf.c). Both count; a drop
// wiring drops inside the chain; --priority decides who sees a frame first;
// detach and unload leave xdp-loader's program; load --force under traffic
// loses nothing. These need freplace, which lockdown refuses (the host): they
// skip there with the kernel's answer, and scripts/vm-test.sh runs them in
// the 6.1 guest. Where freplace is refused, tcd attaches alone and says why
// (MultiprogE2E.AloneSaysWhy, on every kernel). Where libxdp's dispatcher
// cannot take tcd's entry (the 6.12 and 5.10 guests with Debian 12's libxdp
// 1.3.1; TCD_TEST_NO_LIBXDP_ENTRY=1 makes the 6.1 guest behave so), tcd
// attaches alone on an empty hook and refuses, changing nothing, beside
// another program in libxdp's dispatcher (MultiprogE2E.EntryRefused*); the
// tests that share a dispatcher skip there, naming the cause. Namespaces,
// pins and xdp-loader's programs are the test's own and go away also on
// failure.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <xdp/libxdp.h>

#include <chrono>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/fd.h"
#include "core/netns.h"
#include "core/probe.h"
#include "core/progs.h"
#include "tests/common/kernel.h"
#include "tests/common/shell.h"
#include "tests/e2e/neighbours.h"
#include "tests/e2e/pair.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::packets;
using tcdtest::Pair;
using tcdtest::XdpLoader;
using tcdtest::sh;

const std::string kTo = "10.202.0.2";

// freplace refused (lockdown): nothing of libxdp's dispatcher can run here.
#define REQUIRE_FREPLACE()                                                                              \
    do {                                                                                                \
        TCD_REQUIRE_KERNEL();                                                                           \
        auto fr_ = ::tcd::probe::has(::tcd::probe::Feature::freplace);                                  \
        if (fr_ && !*fr_)                                                                               \
            GTEST_SKIP() << "freplace refused (" << ::tcd::probe::freplace_refusal()                    \
                         << "): libxdp's dispatcher cannot run here; scripts/vm-test.sh runs this in a " \
                            "guest without lockdown";                                                   \
        ASSERT_TRUE(fr_) << fr_.error().message();                                                      \
    } while (0)

// freplace works, and libxdp's dispatcher takes tcd's entry on this kernel.
#define REQUIRE_SHARED_DISPATCHER()                                                                        \
    do {                                                                                                  \
        REQUIRE_FREPLACE();                                                                               \
        auto e_ = ::tcd::probe::has(::tcd::probe::Feature::libxdp_entry);                                 \
        ASSERT_TRUE(e_) << e_.error().message();                                                          \
        if (!*e_)                                                                                         \
            GTEST_SKIP() << "libxdp's dispatcher cannot take tcd's entry here ("                          \
                         << ::tcd::probe::libxdp_entry_refusal() << "): MultiprogE2E.EntryRefused* test " \
                            "what tcd does instead";                                                      \
    } while (0)

json attached(const Pair& p, const std::string& dir) {
    json st = p.tcd_json(dir, "status");
    return st.is_object() ? st["attached"] : json::array();
}

std::string attach_cmd(const Pair& p, const std::string& more = "") {
    return "attach vb --netns " + p.b() + (more.empty() ? "" : " " + more);
}

// xdp-loader's program and tcd share one libxdp dispatcher and both count;
// detach and unload take out tcd's entry only.
TEST(MultiprogE2E, SharesDispatcherWithXdpLoader) {
    REQUIRE_SHARED_DISPATCHER();
    PAIR(p);
    XdpLoader xl(p);
    Cmd l = xl.load("xnb_count", 10);
    ASSERT_EQ(l.rc, 0) << l.err;
    Cmd a = p.tcd(p.dir1(), attach_cmd(p));
    ASSERT_EQ(a.rc, 0) << a.err;
    EXPECT_NE(a.out.find("libxdp multi-prog dispatcher, priority 50, 2 of 2"), std::string::npos) << a.out;
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["multiprog"], true);
    EXPECT_EQ(at[0]["priority"], 50);
    EXPECT_EQ(at[0]["position"], 2);
    EXPECT_EQ(at[0]["chain"], 2);
    EXPECT_EQ(at[0]["chain_call"], json::array({"pass"}));
    ASSERT_EQ(at[0]["others"].size(), 1u);
    EXPECT_EQ(at[0]["others"][0]["name"], "xnb_count");
    EXPECT_EQ(at[0]["others"][0]["priority"], 10);
    EXPECT_EQ(at[0]["others"][0]["chain_call"], json::array({"pass"}));
    EXPECT_GT(at[0]["entry_id"].get<uint32_t>(), 0u);
    EXPECT_NE(p.tcd(p.dir1(), "status").out.find("beside: xnb_count"), std::string::npos);
    // The pins keep the seed layout; the entry's prog array is one more map.
    EXPECT_EQ(sh("test -e " + p.dir1() + "/xdp_dispatch -a -e " + p.dir1() + "/maps/mp_entry").rc, 0);

    EXPECT_EQ(p.udp(kTo, 7401, 20), 20);
    EXPECT_EQ(xl.seen("xnb_count", 0), 20);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);

    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    EXPECT_TRUE(attached(p, p.dir1()).empty());
    EXPECT_EQ(p.udp(kTo, 7401, 10), 10);
    EXPECT_EQ(xl.seen("xnb_count", 0), 30) << "detach left xdp-loader's program in place";
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);

    ASSERT_EQ(p.tcd(p.dir1(), attach_cmd(p)).rc, 0);
    // Asked for another priority than it has: refused, nothing changes.
    Cmd moved = p.tcd(p.dir1(), attach_cmd(p, "--priority 5"));
    EXPECT_EQ(moved.rc, 1);
    EXPECT_NE(moved.err.find("already attached at libxdp run priority 50"), std::string::npos) << moved.err;
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7401, 10), 10);
    EXPECT_EQ(xl.seen("xnb_count", 0), 40) << "unload left xdp-loader's program in place";
}

// A drop wiring drops inside the chain: with tcd first, the program after it
// never sees the UDP it dropped.
TEST(MultiprogE2E, DropWiringDropsInsideTheChain) {
    REQUIRE_SHARED_DISPATCHER();
    PAIR(p);
    XdpLoader xl(p);
    ASSERT_EQ(xl.load("xnb_count", 60).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), attach_cmd(p, "--priority 40")).rc, 0);
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["position"], 1);
    EXPECT_EQ(p.udp(kTo, 7402, 10), 10);
    EXPECT_EQ(xl.seen("xnb_count", 0), 10);  // tcd's miss: XDP_PASS, chained on
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp drop").rc, 0);
    EXPECT_EQ(p.udp(kTo, 7402, 20), 0);
    EXPECT_EQ(xl.seen("xnb_count", 0), 10) << "a frame tcd dropped went on to the next program";
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 30u);
}

// --priority decides who sees a frame first: behind a program that drops UDP
// tcd sees none; in front of it, tcd counts every datagram.
TEST(MultiprogE2E, PriorityDecidesWhoSeesFirst) {
    REQUIRE_SHARED_DISPATCHER();
    PAIR(p);
    XdpLoader xl(p);
    ASSERT_EQ(xl.load("xnb_drop_udp", 50).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), attach_cmd(p, "--priority 60")).rc, 0);
    EXPECT_EQ(p.udp(kTo, 7403, 20), 0);
    EXPECT_EQ(xl.seen("xnb_drop_udp", 1), 20);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 0u);
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), attach_cmd(p, "--priority 40")).rc, 0);
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["priority"], 40);
    EXPECT_EQ(at[0]["position"], 1);
    EXPECT_EQ(p.udp(kTo, 7403, 20), 0);
    EXPECT_EQ(xl.seen("xnb_drop_udp", 1), 40);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
}

// On an empty hook tcd makes libxdp's dispatcher itself; two tcd instances
// share it (each finds its own entry by its mp_entry map); the last detach
// takes the dispatcher away.
TEST(MultiprogE2E, MakesDispatcherAndSharesIt) {
    REQUIRE_SHARED_DISPATCHER();
    PAIR(p);
    ASSERT_EQ(p.tcd(p.dir1(), attach_cmd(p, "--priority 10")).rc, 0);
    ASSERT_EQ(p.tcd(p.dir2(), attach_cmd(p, "--priority 20")).rc, 0);
    json a1 = attached(p, p.dir1()), a2 = attached(p, p.dir2());
    ASSERT_EQ(a1.size(), 1u);
    ASSERT_EQ(a2.size(), 1u);
    EXPECT_EQ(a1[0]["position"], 1);
    EXPECT_EQ(a2[0]["position"], 2);
    EXPECT_EQ(a1[0]["others"][0]["name"], "tcd_entry");
    EXPECT_EQ(p.udp(kTo, 7404, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 10u);
    EXPECT_EQ(packets(p.tcd_json(p.dir2(), "stats"), 17), 10u);  // the first's miss passed, chained on
    ASSERT_EQ(p.tcd(p.dir1(), "detach vb --netns " + p.b()).rc, 0);
    a2 = attached(p, p.dir2());
    ASSERT_EQ(a2.size(), 1u);
    EXPECT_EQ(a2[0]["position"], 1);
    EXPECT_EQ(a2[0]["chain"], 1);
    ASSERT_EQ(p.tcd(p.dir2(), "unload").rc, 0);
    Cmd q = sh(p.in_ns(p.b(), "ip -d link show vb"));
    EXPECT_EQ(q.out.find("prog/xdp"), std::string::npos) << "the dispatcher stayed after the last program left:\n"
                                                          << q.out;
}

// load --force in multiprog mode is one update of the entry's slot: a UDP
// stream through it loses nothing, wiring and counters stay.
TEST(MultiprogE2E, LoadForceUnderTrafficLosesNothing) {
    REQUIRE_SHARED_DISPATCHER();
    PAIR(p);
    XdpLoader xl(p);
    ASSERT_EQ(xl.load("xnb_count", 10).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), attach_cmd(p)).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp udp_handler").rc, 0);
    // Four reloads while a stream runs (it lasts as long as they do).
    int reloads = 0;
    auto r = tcdtest::udp_stream_around(p.a(), p.b(), kTo, 7405, 500, [&] {
        for (const char* miss : {"drop", "pass", "drop", "pass"})
            reloads += sh(std::string(TCD_BIN) + " -q -d " + p.dir1() + " load --force --miss-action " + miss).rc == 0;
    });
    EXPECT_EQ(reloads, 4);
    const int kCount = r.sent;
    json st = tcdtest::expect_reloads_kept_the_stream(p, r);
    ASSERT_EQ(st["attached"].size(), 1u);
    EXPECT_EQ(st["attached"][0]["multiprog"], true);
    EXPECT_EQ(xl.seen("xnb_count", 0), kCount);
}

// An instance an older tcd loaded (its XDP programs with expected attach
// type BPF_XDP; TCD_TEST_OLD_XDP_ATTACH=1 loads one that way) cannot go
// into libxdp's dispatcher where the kernel has the prog-array attach-type
// check: attach says why and what to do, and changes nothing (xdp-loader's
// program keeps its dispatcher to itself and keeps counting). load --force
// keeps the jump table's traits, so it is still refused; unload and load
// again is the way out, and then it joins.
TEST(MultiprogE2E, OlderInstanceIsRefusedAndChangesNothing) {
    REQUIRE_SHARED_DISPATCHER();
    auto check = tcd::probe::has(tcd::probe::Feature::prog_array_attach_check);
    ASSERT_TRUE(check) << check.error().message();
    if (!*check) GTEST_SKIP() << "no prog-array attach-type check here: an older instance goes in as it is";
    PAIR(p);
    XdpLoader xl(p);
    ASSERT_EQ(xl.load("xnb_count", 10).rc, 0);
    Cmd l = sh("TCD_TEST_OLD_XDP_ATTACH=1 " + std::string(TCD_BIN) + " -d " + p.dir1() + " load");
    ASSERT_EQ(l.rc, 0) << l.err;
    ASSERT_EQ(p.tcd(p.dir1(), "map set udp udp_handler").rc, 0);
    for (const char* step : {"as loaded", "after load --force"}) {
        SCOPED_TRACE(step);
        Cmd a = p.tcd(p.dir1(), attach_cmd(p));
        EXPECT_EQ(a.rc, 1) << a.out;
        EXPECT_NE(a.err.find("expected attach type BPF_XDP (loaded by an older tcd)"), std::string::npos) << a.err;
        EXPECT_NE(a.err.find("'tcd unload' and 'tcd load' again, or attach with --alone"), std::string::npos)
            << a.err;
        json st = p.tcd_json(p.dir1(), "status");
        EXPECT_TRUE(st["attached"].empty()) << st.dump();
        EXPECT_TRUE(st["problems"].empty()) << st.dump();
        ASSERT_EQ(p.tcd(p.dir1(), "load --force").rc, 0);
    }
    EXPECT_EQ(p.udp(kTo, 7407, 10), 10);
    EXPECT_EQ(xl.seen("xnb_count", 0), 10) << "xdp-loader's program stopped counting";
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 0u);
    ASSERT_EQ(p.tcd(p.dir1(), "unload").rc, 0);
    Cmd j = p.tcd(p.dir1(), attach_cmd(p));
    ASSERT_EQ(j.rc, 0) << j.err;
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["multiprog"], true);
    EXPECT_EQ(p.udp(kTo, 7407, 10), 10);
    EXPECT_EQ(xl.seen("xnb_count", 0), 20);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 10u);
}

// Where tcd attaches alone it says why: the kernel's refusal of freplace
// (lockdown, the host), or --alone where freplace works (the guests).
TEST(MultiprogE2E, AloneSaysWhy) {
    PAIR(p);
    auto fr = tcd::probe::has(tcd::probe::Feature::freplace);
    ASSERT_TRUE(fr) << fr.error().message();
    Cmd a = p.tcd(p.dir1(), attach_cmd(p, *fr ? "--alone" : ""));
    ASSERT_EQ(a.rc, 0) << a.err;
    const std::string why = *fr ? "--alone asked for it" : "the kernel refused a freplace program";
    EXPECT_NE(a.out.find("single program (no libxdp dispatcher): " + why), std::string::npos) << a.out;
    json at = attached(p, p.dir1());
    ASSERT_EQ(at.size(), 1u);
    EXPECT_EQ(at[0]["multiprog"], false);
    auto entry = tcd::probe::has(tcd::probe::Feature::libxdp_entry);
    ASSERT_TRUE(entry) << entry.error().message();
    if (*fr && *entry) {
        EXPECT_TRUE(at[0]["alone_reason"].is_null()) << at.dump();  // status cannot know --alone was asked
    } else if (*fr) {
        // status gives the reason tcd would have had without --alone
        ASSERT_TRUE(at[0]["alone_reason"].is_string()) << at.dump();
        EXPECT_EQ(at[0]["alone_reason"], tcd::probe::libxdp_entry_refusal()) << at.dump();
    } else {
        ASSERT_TRUE(at[0]["alone_reason"].is_string()) << at.dump();
        EXPECT_NE(at[0]["alone_reason"].get<std::string>().find("freplace"), std::string::npos) << at.dump();
        EXPECT_NE(p.tcd(p.dir1(), "status").out.find("alone: " + why), std::string::npos);
    }
    EXPECT_EQ(p.udp(kTo, 7406, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 10u);
    // Asking for --alone where it runs alone is the state asked for.
    if (*fr) EXPECT_EQ(p.tcd(p.dir1(), attach_cmd(p, "--alone")).rc, 0);
}

// Where libxdp's dispatcher cannot take tcd's entry (the kernel refuses it
// in place of the installed libxdp's slots), the reason and whether it is
// real here or TCD_TEST_NO_LIBXDP_ENTRY=1 stands in for it (a kernel where
// it can: the 6.1 guest). Skips where freplace itself is refused (the host):
// no libxdp dispatcher can run there at all.
struct EntryRefusal {
    std::string env;  // what to put before tcd's command line
    std::string why;  // the reason tcd gives
};
std::optional<EntryRefusal> entry_refusal() {
    auto e = tcd::probe::has(tcd::probe::Feature::libxdp_entry);
    if (!e) return std::nullopt;
    if (*e) return EntryRefusal{"TCD_TEST_NO_LIBXDP_ENTRY=1 ", "TCD_TEST_NO_LIBXDP_ENTRY=1 is set"};
    return EntryRefusal{"", tcd::probe::libxdp_entry_refusal()};
}

Cmd tcd_env(const Pair& p, const EntryRefusal& r, const std::string& args) {
    return sh(r.env + std::string(TCD_BIN) + " -d " + p.dir1() + " " + args);
}

// Beside xdp-loader's program in libxdp's dispatcher, tcd refuses, names
// the cause (on 6.12: the libxdp release that lifts it) and changes
// nothing: no pin of the entry, no attachment, xdp-loader's program keeps
// counting. With the hook empty, tcd attaches alone and says why, in the
// form of the lockdown fallback; xdp-loader then cannot put its dispatcher
// there, and tcd keeps running.
TEST(MultiprogE2E, EntryRefusedBesideXdpLoaderChangesNothing) {
    REQUIRE_FREPLACE();
    auto r = entry_refusal();
    ASSERT_TRUE(r);
    ASSERT_FALSE(r->why.empty());
    PAIR(p);
    XdpLoader xl(p);
    ASSERT_EQ(xl.load("xnb_count", 10).rc, 0);
    ASSERT_EQ(p.tcd(p.dir1(), "load").rc, 0);
    Cmd a = tcd_env(p, *r, attach_cmd(p));
    EXPECT_EQ(a.rc, 1) << a.out;
    EXPECT_NE(a.err.find("tcd's entry cannot join libxdp's dispatcher there (running xnb_count): " + r->why),
              std::string::npos)
        << a.err;
    EXPECT_NE(a.err.find("(detach those programs first (tcd then attaches alone), or use --force to replace them)"),
              std::string::npos)
        << a.err;
    if (r->env.empty() && r->why.find("changes packet data") != std::string::npos)
        EXPECT_NE(a.err.find("libxdp 1.5.5"), std::string::npos) << a.err;
    json st = p.tcd_json(p.dir1(), "status");
    EXPECT_TRUE(st["attached"].empty()) << st.dump();
    EXPECT_TRUE(st["problems"].empty()) << st.dump();
    EXPECT_NE(sh("test -e " + p.dir1() + "/maps/mp_entry").rc, 0) << "the refused attach left maps/mp_entry";
    EXPECT_EQ(p.udp(kTo, 7408, 10), 10);
    EXPECT_EQ(xl.seen("xnb_count", 0), 10) << "xdp-loader's program stopped counting";
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 0u);

    // The hook empty: alone, saying why.
    ASSERT_EQ(sh(p.in_ns(p.b(), "xdp-loader unload vb --all")).rc, 0);
    Cmd alone = tcd_env(p, *r, attach_cmd(p));
    ASSERT_EQ(alone.rc, 0) << alone.err;
    EXPECT_NE(alone.out.find("single program (no libxdp dispatcher): " + r->why), std::string::npos) << alone.out;
    Cmd js = tcd_env(p, *r, "-j status");
    json at = json::parse(js.out, nullptr, false);
    ASSERT_TRUE(at.is_object()) << js.out << js.err;
    ASSERT_EQ(at["attached"].size(), 1u) << at.dump();
    EXPECT_EQ(at["attached"][0]["multiprog"], false);
    EXPECT_EQ(at["attached"][0]["alone_reason"], r->why) << at.dump();
    EXPECT_EQ(p.udp(kTo, 7408, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 10u);

    // xdp-loader beside tcd's lone program: libxdp does not replace a
    // program it did not put there; tcd's keeps running.
    Cmd l = xl.load("xnb_count", 10);
    EXPECT_NE(l.rc, 0) << "xdp-loader replaced or joined tcd's lone program:\n" << l.out << l.err;
    EXPECT_EQ(p.udp(kTo, 7408, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 20u);
    ASSERT_EQ(tcd_env(p, *r, "detach vb --netns " + p.b()).rc, 0);
    Cmd q = sh(p.in_ns(p.b(), "ip -d link show vb"));
    EXPECT_EQ(q.out.find("prog/xdp"), std::string::npos) << q.out;
}

// --force beside programs in libxdp's dispatcher that tcd cannot join:
// the dispatcher goes, tcd runs alone and says what it replaced.
TEST(MultiprogE2E, EntryRefusedForceReplacesTheDispatcher) {
    REQUIRE_FREPLACE();
    auto r = entry_refusal();
    ASSERT_TRUE(r);
    PAIR(p);
    XdpLoader xl(p);
    ASSERT_EQ(xl.load("xnb_count", 10).rc, 0);
    Cmd a = tcd_env(p, *r, attach_cmd(p, "--force"));
    ASSERT_EQ(a.rc, 0) << a.err;
    EXPECT_NE(a.out.find("single program (no libxdp dispatcher): " + r->why), std::string::npos) << a.out;
    EXPECT_NE(a.out.find("replaced xdp_dispatcher (id "), std::string::npos) << a.out;
    EXPECT_EQ(p.udp(kTo, 7409, 10), 10);
    EXPECT_EQ(packets(p.tcd_json(p.dir1(), "stats"), 17), 10u);
    EXPECT_EQ(xl.seen("xnb_count", 0), -1) << "xdp-loader's program still runs";
}

}  // namespace
