// tests/common/wait.h: wait_until returns as soon as the condition holds,
// and on a timeout says what it waited for.
#include "tests/common/wait.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;
using tcdtest::wait_until;

TEST(WaitUntil, ReturnsOnceTheConditionHolds) {
    int asked = 0;
    auto r = wait_until([&] { return ++asked == 3; }, 60s, "the third question");
    EXPECT_TRUE(r) << r.message();
    EXPECT_EQ(asked, 3);  // not asked again once it held
}

TEST(WaitUntil, AsksAtLeastOnceWithNoTime) {
    int asked = 0;
    EXPECT_TRUE(wait_until([&] { return ++asked > 0; }, 0s, "anything"));
    EXPECT_EQ(asked, 1);
}

TEST(WaitUntil, TimeoutNamesWhatItWaitedFor) {
    int asked = 0;
    auto r = wait_until([&] { return ++asked < 0; }, 20ms, "a counter to go below zero");
    ASSERT_FALSE(r);
    std::string m = r.message();
    EXPECT_NE(m.find("timed out after "), std::string::npos) << m;
    EXPECT_NE(m.find("waiting for a counter to go below zero"), std::string::npos) << m;
    EXPECT_NE(m.find("(" + std::to_string(asked) + " tries)"), std::string::npos) << m;
    EXPECT_GE(asked, 2);  // once at the start, once at the deadline
}

}  // namespace
