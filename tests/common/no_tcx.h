// The test knob TCD_TEST_NO_TCX: while a NoTcx is alive, the tcd commands a
// test runs (and tcd::attach in the test process) attach tc instances through
// the clsact qdisc, as on a kernel without tcx links.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>

#include "core/attach.h"

namespace tcdtest {

class NoTcx {
public:
    NoTcx() { ::setenv("TCD_TEST_NO_TCX", "1", 1); }
    ~NoTcx() { ::unsetenv("TCD_TEST_NO_TCX"); }
    NoTcx(const NoTcx&) = delete;
    NoTcx& operator=(const NoTcx&) = delete;
};

}  // namespace tcdtest

// A test of tcx links themselves skips on a kernel without them (Debian 12's
// 6.1 in scripts/vm-test.sh): there is nothing to test, and the same run
// tests them on the host's kernel. The fallback tc takes there is clsact,
// tested on every kernel by TcxE2E.ClsactFallbackWithoutTcx and the NoTcx
// tests.
#define REQUIRE_TCX()                                                                        \
    do {                                                                                     \
        if (!::tcd::tcx_supported())                                                         \
            GTEST_SKIP() << "this kernel has no tcx links (Linux 6.6 brings them): tested on " \
                            "kernels that have them";                                          \
    } while (0)
