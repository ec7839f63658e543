// A test with a pin dir of its own, /sys/fs/bpf/STEM<pid>, and one network
// namespace PREFIX<pid> holding the veth pair ca/cb, both up (the Apply and
// Crash tests). TearDown unloads the instance and removes its lock file and
// the namespace, also when an assertion failed.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"

namespace tcdtest {

class VethTest : public ::testing::Test {
protected:
    VethTest(const std::string& stem, std::string prefix)
        : id_(std::to_string(getpid())), dir_("/sys/fs/bpf/" + stem + id_), prefix_(std::move(prefix)) {}
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        made_ = true;
        unload();
        net_.emplace(TopologySpec{.prefix = prefix_, .namespaces = {""}, .veths = {{.a = {"", "ca"}, .b = {"", "cb"}}}});
        ASSERT_TRUE(net_->ok()) << net_->error();
        ns_ = net_->ns();
    }
    void TearDown() override {
        if (!made_) return;  // skipped before it made anything
        unload();
        remove_lock_files();
        net_.reset();
    }
    // What TearDown (and SetUp, for a leftover) takes down.
    virtual void unload() { sh(tcd("-q unload")); }
    virtual void remove_lock_files() { remove_lock_file(dir_); }

    std::string tcd(const std::string& args) const { return std::string(TCD_BIN) + " -d " + dir_ + " " + args; }
    nlohmann::json status() const {
        auto c = sh(tcd("-j status"));
        EXPECT_EQ(c.rc, 0) << c.err;
        return nlohmann::json::parse(c.out.empty() ? "{}" : c.out);
    }

    std::string id_, dir_, ns_;
    std::optional<Topology> net_;

private:
    std::string prefix_;
    bool made_ = false;
};

}  // namespace tcdtest
