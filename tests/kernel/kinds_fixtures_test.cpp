// Fixtures for all four dispatcher kinds (key proto|port x hook xdp|tc), with
// miss action pass and drop (and next on tc): each frame through the live dispatcher with
// BPF_PROG_TEST_RUN, its verdict, the class and key the trace copy derives,
// and the exact counter delta (one row: packets +1, bytes +len, missed +0/1;
// every other row unchanged).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/bpffs.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/keys.h"
#include "core/lifecycle.h"
#include "core/reasons.h"
#include "core/stats.h"
#include "core/trace.h"
#include "tests/common/kernel.h"
#include "tests/common/packet.h"

namespace {

using namespace tcdtest;

enum class V { pass, drop, miss };  // verdict: the miss action for `miss`
enum : int { NONE = -1 };

struct Fx {
    std::string name;
    Bytes frame;
    std::string cls;
    int key;      // NONE: no key (non-ip, malformed, no-port)
    size_t row;   // counter row (port: slot, 1024 non-ip, 1025 malformed, 1026 no-port)
    bool missed;  // counted as a miss in its row
    V verdict;
};

// Sets the destination port in an L4 header that starts at `off`.
Bytes with_dport(Bytes b, size_t off, uint16_t port) {
    b.at(off + 2) = uint8_t(port >> 8);
    b.at(off + 3) = uint8_t(port);
    return b;
}

Bytes v4(uint8_t proto, uint16_t dport, size_t l4len, uint16_t frag = 0x4000, std::initializer_list<uint16_t> tags = {}) {
    Bytes ip = ipv4(proto, 5, l4len);
    ip[6] = uint8_t(frag >> 8);
    ip[7] = uint8_t(frag);
    Bytes f = eth(0x0800, tags) + ip;
    return l4len >= 4 ? with_dport(f, f.size() - l4len, dport) : f;
}

Bytes v6(uint8_t proto, uint16_t dport, size_t l4len, std::initializer_list<Ext> exts = {},
         std::initializer_list<uint16_t> tags = {}) {
    Bytes f = eth(0x86dd, tags) + ipv6(proto, exts, l4len);
    return l4len >= 4 ? with_dport(f, f.size() - l4len, dport) : f;
}

// IPv6 with one Fragment header (offset in 8-byte units, M flag) before an
// L4 header of l4len bytes.
Bytes v6_frag(uint8_t proto, uint16_t dport, size_t l4len, uint16_t offset, bool more) {
    Bytes f = v6(proto, dport, l4len, {{44}});
    size_t fh = 14 + 40;
    uint16_t v = uint16_t(offset << 3 | (more ? 1 : 0));
    f[fh + 2] = uint8_t(v >> 8);
    f[fh + 3] = uint8_t(v);
    return f;
}

constexpr size_t P_NON_IP = 1024, P_MALFORMED = 1025, P_NO_PORT = 1026;

// Port instances are wired: 80 -> drop (slot 1), 8080 -> pass (slot 2),
// 53 -> udp_handler (slot 3); 9999 -> pass written straight into the jump
// table as bpftool would (no slot: counted in slot 0); everything else unwired.
std::vector<Fx> port_fixtures() {
    return {
        {"v4_tcp_80", v4(6, 80, 20), "ipv4", 80, 1, false, V::drop},
        {"v4_udp_8080", v4(17, 8080, 8), "ipv4", 8080, 2, false, V::pass},
        {"v4_udp_53", v4(17, 53, 8), "ipv4", 53, 3, false, V::pass},
        {"v4_tcp_443_unwired", v4(6, 443, 20), "ipv4", 443, 0, true, V::miss},
        {"v4_tcp_9999_unslotted", v4(6, 9999, 20), "ipv4", 9999, 0, false, V::pass},
        {"v4_tcp_header_20_exact", v4(6, 8080, 20), "ipv4", 8080, 2, false, V::pass},
        {"v4_tcp_header_19", v4(6, 80, 19), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v4_udp_header_8_exact", v4(17, 80, 8), "ipv4", 80, 1, false, V::drop},
        {"v4_udp_header_7", v4(17, 80, 7), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v4_first_fragment_mf", v4(17, 53, 8, 0x2000), "ipv4", 53, 3, false, V::pass},
        {"v4_later_fragment", v4(17, 80, 8, 0x0010), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v4_last_fragment", v4(6, 80, 20, 0x0001), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v4_icmp", v4(1, 0, 8), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v4_options_tcp_80", eth(0x0800) + with_dport(ipv4(6, 15, 20), 60, 80), "ipv4", 80, 1, false, V::drop},
        {"vlan_v4_tcp_80", v4(6, 80, 20, 0x4000, {0x8100}), "ipv4", 80, 1, false, V::drop},
        {"qinq_v4_udp_443", v4(17, 443, 8, 0x4000, {0x88a8, 0x8100}), "ipv4", 443, 0, true, V::miss},
        {"vlan_v6_tcp_8080", v6(6, 8080, 20, {}, {0x8100}), "ipv6", 8080, 2, false, V::pass},
        {"qinq_v6_udp_53", v6(17, 53, 8, {}, {0x88a8, 0x8100}), "ipv6", 53, 3, false, V::pass},
        {"three_tags_non_ip", v4(6, 80, 20, 0x4000, {0x88a8, 0x8100, 0x8100}), "non-ip", NONE, P_NON_IP, false,
         V::pass},
        {"v6_tcp_80", v6(6, 80, 20), "ipv6", 80, 1, false, V::drop},
        {"v6_udp_7_bytes", v6(17, 53, 7), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v6_tcp_19_bytes", v6(6, 80, 19), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v6_hbh_dst_udp_8080", v6(17, 8080, 8, {{0}, {60, 1}}), "ipv6", 8080, 2, false, V::pass},
        {"v6_first_fragment_tcp_80", v6_frag(6, 80, 20, 0, true), "ipv6", 80, 1, false, V::drop},
        {"v6_later_fragment_udp", v6_frag(17, 53, 8, 185, true), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v6_last_fragment_tcp", v6_frag(6, 80, 20, 3, false), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v6_icmpv6", v6(58, 0, 8), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"v6_ah_no_port", v6(51, 0, 24), "no-port", NONE, P_NO_PORT, false, V::miss},
        {"arp", eth(0x0806) + Bytes(28, 0), "non-ip", NONE, P_NON_IP, false, V::pass},
        {"v4_ihl_4", eth(0x0800) + ipv4(6, 4), "malformed", NONE, P_MALFORMED, false, V::pass},
        {"v6_9_ext", eth(0x86dd) + ipv6(6, {{0}, {60}, {43}, {44}, {60}, {43}, {44}, {60}, {60}}), "malformed", NONE,
         P_MALFORMED, false, V::pass},
    };
}

// Proto instances are wired 6 -> tcp_handler, 17 -> udp_handler, 47 -> drop.
std::vector<Fx> proto_fixtures() {
    return {
        {"v4_tcp", v4(6, 80, 20), "ipv4", 6, 6, false, V::pass},
        {"v4_udp", v4(17, 53, 8), "ipv4", 17, 17, false, V::pass},
        {"v4_gre_drop", eth(0x0800) + ipv4(47), "ipv4", 47, 47, false, V::drop},
        {"v4_icmp_unwired", v4(1, 0, 8), "ipv4", 1, 1, true, V::miss},
        {"v4_later_fragment_keyed", v4(17, 0, 8, 0x0010), "ipv4", 17, 17, false, V::pass},
        {"vlan_v4_gre", eth(0x0800, {0x8100}) + ipv4(47), "ipv4", 47, 47, false, V::drop},
        {"qinq_v6_udp", v6(17, 53, 8, {}, {0x88a8, 0x8100}), "ipv6", 17, 17, false, V::pass},
        {"v6_chain_icmpv6", v6(58, 0, 8, {{0}, {43, 1}, {44}, {60}}), "ipv6", 58, 58, true, V::miss},
        {"v6_ah", v6(51, 0, 24), "ipv6", 51, 51, true, V::miss},
        {"three_tags_non_ip", v4(6, 80, 20, 0x4000, {0x88a8, 0x8100, 0x8100}), "non-ip", NONE, 256, false, V::pass},
        {"arp", eth(0x0806) + Bytes(28, 0), "non-ip", NONE, 256, false, V::pass},
        {"v4_ihl_4", eth(0x0800) + ipv4(6, 4), "malformed", NONE, 257, false, V::pass},
        {"v6_9_ext", eth(0x86dd) + ipv6(6, {{0}, {60}, {43}, {44}, {60}, {43}, {44}, {60}, {60}}), "malformed", NONE,
         257, false, V::pass},
    };
}

struct Case {
    tcd::Kind kind;
    tcd::MissAction miss;
};

void PrintTo(const Case& c, std::ostream* os) {
    *os << tcd::key_kind_name(c.kind.key) << "/" << tcd::hook_name(c.kind.hook) << " miss "
        << tcd::miss_action_name(c.miss);
}

std::string case_label(const ::testing::TestParamInfo<Case>& i) {
    return std::string(tcd::key_kind_name(i.param.kind.key)) + "_" + tcd::hook_name(i.param.kind.hook) + "_miss_" +
           tcd::miss_action_name(i.param.miss);
}

class KindFixtures : public ::testing::TestWithParam<Case> {
protected:
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        dir_ = "/sys/fs/bpf/" + unique_name("tcdkfx");
        (void)tcd::unload(dir_);
        tcd::LoadOptions o;
        o.kind = GetParam().kind;
        o.miss = GetParam().miss;
        auto r = tcd::load(dir_, o);
        ASSERT_TRUE(r) << r.error().message();
        auto in = tcd::Instance::open(dir_);
        ASSERT_TRUE(in) << in.error().message();
        in_.emplace(std::move(*in));
        auto wire = [&](uint32_t key, const char* h) {
            auto s = tcd::set_handler(*in_, key, *tcd::parse_handler_spec(h));
            ASSERT_TRUE(s) << key << " " << h << ": " << s.error().message();
        };
        if (GetParam().kind.key == tcd::KeyKind::port) {
            wire(80, "drop");
            wire(8080, "pass");
            wire(53, "udp_handler");
            // As `bpftool map update pinned .../maps/jt key 9999 ... value pinned .../pass`: no slot.
            auto pass = tcd::bpffs::get(dir_ + "/pass");
            ASSERT_TRUE(pass);
            uint32_t key = 9999;
            int fd = pass->get();
            ASSERT_EQ(bpf_map_update_elem(in_->jt_fd(), &key, &fd, BPF_ANY), 0);
        } else {
            wire(6, "tcp_handler");
            wire(17, "udp_handler");
            wire(47, "drop");
        }
    }
    void TearDown() override {
        in_.reset();
        if (!dir_.empty()) (void)tcd::unload(dir_);
    }

    uint32_t verdict(const Fx& f) const {
        tcd::Hook h = GetParam().kind.hook;
        switch (f.verdict) {
        case V::pass:
            // Frames tcd does not dispatch pass, or go on with miss action next.
            if (f.cls == "non-ip" || f.cls == "malformed") return tcd::undispatched_verdict(GetParam().miss, h);
            return tcd::verdict_pass(h);
        case V::drop: return tcd::verdict_drop(h);
        default: return tcd::miss_action_verdict(GetParam().miss, h);
        }
    }

    void run_all(const std::vector<Fx>& fixtures) {
        const tcd::Kind kind = GetParam().kind;
        auto tracer = tcd::Tracer::open(dir_);
        ASSERT_TRUE(tracer) << tracer.error().message();
        uint64_t n = 0;
        for (const auto& f : fixtures) {
            SCOPED_TRACE(f.name);
            // What the dispatcher derives (trace copy, same wiring and slots).
            auto t = tracer->run(f.frame.data(), f.frame.size(), ++n);
            ASSERT_TRUE(t) << t.error().message();
            ASSERT_TRUE(t->ran);
            EXPECT_EQ(t->cls, f.cls);
            EXPECT_EQ(t->key ? int(*t->key) : NONE, f.key);
            EXPECT_EQ(t->missed, f.missed);

            // The live dispatcher: verdict and the exact counter delta.
            auto before = tcd::read_stats(in_->stats_fd(), kind.key);
            ASSERT_TRUE(before);
            LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.frame.data(),
                        .data_size_in = uint32_t(f.frame.size()), .repeat = 1);
            ASSERT_EQ(bpf_prog_test_run_opts(in_->dispatcher_fd(), &o), 0) << errno;
            EXPECT_EQ(o.retval, verdict(f))
                << tcd::verdict_name(kind.hook, o.retval) << ", want " << tcd::verdict_name(kind.hook, verdict(f));
            auto after = tcd::read_stats(in_->stats_fd(), kind.key);
            ASSERT_TRUE(after);
            check_delta(*before, *after, f);
        }
    }

    static std::vector<tcd::Counters> rows(const tcd::StatsSnapshot& s, bool port) {
        std::vector<tcd::Counters> r = s.keys;
        r.resize(port ? 1024 : 256);
        r.push_back(s.non_ip);
        r.push_back(s.malformed);
        if (port) r.push_back(s.no_port);
        return r;
    }

    void check_delta(const tcd::StatsSnapshot& a, const tcd::StatsSnapshot& b, const Fx& f) {
        bool port = GetParam().kind.key == tcd::KeyKind::port;
        auto ra = rows(a, port), rb = rows(b, port);
        ASSERT_EQ(ra.size(), rb.size());
        for (size_t r = 0; r < ra.size(); r++) {
            uint64_t dp = rb[r].packets - ra[r].packets, db = rb[r].bytes - ra[r].bytes,
                     dm = rb[r].missed - ra[r].missed;
            if (r == f.row) {
                EXPECT_EQ(dp, 1u) << "row " << r;
                EXPECT_EQ(db, f.frame.size()) << "row " << r;  // XDP: data_end - data; tc: skb->len
                EXPECT_EQ(dm, f.missed ? 1u : 0u) << "row " << r;
            } else if (dp || db || dm) {
                ADD_FAILURE() << "row " << r << " changed: +" << dp << " packets, +" << db << " bytes, +" << dm
                              << " missed (want only row " << f.row << ")";
            }
        }
    }

    std::string dir_;
    std::optional<tcd::Instance> in_;
};

TEST_P(KindFixtures, ExactCounterDeltas) {
    run_all(GetParam().kind.key == tcd::KeyKind::port ? port_fixtures() : proto_fixtures());
}

// 1023 ports hold the 1023 counter slots: one more port is refused with a
// sentence, and nothing is written for it (no slot, no handler, no counter
// reset); unwiring one port makes room again.
TEST(PortSlots, RunningOutIsRefusedAndWritesNothing) {
    TCD_REQUIRE_KERNEL();
    std::string dir = "/sys/fs/bpf/" + unique_name("tcdslots");
    (void)tcd::unload(dir);
    struct Unload {
        std::string d;
        ~Unload() { (void)tcd::unload(d); }
    } unload{dir};
    tcd::LoadOptions o;
    o.kind = {tcd::KeyKind::port, tcd::Hook::xdp};
    ASSERT_TRUE(tcd::load(dir, o));
    auto in = tcd::Instance::open(dir);
    ASSERT_TRUE(in);
    // Slots 1-1022 given straight (maps/port_slot and its index, ports
    // 10001...), the last one through map set, so the table is as tcd leaves it.
    for (uint32_t slot = 1; slot < 1023; slot++) ASSERT_TRUE(tcd::write_port_slot(*in, 10000 + slot, slot));
    auto last = tcd::set_handler(*in, 11023, *tcd::parse_handler_spec("pass"));
    ASSERT_TRUE(last) << last.error().message();
    EXPECT_EQ(last->now.slot, 1023u);

    // Counters in slot 0 ("other ports") must not be touched by the refusal.
    auto frame = v4(6, 8080, 20);
    LIBBPF_OPTS(bpf_test_run_opts, r, .data_in = frame.data(), .data_size_in = uint32_t(frame.size()), .repeat = 1);
    ASSERT_EQ(bpf_prog_test_run_opts(in->dispatcher_fd(), &r), 0);
    auto before = tcd::read_stats(in->stats_fd(), tcd::KeyKind::port);
    ASSERT_TRUE(before);

    auto full = tcd::set_handler(*in, 8080, *tcd::parse_handler_spec("drop"));
    ASSERT_FALSE(full);
    // The core's words; the hint naming 'tcd map del' is cli/'s (cli/words.cpp).
    EXPECT_EQ(full.error().message(), "map set 8080: all 1023 port counter slots are in use");
    EXPECT_EQ(full.error().reason, tcd::Reason::unwire_ports);
    uint32_t key = 8080, value = 0;
    EXPECT_NE(bpf_map_lookup_elem(in->jt_fd(), &key, &value), 0) << "a handler was wired";
    ASSERT_EQ(bpf_map_lookup_elem(in->port_slot_fd(), &key, &value), 0);
    EXPECT_EQ(value, 0u) << "a slot was given";
    auto after = tcd::read_stats(in->stats_fd(), tcd::KeyKind::port);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->keys[0].packets, before->keys[0].packets);
    EXPECT_EQ(after->total().packets, before->total().packets);

    // One port unwired: its slot is free for the next.
    ASSERT_TRUE(tcd::del_keys(*in, {11023}));
    auto again = tcd::set_handler(*in, 8080, *tcd::parse_handler_spec("drop"));
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(again->now.slot, 1023u);
}

// tc's test_run takes at most a page; tcd trace runs a longer frame's head
// (its class and key are in the headers) instead of calling it malformed.
TEST(TcTrace, LongFramesRunOnTheirHead) {
    TCD_REQUIRE_KERNEL();
    for (tcd::KeyKind key : {tcd::KeyKind::proto, tcd::KeyKind::port}) {
        auto t = tcd::Tracer::open("/sys/fs/bpf/" + unique_name("tcdlong_none"), {key, tcd::Hook::tc});
        ASSERT_TRUE(t) << t.error().message();
        Bytes arp = eth(0x0806) + Bytes(6000, 0);
        auto a = t->run(arp.data(), arp.size(), 1);
        ASSERT_TRUE(a) << a.error().message();
        EXPECT_TRUE(a->ran);
        EXPECT_EQ(a->cls, "non-ip");
        EXPECT_LT(a->len, arp.size());  // what the dispatcher got
        EXPECT_GE(a->len, 2048u);
        Bytes udp = v4(17, 53, 8000);
        auto u = t->run(udp.data(), udp.size(), 2);
        ASSERT_TRUE(u) << u.error().message();
        EXPECT_TRUE(u->ran);
        EXPECT_EQ(u->cls, "ipv4");
        EXPECT_EQ(u->key ? int(*u->key) : NONE, key == tcd::KeyKind::port ? 53 : 17);
        // A cut IP header is still refused, and malformed.
        Bytes cut = truncate(eth(0x0800) + ipv4(6), 14 + 19);
        auto c = t->run(cut.data(), cut.size(), 3);
        ASSERT_TRUE(c);
        EXPECT_FALSE(c->ran);
        EXPECT_EQ(c->cls, "malformed");
    }
}

// --repeat on the frames trace runs by their head or not at all: a frame
// run by its head is timed on that head (the timing run takes what the
// traced run took), one not run has no level and no figure, and on every
// hook and kind a frame that ran gets a positive figure. No time is compared.
TEST(TcTrace, RepeatTimesWhatRan) {
    TCD_REQUIRE_KERNEL();
    for (tcd::Hook hook : {tcd::Hook::xdp, tcd::Hook::tc})
        for (tcd::KeyKind key : {tcd::KeyKind::proto, tcd::KeyKind::port}) {
            auto t = tcd::Tracer::open("/sys/fs/bpf/" + unique_name("tcdrep_none"), {key, hook});
            ASSERT_TRUE(t) << t.error().message();
            t->set_repeat(5);
            for (const Bytes& f : {eth(0x0806) + Bytes(6000, 0), v4(17, 53, 8000)}) {
                auto r = t->run(f.data(), f.size(), 1);
                ASSERT_TRUE(r) << r.error().message();
                ASSERT_TRUE(r->ran);
                EXPECT_EQ(r->repeat, 5u);
                ASSERT_EQ(r->levels.size(), 1u);
                ASSERT_TRUE(r->levels[0].ns);
                EXPECT_GT(*r->levels[0].ns, 0u);
                EXPECT_EQ(r->levels[0].self_ns, int64_t(*r->levels[0].ns));
            }
            Bytes short_frame(10, 0);
            auto s = t->run(short_frame.data(), short_frame.size(), 3);
            ASSERT_TRUE(s);
            EXPECT_FALSE(s->ran);
            EXPECT_TRUE(s->levels.empty());
        }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, KindFixtures,
    ::testing::Values(Case{{tcd::KeyKind::proto, tcd::Hook::xdp}, tcd::MissAction::pass},
                      Case{{tcd::KeyKind::proto, tcd::Hook::xdp}, tcd::MissAction::drop},
                      Case{{tcd::KeyKind::proto, tcd::Hook::tc}, tcd::MissAction::pass},
                      Case{{tcd::KeyKind::proto, tcd::Hook::tc}, tcd::MissAction::drop},
                      Case{{tcd::KeyKind::proto, tcd::Hook::tc}, tcd::MissAction::next},
                      Case{{tcd::KeyKind::port, tcd::Hook::xdp}, tcd::MissAction::pass},
                      Case{{tcd::KeyKind::port, tcd::Hook::xdp}, tcd::MissAction::drop},
                      Case{{tcd::KeyKind::port, tcd::Hook::tc}, tcd::MissAction::pass},
                      Case{{tcd::KeyKind::port, tcd::Hook::tc}, tcd::MissAction::drop},
                      Case{{tcd::KeyKind::port, tcd::Hook::tc}, tcd::MissAction::next}),
    case_label);

}  // namespace
