// read_stats sums every possible CPU's row; reset_stats zeroes them all.
// Values written straight into the pinned per-CPU map, distinct per CPU.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/stats.h"
#include "tcd/shared.h"
#include "tests/common/instance.h"
#include "tests/common/kernel.h"

namespace {

using namespace tcdtest;

// Row r, CPU c: packets r*1000+c+1, bytes 64 times that, missed c (key rows).
tcd_counters value(uint32_t row, int cpu) {
    uint64_t p = uint64_t(row) * 1000 + uint64_t(cpu) + 1;
    return {p, p * 64, row < TCD_JT_ENTRIES ? uint64_t(cpu) : 0};
}

TEST(Stats, ReadSumsDistinctPerCpuValues) {
    TCD_REQUIRE_KERNEL();
    TestInstance inst("tcdst_sum", tcd::MissAction::pass);
    ASSERT_EQ(inst.error(), "");
    int ncpus = libbpf_num_possible_cpus();
    ASSERT_GT(ncpus, 0);
    const std::vector<uint32_t> rows = {0, 6, 17, 255, TCD_SLOT_NON_IP, TCD_SLOT_MALFORMED};
    for (uint32_t row : rows) {
        std::vector<tcd_counters> v(ncpus);
        for (int c = 0; c < ncpus; c++) v[c] = value(row, c);
        ASSERT_EQ(bpf_map_update_elem(inst.in().stats_fd(), &row, v.data(), BPF_ANY), 0) << row;
    }
    auto s = tcd::read_stats(inst.in().stats_fd());
    ASSERT_TRUE(s) << s.error().message();
    auto want = [&](uint32_t row) {
        tcd::Counters c;
        for (int cpu = 0; cpu < ncpus; cpu++) {
            auto v = value(row, cpu);
            c.packets += v.packets;
            c.bytes += v.bytes;
            c.missed += v.missed;
        }
        return c;
    };
    for (uint32_t row : rows) {
        SCOPED_TRACE("row " + std::to_string(row));
        tcd::Counters got = row == TCD_SLOT_NON_IP      ? s->non_ip
                            : row == TCD_SLOT_MALFORMED ? s->malformed
                                                        : s->keys[row];
        EXPECT_EQ(got.packets, want(row).packets);
        EXPECT_EQ(got.bytes, want(row).bytes);
        EXPECT_EQ(got.missed, want(row).missed);
    }
    // Rows not written are zero; the total is the sum of the written ones.
    tcd::Counters total;
    for (uint32_t row : rows) total += want(row);
    for (uint32_t k = 0; k < TCD_JT_ENTRIES; k++)
        if (k != 0 && k != 6 && k != 17 && k != 255) EXPECT_EQ(s->keys[k].packets, 0u) << k;
    EXPECT_EQ(s->total().packets, total.packets);
    EXPECT_EQ(s->total().bytes, total.bytes);
    EXPECT_EQ(s->total().missed, total.missed);
    if (ncpus > 1) EXPECT_GT(s->keys[6].packets, uint64_t(ncpus) * 6000);  // more than one CPU's row

    // reset_stats zeroes every row on every CPU.
    ASSERT_TRUE(tcd::reset_stats(inst.in().stats_fd()));
    for (uint32_t row : rows) {
        std::vector<tcd_counters> v(ncpus);
        ASSERT_EQ(bpf_map_lookup_elem(inst.in().stats_fd(), &row, v.data()), 0);
        for (int c = 0; c < ncpus; c++) {
            EXPECT_EQ(v[c].packets, 0u) << row << " cpu " << c;
            EXPECT_EQ(v[c].bytes, 0u) << row << " cpu " << c;
            EXPECT_EQ(v[c].missed, 0u) << row << " cpu " << c;
        }
    }
    auto z = tcd::read_stats(inst.in().stats_fd());
    ASSERT_TRUE(z);
    EXPECT_EQ(z->total().packets, 0u);
    EXPECT_EQ(z->total().bytes, 0u);
}

}  // namespace
