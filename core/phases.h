// Where a command's time goes, phase by phase, for tcd_bench's breakdown of a
// respecialise (open, verify+load, pin, swap, parents). Off unless a table is
// installed: then each mark costs one branch.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace tcd::phases {

// Phase name -> milliseconds, in the order first marked; a phase marked
// again adds to its entry.
using Table = std::vector<std::pair<std::string, double>>;

inline Table* installed = nullptr;

// Records into t (nullptr: off). Not thread-safe; the bench's alone.
inline void record_into(Table* t) { installed = t; }

// Marks the end of a phase: the time since it was made or last marked.
class Timer {
public:
    Timer() : last_(installed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}) {}
    void mark(const char* phase) {
        if (!installed) return;
        auto now = std::chrono::steady_clock::now();
        double ms = std::chrono::duration<double, std::milli>(now - last_).count();
        last_ = now;
        for (auto& [name, t] : *installed)
            if (name == phase) {
                t += ms;
                return;
            }
        installed->emplace_back(phase, ms);
    }

private:
    std::chrono::steady_clock::time_point last_;
};

}  // namespace tcd::phases
