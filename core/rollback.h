// Undo on the way out of a change made in several steps: each step that
// changes something pushes how to take it back; commit() keeps them all;
// otherwise leaving the scope (any early return) takes them back, last
// first. A kill skips it: what a kill leaves is for recover_interrupted and
// the records the steps write (docs/datapath.md).
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace tcd {

class Rollback {
public:
    Rollback() = default;
    Rollback(const Rollback&) = delete;
    Rollback& operator=(const Rollback&) = delete;
    ~Rollback() { run(); }

    // How to take back the step just made (a failing undo has nothing to
    // report to: it does what it can).
    void push(std::function<void()> undo) { undos_.push_back(std::move(undo)); }
    // Everything made stays.
    void commit() { undos_.clear(); }
    // The steps taken back now, last first (where what follows must see the
    // state from before).
    void run() {
        while (!undos_.empty()) {
            auto undo = std::move(undos_.back());
            undos_.pop_back();
            undo();
        }
    }

private:
    std::vector<std::function<void()>> undos_;
};

}  // namespace tcd
