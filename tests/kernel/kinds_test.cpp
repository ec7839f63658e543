// Port and tc instances through test_run: port slots and counters, service
// names, the no-port class; tc verdicts, tc handlers and the XDP/tc mismatch.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <string>

#include "core/bpffs.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lifecycle.h"
#include "core/stats.h"
#include "core/trace.h"
#include "tests/common/kernel.h"
#include "tests/common/packet.h"

namespace {

using namespace tcdtest;

std::string obj(const char* name) { return std::string(TCD_BPF_OBJ_DIR) + "/" + name + ".bpf.o"; }
tcd::HandlerSpec spec(const std::string& s) { return *tcd::parse_handler_spec(s); }

Bytes l4(uint8_t proto, uint16_t dport, size_t l4len = 20, uint16_t frag = 0x4000) {
    Bytes ip = ipv4(proto, 5, l4len);
    ip[6] = uint8_t(frag >> 8);
    ip[7] = uint8_t(frag);
    if (l4len >= 4) {
        ip[20 + 2] = uint8_t(dport >> 8);
        ip[20 + 3] = uint8_t(dport);
    }
    return eth(0x0800) + ip;
}

// An instance of one kind in a pin dir of the test's own.
class KindInstance {
public:
    explicit KindInstance(tcd::Kind kind, const char* tag) : dir_("/sys/fs/bpf/" + unique_name(tag)) {
        (void)tcd::unload(dir_);
        tcd::LoadOptions o;
        o.kind = kind;
        auto r = tcd::load(dir_, o);
        if (r) in_.emplace(std::move(*tcd::Instance::open(dir_)));
        else error_ = r.error().message();
    }
    ~KindInstance() { (void)tcd::unload(dir_); }
    const tcd::Instance& in() const { return *in_; }
    const std::string& dir() const { return dir_; }
    const std::string& error() const { return error_; }

private:
    std::string dir_, error_;
    std::optional<tcd::Instance> in_;
};

TEST(PortInstance, SlotsCountersAndClasses) {
    TCD_REQUIRE_KERNEL();
    KindInstance k({tcd::KeyKind::port, tcd::Hook::xdp}, "tcdport");
    ASSERT_EQ(k.error(), "");
    auto http = tcd::set_handler(k.in(), *tcd::parse_port("http"), spec("drop"));
    ASSERT_TRUE(http) << http.error().message();
    EXPECT_EQ(http->now.key_name, "http");
    EXPECT_EQ(http->now.slot, 1u);
    auto alt = tcd::set_handler(k.in(), 8080, spec("pass"));
    ASSERT_TRUE(alt);
    EXPECT_EQ(alt->now.slot, 2u);

    auto t = tcd::Tracer::open(k.dir());
    ASSERT_TRUE(t);
    struct Case {
        Bytes frame;
        std::string cls;
        int key;
        std::string verdict;
    } cases[] = {
        {l4(6, 80), "ipv4", 80, "XDP_DROP"},
        {l4(17, 8080, 8), "ipv4", 8080, "XDP_PASS"},
        {l4(6, 443), "ipv4", 443, "XDP_PASS"},           // no handler: miss action, other ports
        {l4(1, 0), "no-port", -1, "XDP_PASS"},           // ICMP has no port
        {l4(6, 80, 19), "no-port", -1, "XDP_PASS"},      // TCP header cut short
        {l4(17, 80, 8, 0x0010), "no-port", -1, "XDP_PASS"},  // a later fragment
        {eth(0x86dd) + ipv6(6, {{0}, {44}}, 20), "ipv6", 0xcdcd, "XDP_PASS"},  // the payload bytes
        {eth(0x0806) + Bytes(28, 0), "non-ip", -1, "XDP_PASS"},
    };
    for (const auto& c : cases) {
        auto f = t->run(c.frame.data(), c.frame.size(), 1);
        ASSERT_TRUE(f) << f.error().message();
        EXPECT_EQ(f->cls, c.cls) << c.key;
        EXPECT_EQ(f->key ? int(*f->key) : -1, c.key);
        EXPECT_EQ(tcd::verdict_name(f->verdict), c.verdict) << c.key;
    }

    // The live counters: each wired port in its slot, the rest in "other".
    LIBBPF_OPTS(bpf_test_run_opts, o);
    for (auto frame : {l4(6, 80), l4(6, 80), l4(6, 8080), l4(6, 443), l4(1, 0)}) {
        o.data_in = frame.data();
        o.data_size_in = uint32_t(frame.size());
        ASSERT_EQ(bpf_prog_test_run_opts(k.in().dispatcher_fd(), &o), 0);
    }
    auto s = tcd::read_stats(k.in().stats_fd(), tcd::KeyKind::port);
    ASSERT_TRUE(s);
    auto w = tcd::list_wiring(k.in());
    ASSERT_TRUE(w);
    auto v = tcd::make_stats_view(*s, nullptr, *w, false);
    ASSERT_EQ(v.keys.size(), 2u);
    EXPECT_EQ(v.keys[0].key, 80u);
    EXPECT_EQ(v.keys[0].c.packets, 2u);
    EXPECT_EQ(v.keys[1].key, 8080u);
    EXPECT_EQ(v.keys[1].c.packets, 1u);
    EXPECT_EQ(v.other_ports.packets, 1u);
    EXPECT_EQ(v.other_ports.missed, 1u);
    EXPECT_EQ(v.no_port.packets, 1u);
    EXPECT_EQ(v.total.packets, 5u);

    // Unwiring gives the slot back; a new port gets it, counters from zero.
    ASSERT_TRUE(tcd::del_keys(k.in(), {80}));
    auto ssh = tcd::set_handler(k.in(), 22, spec("pass"));
    ASSERT_TRUE(ssh);
    EXPECT_EQ(ssh->now.slot, 1u);
    auto s2 = tcd::read_stats(k.in().stats_fd(), tcd::KeyKind::port);
    EXPECT_EQ(s2->keys[1].packets, 0u);
}

TEST(TcInstance, VerdictsHandlersAndMismatch) {
    TCD_REQUIRE_KERNEL();
    KindInstance k({tcd::KeyKind::proto, tcd::Hook::tc}, "tcdtc");
    ASSERT_EQ(k.error(), "");
    ASSERT_TRUE(tcd::set_handler(k.in(), 1, spec("drop")));
    auto t = tcd::Tracer::open(k.dir());
    ASSERT_TRUE(t);
    auto icmp = l4(1, 0);
    EXPECT_EQ(tcd::verdict_name(t->run(icmp.data(), icmp.size(), 1)->verdict), "TC_ACT_SHOT");
    auto udp = l4(17, 53, 8);
    // Unwired: the miss action, next on tc by default (TC_ACT_UNSPEC).
    EXPECT_EQ(tcd::verdict_name(t->run(udp.data(), udp.size(), 1)->verdict), "TC_ACT_UNSPEC");

    // The seed 002 chain on tc.
    auto loaded = tcd::load_handlers(k.in(), obj("tc_chain"), {});
    ASSERT_TRUE(loaded) << loaded.error().message();
    ASSERT_TRUE(tcd::set_handler(k.in(), 17, spec("tc_mark")));
    ASSERT_TRUE(tcd::set_handler(k.in(), 252, spec("tc_inspect")));
    auto discard = l4(17, 9, 8);
    EXPECT_EQ(tcd::verdict_name(t->run(discard.data(), discard.size(), 1)->verdict), "TC_ACT_SHOT");
    EXPECT_EQ(tcd::verdict_name(t->run(udp.data(), udp.size(), 1)->verdict), "TC_ACT_OK");

    // An XDP program does not go into a tc table, and tcd says so.
    auto xdp = tcd::load_handlers(k.in(), obj("ports"), {"tcp_ports"});
    ASSERT_FALSE(xdp);
    EXPECT_NE(xdp.error().message().find("is a xdp program; the jump table takes sched_cls"), std::string::npos)
        << xdp.error().message();
    KindInstance x({tcd::KeyKind::proto, tcd::Hook::xdp}, "tcdtcx");
    ASSERT_EQ(x.error(), "");
    auto cross = tcd::set_handler(k.in(), 6, spec(x.dir() + "/pass"));
    ASSERT_FALSE(cross);
    EXPECT_NE(cross.error().message().find("program type is xdp, the jump table takes sched_cls"), std::string::npos)
        << cross.error().message();
    auto back = tcd::set_handler(x.in(), 6, spec(k.dir() + "/pass"));
    ASSERT_FALSE(back);
    EXPECT_NE(back.error().message().find("program type is sched_cls, the jump table takes xdp"), std::string::npos);
}

TEST(Kinds, ALoadedKindStaysUntilUnload) {
    TCD_REQUIRE_KERNEL();
    KindInstance k({tcd::KeyKind::port, tcd::Hook::xdp}, "tcdkind");
    ASSERT_EQ(k.error(), "");
    auto other = tcd::load(k.dir(), {});
    ASSERT_FALSE(other);
    EXPECT_NE(other.error().message().find("holds a port dispatcher on xdp"), std::string::npos);
    EXPECT_EQ(tcd::pinned_kind(k.dir())->key, tcd::KeyKind::port);
}

}  // namespace
