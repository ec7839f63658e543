// The test knob TCD_TEST_NO_TCX: while a NoTcx is alive, the tcd commands a
// test runs (and tcd::attach in the test process) attach tc instances through
// the clsact qdisc, as on a kernel without tcx links.
#pragma once

#include <cstdlib>

namespace tcdtest {

class NoTcx {
public:
    NoTcx() { ::setenv("TCD_TEST_NO_TCX", "1", 1); }
    ~NoTcx() { ::unsetenv("TCD_TEST_NO_TCX"); }
    NoTcx(const NoTcx&) = delete;
    NoTcx& operator=(const NoTcx&) = delete;
};

}  // namespace tcdtest
