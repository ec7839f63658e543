// Gate for tests that need the kernel (root, bpffs, BPF_PROG_TEST_RUN,
// veth/netns). Outside CI they skip with the reason; with CI=true a skip
// would hide the point of the suite, so it is a failure.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "core/bpffs.h"

namespace tcdtest {

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string(ci) == "true";
}

inline std::optional<std::string> kernel_unavailable() {
    if (geteuid() != 0) return "needs root (BPF, bpffs, netns)";
    if (!tcd::bpffs::is_bpffs(tcd::bpffs::kMountPoint)) {
        if (auto r = tcd::bpffs::ensure_mounted(tcd::bpffs::kMountPoint); !r)
            return "bpffs not mounted at /sys/fs/bpf: " + r.error().message();
    }
    return std::nullopt;
}

inline std::string unique_name(const std::string& tag) {
    return tag + "_" + std::to_string(getpid());
}

}  // namespace tcdtest

#define TCD_REQUIRE_KERNEL()                                                        \
    do {                                                                            \
        if (auto why_ = ::tcdtest::kernel_unavailable()) {                          \
            if (::tcdtest::in_ci()) FAIL() << "kernel test cannot run in CI: " << *why_; \
            GTEST_SKIP() << *why_;                                                  \
        }                                                                           \
    } while (0)
