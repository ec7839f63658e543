// Waiting for a condition instead of sleeping for a guess: wait_until polls
// a predicate with a short backoff (1 ms, doubling to 100 ms) until it holds
// or the timeout passes. The timeout only bounds a failing wait, so make it
// generous; a passing one returns as soon as the condition holds.
//
//   ASSERT_TRUE(wait_until([&] { return lock_holder() == pid; }, 5s, "the holder to take the lock"));
//   (void)wait_until([&] { ... }, 10s, "...");  // a later assertion reports the values
//
// On timeout the result says what was waited for, for how long and how many
// times the predicate was asked. The predicate is asked at least once, and
// once more at the deadline.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

namespace tcdtest {

template <class Pred>
[[nodiscard]] ::testing::AssertionResult wait_until(Pred&& pred, std::chrono::nanoseconds timeout,
                                                    const std::string& what) {
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    std::chrono::nanoseconds pause = std::chrono::milliseconds(1);
    const std::chrono::nanoseconds max_pause = std::chrono::milliseconds(100);
    for (int polls = 1;; polls++) {
        if (pred()) return ::testing::AssertionSuccess();
        auto now = Clock::now();
        if (now >= deadline) {
            double waited = std::chrono::duration<double>(now - start).count();
            return ::testing::AssertionFailure() << "timed out after " << waited << " s (" << polls
                                                 << (polls == 1 ? " try" : " tries") << ") waiting for " << what;
        }
        std::this_thread::sleep_for(std::min(pause, std::chrono::nanoseconds(deadline - now)));
        pause = std::min(pause * 2, max_pause);
    }
}

}  // namespace tcdtest
