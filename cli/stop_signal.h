// Ctrl-C and SIGTERM end a command that runs until told (stats --watch,
// monitor) with status 0: while a StopOnSignal lives, they set a flag that
// stopped() reads, and the command's loop ends at its next turn; the old
// handlers come back with its end.
#pragma once

#include <csignal>

namespace tcd::cli {

class StopOnSignal {
public:
    StopOnSignal() {
        flag() = 0;
        struct sigaction sa {};
        sa.sa_handler = [](int) { flag() = 1; };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int_);
        sigaction(SIGTERM, &sa, &old_term_);
    }
    ~StopOnSignal() {
        sigaction(SIGINT, &old_int_, nullptr);
        sigaction(SIGTERM, &old_term_, nullptr);
    }
    StopOnSignal(const StopOnSignal&) = delete;
    StopOnSignal& operator=(const StopOnSignal&) = delete;
    bool stopped() const { return flag() != 0; }

private:
    static volatile sig_atomic_t& flag() {
        static volatile sig_atomic_t stop = 0;
        return stop;
    }
    struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace tcd::cli
