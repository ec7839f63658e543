// A dispatcher instance in a pin dir of the test's own, wired
// 6 -> tcp_handler, 17 -> udp_handler, 47 -> drop; unloaded again whatever
// happens.
#pragma once

#include <optional>
#include <string>

#include "core/instance.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "tests/common/kernel.h"

namespace tcdtest {

class TestInstance {

public:
    TestInstance(const std::string& tag, tcd::MissAction miss) : dir_("/sys/fs/bpf/" + unique_name(tag)) {
        (void)tcd::unload(dir_);
        auto r = tcd::load(dir_, {miss, false});
        if (!r) {
            error_ = r.error().message();
            return;
        }
        auto in = tcd::Instance::open(dir_);
        if (!in) {
            error_ = in.error().message();
            return;
        }
        for (auto [key, name] : {std::pair{6u, "tcp_handler"}, {17u, "udp_handler"}, {47u, "drop"}}) {
            auto spec = tcd::parse_handler_spec(name);
            auto s = tcd::set_handler(*in, key, *spec);
            if (!s) error_ = s.error().message();
        }
        in_.emplace(std::move(*in));
    }
    ~TestInstance() { (void)tcd::unload(dir_); }
    const std::string& error() const { return error_; }
    const tcd::Instance& in() const { return *in_; }
    const std::string& dir() const { return dir_; }

private:
    std::string dir_;
    std::string error_;
    std::optional<tcd::Instance> in_;
};


}  // namespace tcdtest
