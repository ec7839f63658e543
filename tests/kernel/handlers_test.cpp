// User handlers: loading (shared maps, refusals), safe wiring (each
// compatibility field named, nothing written on failure), unloading, and the
// example handlers doing what their comments say, through test_run.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <string>

#include "core/bpffs.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/probe.h"
#include "core/stats.h"
#include "core/trace.h"
#include "tests/common/instance.h"
#include "tests/common/kernel.h"
#include "tests/common/packet.h"

namespace {

using namespace tcdtest;

std::string obj(const char* name) { return std::string(TCD_BPF_OBJ_DIR) + "/" + name + ".bpf.o"; }

tcd::HandlerSpec spec(const std::string& s) { return *tcd::parse_handler_spec(s); }

// An IPv4/TCP or UDP frame to a destination port.
Bytes l4(uint8_t proto, uint16_t dport, uint8_t tos = 0) {
    Bytes ip = ipv4(proto, 5, 20);
    ip[1] = tos;
    ip[20 + 2] = uint8_t(dport >> 8);
    ip[20 + 3] = uint8_t(dport);
    return eth(0x0800) + ip;
}

std::string verdict(tcd::Tracer& t, const Bytes& f) {
    auto r = t.run(f.data(), f.size(), 1);
    return r ? tcd::verdict_name(r->verdict) : "error: " + r.error().message();
}

std::vector<std::string> pins(const TestInstance& i) { return tcd::bpffs::list_pins(i.dir()); }

class Handlers : public ::testing::Test {
protected:
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        inst_.emplace("tcdhd", tcd::MissAction::pass);
        ASSERT_EQ(inst_->error(), "");
    }
    void TearDown() override { inst_.reset(); }
    const TestInstance& inst() { return *inst_; }
    std::optional<TestInstance> inst_;
};

TEST_F(Handlers, PortsExampleSharesTheJumpTable) {
    auto r = tcd::load_handlers(inst().in(), obj("ports"), {});
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->loaded.size(), 3u);
    EXPECT_EQ(r->shared_maps, (std::vector<std::string>{"jt", "proto_stats"}));
    for (auto [key, name] : {std::pair{6u, "tcp_ports"}, {253u, "port8080"}, {254u, "port22"}})
        ASSERT_TRUE(tcd::set_handler(inst().in(), key, spec(name)));
    auto t = tcd::Tracer::open(inst().dir());
    ASSERT_TRUE(t);
    EXPECT_EQ(verdict(*t, l4(6, 8080)), "XDP_PASS");
    auto before = tcd::read_stats(inst().in().stats_fd());
    ASSERT_TRUE(before);
    EXPECT_EQ(verdict(*t, l4(6, 22)), "XDP_DROP");  // chained through the shared jt into port22
    // port22 counted it with tcd_count() into the shared counters, row 254.
    auto after = tcd::read_stats(inst().in().stats_fd());
    ASSERT_TRUE(after);
    EXPECT_EQ(after->keys[254].packets, before->keys[254].packets + 1);
    EXPECT_EQ(after->keys[254].bytes, before->keys[254].bytes + l4(6, 22).size());
    EXPECT_EQ(after->keys[253].packets, before->keys[253].packets);
    EXPECT_EQ(verdict(*t, l4(6, 80)), "XDP_PASS");
    auto f = t->run(l4(6, 22).data(), l4(6, 22).size(), 1);
    EXPECT_EQ(f->handler.value_or(""), "tcp_ports");
    // The trace shows tcp_ports' tcd_next_static() hop to 254 as a level
    // (where an XDP test run takes the hop record: 5.14 on; before, the
    // tracer says it cannot show hops and shows none).
    const bool hops = t->limitation().empty();
    if (hops) {
        ASSERT_EQ(f->levels.size(), 2u);
        EXPECT_EQ(f->levels[1].via, tcd::Via::tcd_next);
        EXPECT_EQ(f->levels[1].from.value_or(""), "tcp_ports");
        EXPECT_EQ(f->levels[1].key.value_or(0), 254u);
        EXPECT_EQ(f->levels[1].handler.value_or(""), "port22");
        EXPECT_FALSE(f->levels[1].missed);
    } else {
        EXPECT_EQ(f->levels.size(), 1u);
    }
    EXPECT_EQ(f->unrecorded_hops, 0u);
    // Port 80 takes no hop: one level.
    auto p80 = t->run(l4(6, 80).data(), l4(6, 80).size(), 1);
    ASSERT_TRUE(p80);
    EXPECT_EQ(p80->levels.size(), 1u);
    // Unwire the stage: port 22 falls through tcp_ports and passes.
    ASSERT_TRUE(tcd::del_keys(inst().in(), {254}));
    EXPECT_EQ(verdict(*t, l4(6, 22)), "XDP_PASS");
    auto m = t->run(l4(6, 22).data(), l4(6, 22).size(), 1);
    ASSERT_TRUE(m);
    if (!hops) return;
    ASSERT_EQ(m->levels.size(), 2u);
    EXPECT_TRUE(m->levels[1].missed);
    EXPECT_FALSE(m->levels[1].handler);
}

TEST_F(Handlers, ChainExampleMarksThenInspects) {
    ASSERT_TRUE(tcd::load_handlers(inst().in(), obj("chain"), {"mark", "inspect"}));
    ASSERT_TRUE(tcd::set_handler(inst().in(), 17, spec("mark")));
    auto t = tcd::Tracer::open(inst().dir());
    ASSERT_TRUE(t);
    EXPECT_EQ(verdict(*t, l4(17, 9)), "XDP_PASS");  // no second stage yet
    const bool hops = t->limitation().empty();     // before 5.14: none shown (PortsExample...)
    auto miss = t->run(l4(17, 9).data(), l4(17, 9).size(), 1);
    ASSERT_TRUE(miss);
    if (hops) {
        ASSERT_EQ(miss->levels.size(), 2u);  // mark's hop to the empty 252
        EXPECT_EQ(miss->levels[1].key.value_or(0), 252u);
        EXPECT_TRUE(miss->levels[1].missed);
    }
    ASSERT_TRUE(tcd::set_handler(inst().in(), 252, spec("inspect")));
    EXPECT_EQ(verdict(*t, l4(17, 9)), "XDP_DROP");  // marked, then dropped
    auto hop = t->run(l4(17, 9).data(), l4(17, 9).size(), 1);
    ASSERT_TRUE(hop);
    if (hops) {
        ASSERT_EQ(hop->levels.size(), 2u);
        EXPECT_EQ(hop->levels[1].from.value_or(""), "mark");
        EXPECT_EQ(hop->levels[1].handler.value_or(""), "inspect");
    }
    EXPECT_EQ(verdict(*t, l4(17, 53)), "XDP_PASS");
}

TEST_F(Handlers, LoadRefusalsLeaveNothingBehind) {
    auto before = pins(inst());
    struct Case {
        std::string object;
        std::vector<std::string> progs;
        std::string why;
    } cases[] = {
        {obj("bad_jt"), {}, "max_entries is 2 in"},
        {obj("odd_handlers"), {"tc_prog"}, "is a sched_cls program; the jump table takes xdp"},
        {obj("odd_handlers"), {}, "longer than 15 characters"},
        {obj("odd_handlers"), {"nosuch"}, "no xdp program named nosuch"},
        {"/nonexistent.bpf.o", {}, "no such file"},
        {"/etc/hostname", {}, "not a BPF ELF object"},
    };
    for (const auto& c : cases) {
        auto r = tcd::load_handlers(inst().in(), c.object, c.progs);
        ASSERT_FALSE(r) << c.object;
        EXPECT_NE(r.error().message().find(c.why), std::string::npos) << r.error().message();
        EXPECT_EQ(pins(inst()), before) << c.object;
    }
    ASSERT_TRUE(tcd::load_handlers(inst().in(), obj("ports"), {"port22"}));
    auto dup = tcd::load_handlers(inst().in(), obj("ports"), {});  // port22 exists: nothing of it loads
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().message().find("named port22 is pinned already"), std::string::npos);
    EXPECT_FALSE(tcd::bpffs::exists(inst().dir() + "/tcp_ports"));
}

TEST_F(Handlers, FragsProgramsAreLoadedTheWayTheTableNeeds) {
    // handler load clears the frags flag and sets the attach type, so these
    // go into the table (wiring them by id would be refused, see below).
    auto r = tcd::load_handlers(inst().in(), obj("odd_handlers"), {"frags_h", "devmap_h"});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(tcd::set_handler(inst().in(), 7, spec("frags_h")));
    EXPECT_TRUE(tcd::set_handler(inst().in(), 8, spec("devmap_h")));
}

TEST_F(Handlers, WiringChecksNameTheFieldAndWriteNothing) {
    // Load the odd programs as they are (frags flag, devmap attach type, tc);
    // the frags one only where the kernel has the flag (5.18 on).
    LIBBPF_OPTS(bpf_object_open_opts, oo);
    bpf_object* o = bpf_object__open_file(obj("odd_handlers").c_str(), &oo);
    ASSERT_TRUE(o);
    auto frags = tcd::probe::has(tcd::probe::Feature::xdp_frags);
    ASSERT_TRUE(frags) << frags.error().message();
    if (!*frags) bpf_program__set_autoload(bpf_object__find_program_by_name(o, "frags_h"), false);
    ASSERT_EQ(bpf_object__load(o), 0);
    auto id_of = [&](const char* name) {
        auto info = tcd::prog_info(bpf_program__fd(bpf_object__find_program_by_name(o, name)));
        return "id:" + std::to_string(info->id);
    };
    ASSERT_TRUE(tcd::set_handler(inst().in(), 7, spec("pass")));
    auto before = tcd::wired_prog_id(inst().in(), 7);
    struct Case {
        const char* prog;
        std::string why;
    } cases[] = {
        {"frags_h", "frags flag differs: handler frags-aware (xdp.frags), jump table not frags-aware"},
        {"devmap_h", "expected attach type differs: handler xdp_devmap, jump table none"},
        {"tc_prog", "program type is sched_cls, the jump table takes xdp"},
    };
    // Without the prog-array attach-type check (before 6.17 and its stable
    // backports: Debian 11's 5.10) the kernel takes a devmap program into
    // the table, and so does tcd.
    auto check = tcd::probe::has(tcd::probe::Feature::prog_array_attach_check);
    ASSERT_TRUE(check) << check.error().message();
    for (const auto& c : cases) {
        if (!*frags && std::string(c.prog) == "frags_h") continue;
        auto r = tcd::set_handler(inst().in(), 7, spec(id_of(c.prog)));
        if (!*check && std::string(c.prog) == "devmap_h") {
            EXPECT_TRUE(r) << r.error().message();
            ASSERT_TRUE(tcd::set_handler(inst().in(), 7, spec("pass")));
            continue;
        }
        ASSERT_FALSE(r) << c.prog;
        EXPECT_NE(r.error().message().find(c.why), std::string::npos) << r.error().message();
        EXPECT_EQ(tcd::wired_prog_id(inst().in(), 7).value(), before.value()) << c.prog;
    }
    auto map = tcd::set_handler(inst().in(), 7, spec(inst().dir() + "/maps/jt"));
    ASSERT_FALSE(map);
    EXPECT_NE(map.error().message().find("is a map, not a program"), std::string::npos);
    auto self = tcd::set_handler(inst().in(), 7, spec("xdp_dispatch"));
    ASSERT_FALSE(self);
    EXPECT_NE(self.error().message().find("dispatcher itself"), std::string::npos);
    bpf_object__close(o);
}

TEST_F(Handlers, SetReplacesInOneUpdateAndReportsOldToNew) {
    auto r = tcd::set_handler(inst().in(), 17, spec("drop"));
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->changed);
    ASSERT_TRUE(r->old.has_value());
    EXPECT_EQ(r->old->handler, "udp_handler");
    EXPECT_EQ(r->now.handler, "drop");
    auto again = tcd::set_handler(inst().in(), 17, spec("drop"));
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->changed);
}

TEST_F(Handlers, UnloadRefusedWhileWiredUnlessForce) {
    ASSERT_TRUE(tcd::load_handlers(inst().in(), obj("chain"), {}));
    ASSERT_TRUE(tcd::set_handler(inst().in(), 17, spec("mark")));
    ASSERT_TRUE(tcd::set_handler(inst().in(), 250, spec("mark")));
    auto refused = tcd::unload_handler(inst().in(), "mark", false);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("is wired at keys 17 250"), std::string::npos)
        << refused.error().message();
    EXPECT_TRUE(tcd::bpffs::exists(inst().dir() + "/mark"));
    auto forced = tcd::unload_handler(inst().in(), "mark", true);
    ASSERT_TRUE(forced);
    EXPECT_EQ(forced->unwired, (std::vector<uint32_t>{17, 250}));
    EXPECT_FALSE(tcd::bpffs::exists(inst().dir() + "/mark"));
    EXPECT_FALSE(tcd::wired_prog_id(inst().in(), 17).value().has_value());
    EXPECT_TRUE(tcd::unload_handler(inst().in(), "inspect", false));
    EXPECT_FALSE(tcd::unload_handler(inst().in(), "drop", false));  // built in
    EXPECT_FALSE(tcd::unload_handler(inst().in(), "nosuch", false));
}

}  // namespace
