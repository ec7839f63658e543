// Kernels with both tcx and freplace (6.6 on without lockdown: Debian 13's
// 6.12 in scripts/vm-test.sh's guest), where tc instances join tcx chains
// while XDP goes through libxdp (issue 19). On one interface (vb in B):
// four tcd tc instances on tcx links around another agent's tcx program
// (first, before it, after it, last), tcd's XDP instance inside libxdp's
// dispatcher beside xdp-loader's program where the installed libxdp can take
// tcd's entry, and where it cannot (Debian 12's libxdp 1.3.1 on 6.12): tcd's
// attach refused with xdp-loader's program left running, then tcd alone
// with xdp-loader refused in turn and tcd left running. Every program counts
// every datagram; load --force, detach and unload of each leave the others
// running and counting. Namespaces, links, xdp-loader's programs and pins
// are the test's own and go away also on failure.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/probe.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/no_tcx.h"
#include "tests/common/shell.h"
#include "tests/e2e/neighbours.h"
#include "tests/e2e/pair.h"

namespace {

using nlohmann::json;
using tcdtest::Cmd;
using tcdtest::Neighbour;
using tcdtest::packets;
using tcdtest::Pair;
using tcdtest::sh;
using tcdtest::XdpLoader;

const std::string kTo = "10.202.0.2";

// The tc instances' pin dirs, unloaded when the test ends (before the pair
// goes: declared after it).
struct TcDirs {
    std::vector<std::string> dirs;
    ~TcDirs() {
        for (const auto& d : dirs) sh(std::string(TCD_BIN) + " -q -d " + d + " unload --force");
    }
};

json status_of(const Pair& p, const std::string& dir) { return p.tcd_json(dir, "status"); }

TEST(Combination, TcxChainAndLibxdpBesideOtherAgents) {
    REQUIRE_TCX();
    TCD_REQUIRE_KERNEL();
    auto fr = tcd::probe::has(tcd::probe::Feature::freplace);
    ASSERT_TRUE(fr) << fr.error().message();
    if (!*fr)
        GTEST_SKIP() << "freplace refused (" << tcd::probe::freplace_refusal()
                     << "): no libxdp dispatcher can run here; scripts/vm-test.sh runs this in the 6.12 guest";
    auto entry = tcd::probe::has(tcd::probe::Feature::libxdp_entry);
    ASSERT_TRUE(entry) << entry.error().message();
    PAIR(p);
    NEIGHBOUR(nb, p);
    XdpLoader xl(p);
    tcdtest::LockFiles locks;
    TcDirs tc;
    const std::string id = std::to_string(getpid());
    std::map<std::string, std::string> dir;  // role -> pin dir
    for (const char* role : {"first", "before", "after", "last"}) {
        dir[role] = locks.add("/sys/fs/bpf/tcdc" + id + "_" + role);
        tc.dirs.push_back(dir[role]);
        sh(std::string(TCD_BIN) + " -q -d " + dir[role] + " unload --force");
        ASSERT_EQ(p.tcd(dir[role], "load --hook tc").rc, 0) << role;
    }
    const std::string x = p.dir1();  // the XDP instance
    const std::string on = "attach vb --netns " + p.b();

    // The tc chain: the agent first (it came first), then tcd around it.
    ASSERT_TRUE(nb.tcx("nb_count"));
    for (auto [role, order] : {std::pair{"last", "last"}, {"first", "first"}, {"before", "before:nb_count"},
                               {"after", "after:nb_count"}}) {
        Cmd a = p.tcd(dir[role], on + " --direction ingress --order " + order);
        ASSERT_EQ(a.rc, 0) << role << ": " << a.err;
    }
    for (auto [role, pos] : {std::pair{"first", 1}, {"before", 2}, {"after", 4}, {"last", 5}}) {
        json at = status_of(p, dir[role])["attached"];
        ASSERT_EQ(at.size(), 1u) << role;
        EXPECT_EQ(at[0]["mode"], "tcx") << role;
        EXPECT_EQ(at[0]["position"], pos) << role;
        EXPECT_EQ(at[0]["chain"], 5) << role;
    }

    // XDP: xdp-loader's program in libxdp's dispatcher first.
    Cmd l = xl.load("xnb_count", 10);
    ASSERT_EQ(l.rc, 0) << l.err;
    {
        Cmd c = p.tcd(x, "load");
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    Cmd ax = p.tcd(x, on);
    bool joined = *entry;
    if (joined) {
        ASSERT_EQ(ax.rc, 0) << ax.err;
        json at = status_of(p, x)["attached"];
        ASSERT_EQ(at.size(), 1u);
        EXPECT_EQ(at[0]["multiprog"], true);
        EXPECT_EQ(at[0]["others"][0]["name"], "xnb_count");
    } else {
        EXPECT_EQ(ax.rc, 1) << ax.out;
        EXPECT_NE(ax.err.find("tcd's entry cannot join libxdp's dispatcher there (running xnb_count): " +
                              tcd::probe::libxdp_entry_refusal()),
                  std::string::npos)
            << ax.err;
        EXPECT_TRUE(status_of(p, x)["attached"].empty());
    }

    // Every program counts every datagram. expect[who] is what each has
    // seen so far; "nb" is the tc agent, "xnb" xdp-loader's program.
    std::map<std::string, long> expect;
    auto running = [&](const std::string& who) { expect.try_emplace(who, 0); };
    for (const char* role : {"first", "before", "after", "last"}) running(role);
    running("nb");
    running("xnb");
    if (joined) running("x");
    std::vector<std::string> live = {"first", "before", "after", "last", "nb", "xnb"};
    if (joined) live.push_back("x");
    auto seen = [&](const std::string& who) -> long {
        if (who == "nb") return static_cast<long>(nb.seen(0));
        if (who == "xnb") return xl.seen("xnb_count", 0);
        const std::string& d = who == "x" ? x : dir[who];
        return static_cast<long>(packets(p.tcd_json(d, "stats"), 17));
    };
    int port = 7501;
    auto round = [&](const std::string& step) {
        SCOPED_TRACE(step);
        const int n = 10;
        EXPECT_EQ(p.udp(kTo, port++, n), n);
        for (const auto& who : live) expect[who] += n;
        for (const auto& [who, want] : expect) EXPECT_EQ(seen(who), want) << who << " after " << step;
    };
    auto stop = [&](const std::string& who) { std::erase(live, who); };
    round(joined ? "tcd's XDP instance joined xdp-loader's dispatcher" : "tcd's XDP attach refused");

    if (!joined) {
        // The hook empty: tcd alone, saying why; xdp-loader is refused and
        // tcd keeps running.
        ASSERT_EQ(sh(p.in_ns(p.b(), "xdp-loader unload vb --all")).rc, 0);
        stop("xnb");
        expect["xnb"] = -1;  // no longer runs (seen() says -1)
        Cmd alone = p.tcd(x, on);
        ASSERT_EQ(alone.rc, 0) << alone.err;
        EXPECT_NE(alone.out.find("single program (no libxdp dispatcher): " + tcd::probe::libxdp_entry_refusal()),
                  std::string::npos)
            << alone.out;
        EXPECT_NE(xl.load("xnb_count", 10).rc, 0) << "xdp-loader replaced or joined tcd's lone program";
        running("x");
        live.push_back("x");
        round("tcd's XDP instance alone, xdp-loader refused");
    }

    // Each change leaves the others running.
    {
        Cmd c = p.tcd(dir["before"], "load --force --hook tc");
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    EXPECT_EQ(status_of(p, dir["before"])["attached"][0]["position"], 2);
    round("load --force of the tc instance before the agent");
    {
        Cmd c = p.tcd(x, "load --force");
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    round("load --force of the XDP instance");
    {
        Cmd c = p.tcd(dir["after"], "detach vb --netns " + p.b());
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    stop("after");
    round("detach of the tc instance after the agent");
    {
        Cmd c = p.tcd(dir["first"], "unload");
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    stop("first");
    expect.erase("first");  // its counters went with it
    round("unload of the first tc instance");
    {
        Cmd c = p.tcd(x, "detach vb --netns " + p.b());
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    stop("x");
    round("detach of the XDP instance");
    if (joined) {
        EXPECT_GE(xl.seen("xnb_count", 0), 0) << "xdp-loader's program went with tcd's entry";
        ASSERT_EQ(sh(p.in_ns(p.b(), "xdp-loader unload vb --all")).rc, 0);
        stop("xnb");
        expect["xnb"] = -1;
    }
    {
        Cmd c = p.tcd(dir["last"], "unload");
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    stop("last");
    expect.erase("last");
    {
        Cmd c = p.tcd(dir["before"], "unload");
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    stop("before");
    expect.erase("before");
    round("every tcd tc instance gone: the agent still counts");
    EXPECT_TRUE(status_of(p, x)["attached"].empty());
}

}  // namespace
