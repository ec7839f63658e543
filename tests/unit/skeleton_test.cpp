// The embedded dispatcher opens (no kernel needed to parse it) and has the
// programs and maps the pin layout names, within the kernel's name limit.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/instance.h"
#include "tcd_proto.skel.h"

TEST(Skeleton, OpensWithNamesWithinLimit) {
    auto skel = tcd::open_skeleton();
    ASSERT_TRUE(skel) << skel.error().message();
    std::set<std::string> progs, maps;
    bpf_program* p;
    bpf_object__for_each_program(p, (*skel)->obj) progs.insert(bpf_program__name(p));
    bpf_map* m;
    bpf_object__for_each_map(m, (*skel)->obj) maps.insert(bpf_map__name(m));
    for (const char* name : {"xdp_dispatch", "tcp_handler", "udp_handler", "pass", "drop"})
        EXPECT_TRUE(progs.count(name)) << name;
    for (const char* name : {"jt", "proto_stats"}) EXPECT_TRUE(maps.count(name)) << name;
    for (const auto& n : progs) EXPECT_LE(n.size(), 15u) << n;
    for (const auto& n : maps) EXPECT_LE(n.size(), 15u) << n;
    EXPECT_EQ(bpf_map__type((*skel)->maps.jt), BPF_MAP_TYPE_PROG_ARRAY);
    EXPECT_EQ(bpf_map__max_entries((*skel)->maps.jt), 256u);
    EXPECT_EQ(bpf_map__type((*skel)->maps.proto_stats), BPF_MAP_TYPE_PERCPU_ARRAY);
    EXPECT_EQ(bpf_program__type((*skel)->progs.xdp_dispatch), BPF_PROG_TYPE_XDP);
}
