// Jump-table compatibility: every differing field named, with both values, in
// one message (the pure part of check_compatible; no kernel).
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include "core/jumptable.h"

using tcd::CompatTraits;
using tcd::compat_differences;

TEST(Compat, SameTraitsNoDifference) {
    CompatTraits t{BPF_PROG_TYPE_XDP, true, BPF_XDP, false};
    EXPECT_TRUE(compat_differences(t, t).empty());
}

TEST(Compat, JitStatusBranch) {
    CompatTraits handler{BPF_PROG_TYPE_XDP, false, BPF_XDP, false};
    CompatTraits table{BPF_PROG_TYPE_XDP, true, BPF_XDP, false};
    EXPECT_EQ(compat_differences(handler, table),
              std::vector<std::string>{"JIT status differs: handler interpreted, jump table jited"});
    EXPECT_EQ(compat_differences(table, handler),
              std::vector<std::string>{"JIT status differs: handler jited, jump table interpreted"});
}

TEST(Compat, EveryDifferingFieldNamed) {
    CompatTraits handler{BPF_PROG_TYPE_SCHED_CLS, false, BPF_XDP_DEVMAP, true};
    CompatTraits table{BPF_PROG_TYPE_XDP, true, BPF_XDP, false};
    EXPECT_EQ(compat_differences(handler, table),
              (std::vector<std::string>{
                  "program type is sched_cls, the jump table takes xdp",
                  "JIT status differs: handler interpreted, jump table jited",
                  "frags flag differs: handler frags-aware (xdp.frags), jump table not frags-aware",
                  "expected attach type differs: handler xdp_devmap, jump table xdp",
              }));
}

TEST(Compat, FragsAndAttachTypeTogether) {
    CompatTraits handler{BPF_PROG_TYPE_XDP, true, BPF_XDP_CPUMAP, true};
    CompatTraits table{BPF_PROG_TYPE_XDP, true, BPF_XDP, false};
    auto d = compat_differences(handler, table);
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0], "frags flag differs: handler frags-aware (xdp.frags), jump table not frags-aware");
    EXPECT_EQ(d[1], "expected attach type differs: handler xdp_cpumap, jump table xdp");
}

TEST(Compat, UnknownTraitsAreNotGuessed) {
    // Attach type and frags are only compared when both sides are known.
    CompatTraits handler{BPF_PROG_TYPE_XDP, true, std::nullopt, std::nullopt};
    CompatTraits table{BPF_PROG_TYPE_XDP, true, BPF_XDP, false};
    EXPECT_TRUE(compat_differences(handler, table).empty());
}

TEST(Compat, FreplaceOwnerNamesTheAttachTypeCheck) {
    // A jump table owned by a freplace program (libxdp's dispatcher runs
    // programs as freplace extensions): its expected attach type is none.
    CompatTraits handler{BPF_PROG_TYPE_XDP, true, BPF_XDP, false};
    CompatTraits table{BPF_PROG_TYPE_XDP, true, 0u, false, true};
    auto d = compat_differences(handler, table);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0],
              "expected attach type differs: handler xdp, jump table none (the jump table's owner is a freplace "
              "program, as under libxdp's dispatcher; kernels with the prog-array attach-type check, Linux 6.17 "
              "and its stable backports such as Debian 12's 6.1.1xx, take only programs with the owner's expected "
              "attach type)");
    // Not a freplace owner: no such explanation, and 0 is still "none".
    table.freplace = false;
    EXPECT_EQ(compat_differences(handler, table),
              std::vector<std::string>{"expected attach type differs: handler xdp, jump table none"});
}
