// Kernel test runner: GoogleTest plus the differential test's knobs,
//   tcd_kernel_tests [--frames N] [--seed S] [gtest flags]
// (also TCD_DIFF_FRAMES / TCD_DIFF_SEED in the environment).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/kernel/knobs.h"

namespace tcdtest {
uint64_t g_frames = 1000000;
uint64_t g_seed = 0;
bool g_seed_given = false;
}  // namespace tcdtest

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (const char* f = std::getenv("TCD_DIFF_FRAMES")) tcdtest::g_frames = std::strtoull(f, nullptr, 0);
    if (const char* s = std::getenv("TCD_DIFF_SEED")) {
        tcdtest::g_seed = std::strtoull(s, nullptr, 0);
        tcdtest::g_seed_given = true;
    }
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if ((a == "--frames" || a == "--seed") && i + 1 < argc) {
            uint64_t v = std::strtoull(argv[++i], nullptr, 0);
            if (a == "--frames") {
                tcdtest::g_frames = v;
            } else {
                tcdtest::g_seed = v;
                tcdtest::g_seed_given = true;
            }
        } else {
            std::fprintf(stderr, "tcd_kernel_tests: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    return RUN_ALL_TESTS();
}
