// The network-and-pin-dir fixtures of the e2e tests, made and taken down
// also when an assertion fails:
//   - NetFixture: the namespaces and veths of a TopologySpec, and pin dirs of
//     the test process's own, /sys/fs/bpf/<prefix><pid><suffix> (the Core,
//     veth agreement, kinds, tcx, multiprog and combination tests);
//   - VethTest: a gtest fixture with a pin dir /sys/fs/bpf/STEM<pid> and one
//     namespace PREFIX<pid> holding the veth pair ca/cb, both up (the Apply
//     and Crash tests). TearDown unloads the instance and removes its lock
//     file and the namespace.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/common/commands.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"

namespace tcdtest {

class NetFixture {
public:
    // One pin dir per suffix, none made yet (a leftover of this process's
    // last run is unloaded).
    explicit NetFixture(TopologySpec spec, std::vector<std::string> dir_suffixes = {""}) : net_(spec) {
        for (const auto& s : dir_suffixes)
            dirs_.push_back(locks_.add("/sys/fs/bpf/" + spec.prefix + std::to_string(getpid()) + s));
        unload();
    }
    ~NetFixture() { unload(); }
    NetFixture(const NetFixture&) = delete;
    NetFixture& operator=(const NetFixture&) = delete;

    // Every pin dir's instance unloaded and the dir removed (what unload
    // leaves of a damaged one too).
    void unload() const {
        for (const auto& d : dirs_) sh(std::string(TCD_BIN) + " -q -d " + d + " unload; rm -rf " + d);
    }
    bool ok() const { return net_.ok() && error_.empty(); }
    const std::string& error() const { return net_.ok() ? error_ : net_.error(); }
    // A step after the topology failed (resolving neighbours): ok() is false.
    void failed(std::string why) { error_ = std::move(why); }
    const std::string& ns(const std::string& tag) const { return net_.ns(tag); }
    const std::string& a() const { return net_.ns("a"); }
    const std::string& b() const { return net_.ns("b"); }
    const std::string& dir(size_t i = 0) const { return dirs_.at(i); }
    std::string in_ns(const std::string& ns, const std::string& cmd) const { return in_netns(ns, cmd); }

    // "tcd -d DIR ARGS" on the first pin dir, or on dir.
    Cmd tcd(const std::string& args) const { return tcd_on(dir(), args); }
    nlohmann::json tcd_json(const std::string& args) const { return tcd_json_on(dir(), args); }
    Cmd tcd(const std::string& dir, const std::string& args) const { return tcd_on(dir, args); }
    nlohmann::json tcd_json(const std::string& dir, const std::string& args) const { return tcd_json_on(dir, args); }

private:
    LockFiles locks_;  // goes last, after the destructor's unload
    Topology net_;
    std::vector<std::string> dirs_;
    std::string error_;
};

// A NetFixture or a skip (no kernel to test on) or a failed assertion (it
// could not be built).
#define NET_FIXTURE(type, p, ...) \
    TCD_REQUIRE_KERNEL();         \
    type p{__VA_ARGS__};          \
    ASSERT_TRUE(p.ok()) << "could not build the veth pair: " << p.error()

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
