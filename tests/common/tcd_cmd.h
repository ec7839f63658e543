// The tcd binary on one pin dir, for the e2e tests: its result, or its -j
// output parsed (a failure is a test failure, and null).
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/common/shell.h"

namespace tcdtest {

inline Cmd tcd(const std::string& dir, const std::string& args) {
    return sh(std::string(TCD_BIN) + " -d " + dir + " " + args);
}

inline nlohmann::json tcd_json(const std::string& dir, const std::string& args) {
    Cmd c = tcd(dir, "-j " + args);
    EXPECT_EQ(c.rc, 0) << args << ": " << c.err;
    return nlohmann::json::parse(c.out.empty() ? "null" : c.out);
}

}  // namespace tcdtest
