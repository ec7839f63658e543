// The embedded dispatcher opens (no kernel needed to parse it) and has the
// programs and maps the pin layout names, within the kernel's name limit.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/instance.h"

class EmbeddedDispatchers : public ::testing::TestWithParam<tcd::Kind> {};

TEST_P(EmbeddedDispatchers, OpenWithTheLayoutsNamesWithinLimit) {
    tcd::Kind k = GetParam();
    auto d = tcd::DispatcherObject::open(k);
    ASSERT_TRUE(d) << d.error().message();
    std::set<std::string> progs, maps;
    bpf_program* p;
    bpf_object__for_each_program(p, d->obj()) progs.insert(bpf_program__name(p));
    bpf_map* m;
    bpf_object__for_each_map(m, d->obj()) maps.insert(bpf_map__name(m));
    for (const char* name : {tcd::dispatcher_name(k.hook), "tcp_handler", "udp_handler", "pass", "drop"})
        EXPECT_TRUE(progs.count(name)) << name;
    for (const char* name : {"jt", "proto_stats"}) EXPECT_TRUE(maps.count(name)) << name;
    EXPECT_EQ(maps.count("port_slot"), k.key == tcd::KeyKind::port ? 1u : 0u);
    for (const auto& n : progs) EXPECT_LE(n.size(), 15u) << n;
    for (const auto& n : maps) EXPECT_LE(n.size(), 15u) << n;
    EXPECT_EQ(bpf_map__type(d->map("jt")), BPF_MAP_TYPE_PROG_ARRAY);
    EXPECT_EQ(bpf_map__max_entries(d->map("jt")), tcd::jt_entries(k.key));
    EXPECT_EQ(bpf_map__max_entries(d->map("proto_stats")), tcd::stats_entries(k.key));
    EXPECT_EQ(bpf_map__type(d->map("proto_stats")), BPF_MAP_TYPE_PERCPU_ARRAY);
    EXPECT_EQ(bpf_program__type(d->dispatcher()),
              k.hook == tcd::Hook::tc ? BPF_PROG_TYPE_SCHED_CLS : BPF_PROG_TYPE_XDP);
    EXPECT_GT(tcd::embedded_elf(k).size(), 1000u);
}

// The plain dispatcher has no monitoring code (tcd monitor's build is an
// object of its own, compiled with TCD_MONITOR): no perf event output, and
// fewer instructions; the monitoring build has both programs and maps, the
// same .rodata size.
TEST_P(EmbeddedDispatchers, PlainBuildHasNoMonitoringCode) {
    tcd::Kind k = GetParam();
    auto plain = tcd::DispatcherObject::open(k), mon = tcd::DispatcherObject::open(k, true);
    ASSERT_TRUE(plain && mon);
    auto perf_outputs = [](bpf_program* p) {
        const bpf_insn* in = bpf_program__insns(p);
        int n = 0;
        for (size_t i = 0; i < bpf_program__insn_cnt(p); i++)
            if (in[i].code == (BPF_JMP | BPF_CALL) && in[i].src_reg == 0 && in[i].imm == BPF_FUNC_perf_event_output) n++;
        return n;
    };
    EXPECT_EQ(perf_outputs(plain->dispatcher()), 0);
    EXPECT_GT(perf_outputs(mon->dispatcher()), 0);
    EXPECT_LT(bpf_program__insn_cnt(plain->dispatcher()), bpf_program__insn_cnt(mon->dispatcher()));
    for (const char* name : {"tcd_mon_ev", "tcd_mon_cpu"}) {
        EXPECT_NE(plain->map(name), nullptr) << name;
        EXPECT_NE(mon->map(name), nullptr) << name;
    }
    auto rodata_size = [](const tcd::DispatcherObject& d) {
        bpf_map* m;
        bpf_object__for_each_map(m, d.obj()) {
            std::string n = bpf_map__name(m);
            if (n.size() >= 7 && n.compare(n.size() - 7, 7, ".rodata") == 0) return bpf_map__value_size(m);
        }
        return 0u;
    };
    EXPECT_EQ(rodata_size(*plain), rodata_size(*mon));
    EXPECT_GT(rodata_size(*plain), 0u);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, EmbeddedDispatchers,
                         ::testing::Values(tcd::Kind{tcd::KeyKind::proto, tcd::Hook::xdp},
                                           tcd::Kind{tcd::KeyKind::port, tcd::Hook::xdp},
                                           tcd::Kind{tcd::KeyKind::proto, tcd::Hook::tc},
                                           tcd::Kind{tcd::KeyKind::port, tcd::Hook::tc}));
