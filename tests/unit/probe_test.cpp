// Kernel feature probes, the part without a kernel: what a missing feature's
// error says, and that an answer (here set by the test) decides require().
#include <gtest/gtest.h>

#include <string>

#include "core/probe.h"

using tcd::probe::Feature;

namespace {
struct Overridden {
    Feature f;
    Overridden(Feature f, bool v) : f(f) { tcd::probe::override_for_test(f, v); }
    ~Overridden() { tcd::probe::override_for_test(f, std::nullopt); }
};
}  // namespace

TEST(Probe, EachFeatureNamesItsFlagAndRelease) {
    EXPECT_EQ(std::string(tcd::probe::info(Feature::xdp_frags).name), "the XDP frags flag (BPF_F_XDP_HAS_FRAGS)");
    EXPECT_EQ(std::string(tcd::probe::info(Feature::xdp_frags).since), "5.18");
    EXPECT_EQ(std::string(tcd::probe::info(Feature::percpu_array_batch).since), "5.13");
    EXPECT_EQ(std::string(tcd::probe::info(Feature::tcx).since), "6.6");
}

TEST(Probe, MissingFeatureMessage) {
    auto e = tcd::probe::missing(Feature::tcx, "attach veth0");
    EXPECT_EQ(e.message(),
              "attach veth0: this kernel lacks tcx links (BPF_TCX_INGRESS/BPF_TCX_EGRESS) (Linux 6.6 brings it) "
              "(attach with tc clsact (cls_bpf) instead)");
    EXPECT_EQ(e.code, tcd::ExitCode::failed);
    EXPECT_EQ(tcd::probe::missing(Feature::xdp_frags, "load", "my hint").message(),
              "load: this kernel lacks the XDP frags flag (BPF_F_XDP_HAS_FRAGS) (Linux 5.18 brings it) (my hint)");
    // Not a kernel feature alone (the installed libxdp decides too): no release.
    EXPECT_EQ(tcd::probe::missing(Feature::libxdp_entry, "attach vb").message(),
              "attach vb: this system lacks a libxdp dispatcher that takes tcd's entry shim (tcd attaches its "
              "dispatcher alone on the interface)");
}

TEST(Probe, RequireFollowsTheAnswer) {
    {
        Overridden o(Feature::tcx, false);
        auto r = tcd::probe::require(Feature::tcx, "attach lo");
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message().find("Linux 6.6 brings it"), std::string::npos) << r.error().message();
        EXPECT_EQ(tcd::probe::has(Feature::tcx), false);
    }
    {
        Overridden o(Feature::tcx, true);
        EXPECT_TRUE(tcd::probe::require(Feature::tcx, "attach lo"));
    }
    Overridden o(Feature::percpu_array_batch, false);
    EXPECT_EQ(tcd::probe::has(Feature::percpu_array_batch), false);
}
