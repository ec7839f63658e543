// swap_dispatcher_on: the one function load --force swaps with, forward and
// back (its rollback): XDP in the attachment's own mode (skb here), tc in the
// same filter slot; a swap whose "old" program is not what runs changes nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/attach.h"
#include "core/bpffs.h"
#include "core/instance.h"
#include "core/lifecycle.h"
#include "tests/common/kernel.h"
#include "tests/common/no_tcx.h"
#include "tests/common/shell.h"
#include "tests/common/xdp_hook.h"
#include "tests/common/topology.h"

namespace {

using nlohmann::json;
using namespace tcdtest;

// One namespace "tcdsw<pid>" with the veth pair sw0/sw1, both up.
Topology netns() {
    return Topology({.prefix = "tcdsw", .namespaces = {""}, .veths = {{.a = {"", "sw0"}, .b = {"", "sw1"}}}});
}

struct Loaded {
    std::string dir;
    std::optional<tcd::Instance> in;
    Loaded(const std::string& tag, tcd::Hook hook) : dir("/sys/fs/bpf/" + unique_name(tag)) {
        (void)tcd::unload(dir);
        tcd::LoadOptions o;
        o.kind.hook = hook;
        if (tcd::load(dir, o))
            if (auto i = tcd::Instance::open(dir)) in.emplace(std::move(*i));
    }
    ~Loaded() { (void)tcd::unload(dir); }
};

// What runs at sw0's XDP hook: {prog id, mode} (mode 2 = generic/skb).
std::pair<uint32_t, int> xdp_on(const Topology& net) {
    json j = json::parse(sh("ip -j -n " + net.ns() + " link show sw0").out, nullptr, false);
    if (!j.is_array() || j.empty() || !j[0].contains("xdp")) return {0, 0};
    return {j[0]["xdp"]["prog"].value("id", 0u), j[0]["xdp"].value("mode", 0)};
}

TEST(Swap, XdpForwardAndBackKeepTheMode) {
    TCD_REQUIRE_KERNEL();
    Topology ns = netns();
    ASSERT_TRUE(ns.ok()) << ns.error();
    Loaded a("tcdsw_a", tcd::Hook::xdp), b("tcdsw_b", tcd::Hook::xdp);
    ASSERT_TRUE(a.in && b.in);
    // Alone: tcd's entry shim runs at the hook and the swap is its slot 0
    // (docs/datapath.md, "XDP alone: the entry shim at the hook"): the
    // program at the hook and its mode stay. Moving a dispatcher that ip put
    // at the hook behind the shim is Crash.LoadForceMovingADispatcherAtTheHookKilledAtEveryStep;
    // multiprog mode's swap is MultiprogE2E.LoadForceUnderTrafficLosesNothing.
    auto att = tcd::attach(*a.in, {"sw0", ns.ns(), tcd::AttachMode::skb, false, tcd::Direction::none, std::nullopt,
                                   std::nullopt, true});
    ASSERT_TRUE(att) << att.error().message();
    auto where = tcd::attachments(*a.in);
    ASSERT_EQ(where.size(), 1u);
    EXPECT_EQ(where[0].mode, tcd::AttachMode::skb);
    ASSERT_NE(where[0].entry_id, 0u);
    const auto hook = xdp_on(ns);
    ASSERT_EQ(hook, (std::pair<uint32_t, int>{where[0].entry_id, 2}));
    ASSERT_EQ(xdp_dispatcher_at(ns.ns(), "sw0"), a.in->dispatcher().id);

    auto fwd = tcd::swap_dispatcher_on(where, tcd::Hook::xdp, b.in->dispatcher_fd(), a.in->dispatcher_fd());
    ASSERT_TRUE(fwd) << fwd.error().message();
    EXPECT_EQ(xdp_on(ns), hook);
    EXPECT_EQ(xdp_dispatcher_at(ns.ns(), "sw0"), b.in->dispatcher().id);
    // The rollback: the same call, fds exchanged, on what the forward call returned.
    auto back = tcd::swap_dispatcher_on(*fwd, tcd::Hook::xdp, a.in->dispatcher_fd(), b.in->dispatcher_fd());
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(xdp_on(ns), hook);
    EXPECT_EQ(xdp_dispatcher_at(ns.ns(), "sw0"), a.in->dispatcher().id);

    ASSERT_TRUE(tcd::detach_all(*a.in));
    EXPECT_EQ(xdp_on(ns).first, 0u);
}

TEST(Swap, TcForwardAndBackInTheSameSlot) {
    TCD_REQUIRE_KERNEL();
    tcdtest::NoTcx clsact;  // the clsact filter slot, as on a kernel without tcx
    Topology ns = netns();
    ASSERT_TRUE(ns.ok()) << ns.error();
    Loaded a("tcdsw_tca", tcd::Hook::tc), b("tcdsw_tcb", tcd::Hook::tc);
    ASSERT_TRUE(a.in && b.in);
    auto att = tcd::attach(*a.in, {.ifname = "sw0", .netns = ns.ns(), .direction = tcd::Direction::ingress});
    ASSERT_TRUE(att) << att.error().message();
    auto where = tcd::attachments(*a.in);
    ASSERT_EQ(where.size(), 1u);
    auto filters = [&] { return sh("tc -n " + ns.ns() + " filter show dev sw0 ingress").out; };
    auto has = [&](const Loaded& l) {
        return filters().find("id " + std::to_string(l.in->dispatcher().id) + " ") != std::string::npos;
    };
    ASSERT_TRUE(has(a)) << filters();
    auto fwd = tcd::swap_dispatcher_on(where, tcd::Hook::tc, b.in->dispatcher_fd(), a.in->dispatcher_fd());
    ASSERT_TRUE(fwd) << fwd.error().message();
    EXPECT_TRUE(has(b)) << filters();
    EXPECT_FALSE(has(a)) << filters();
    auto back = tcd::swap_dispatcher_on(*fwd, tcd::Hook::tc, a.in->dispatcher_fd(), b.in->dispatcher_fd());
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_TRUE(has(a)) << filters();
    EXPECT_FALSE(has(b)) << filters();
    ASSERT_TRUE(tcd::detach_all(*a.in));
}

// A tcx link: BPF_LINK_UPDATE swaps the program inside tcd's link, forward
// and back, and the link is what runs either way.
TEST(Swap, TcxForwardAndBackInsideTheLink) {
    TCD_REQUIRE_KERNEL();
    if (!tcd::tcx_supported()) GTEST_SKIP() << "this kernel has no tcx links";
    Topology ns = netns();
    ASSERT_TRUE(ns.ok()) << ns.error();
    Loaded a("tcdsw_tcxa", tcd::Hook::tc), b("tcdsw_tcxb", tcd::Hook::tc);
    ASSERT_TRUE(a.in && b.in);
    auto att = tcd::attach(*a.in, {"sw0", ns.ns(), tcd::AttachMode::auto_mode, false, tcd::Direction::egress,
                                   tcd::Order::first});
    ASSERT_TRUE(att) << att.error().message();
    auto where = tcd::attachments(*a.in);
    ASSERT_EQ(where.size(), 1u);
    EXPECT_EQ(where[0].mode, tcd::AttachMode::tcx);
    EXPECT_EQ(where[0].direction, tcd::Direction::egress);
    EXPECT_EQ(where[0].position, 1u);
    EXPECT_TRUE(tcd::runs_where_attached(*a.in, a.in->dispatcher().id));
    auto fwd = tcd::swap_dispatcher_on(where, tcd::Hook::tc, b.in->dispatcher_fd(), a.in->dispatcher_fd());
    ASSERT_TRUE(fwd) << fwd.error().message();
    EXPECT_TRUE(tcd::runs_where_attached(*a.in, b.in->dispatcher().id));
    EXPECT_FALSE(tcd::runs_where_attached(*a.in, a.in->dispatcher().id));
    // The old program no longer matches: a second forward swap is refused.
    EXPECT_FALSE(tcd::swap_dispatcher_on(where, tcd::Hook::tc, b.in->dispatcher_fd(), a.in->dispatcher_fd()));
    auto back = tcd::swap_dispatcher_on(*fwd, tcd::Hook::tc, a.in->dispatcher_fd(), b.in->dispatcher_fd());
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_TRUE(tcd::runs_where_attached(*a.in, a.in->dispatcher().id));
    ASSERT_TRUE(tcd::detach_all(*a.in));
    EXPECT_TRUE(tcd::attachments(*a.in).empty());
    EXPECT_FALSE(tcd::bpffs::exists(a.in->paths().dir + "/links"));
}

}  // namespace
