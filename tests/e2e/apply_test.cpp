// tcd apply: the shipped descriptions (deploy/tcd.yaml, the DaemonSet's
// ConfigMap) are valid and plan what they say; apply converges: a mode
// change re-attaches, wiring given as a bpffs path or id:N is compared by
// program id, a second run finds nothing to do, a bad file changes nothing.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"

namespace {

using nlohmann::json;
using tcdtest::sh;

std::string read(const std::string& path) { return tcdtest::slurp(path); }

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

std::set<std::string> changes(const json& j) {
    std::set<std::string> out;
    for (const auto& c : j["changes"]) out.insert(c.get<std::string>());
    return out;
}

class Apply : public ::testing::Test {
protected:
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        id_ = std::to_string(getpid());
        dir_ = "/sys/fs/bpf/tcdapply" + id_;
        file_ = "/tmp/tcdapply" + id_ + ".yaml";
        unload();
        // One namespace "tcdap<pid>" with the veth pair ca/cb, both up.
        net_.emplace(tcdtest::TopologySpec{
            .prefix = "tcdap", .namespaces = {""}, .veths = {{.a = {"", "ca"}, .b = {"", "cb"}}}});
        ASSERT_TRUE(net_->ok()) << net_->error();
        ns_ = net_->ns();
    }
    void TearDown() override {
        if (dir_.empty()) return;  // skipped before it made anything
        unload();
        tcdtest::remove_lock_file(dir_);
        net_.reset();
        std::remove(file_.c_str());
    }
    void unload() { sh(tcd("-q unload")); }
    std::string tcd(const std::string& args) const { return std::string(TCD_BIN) + " -d " + dir_ + " " + args; }
    // apply -f FILE (the text), as JSON.
    json apply(const std::string& yaml, bool dry = false, int want_rc = 0) {
        std::ofstream(file_) << yaml;
        auto c = sh(tcd("-j apply " + std::string(dry ? "--dry-run " : "") + "-f " + file_));
        EXPECT_EQ(c.rc, want_rc) << yaml << "\n" << c.err;
        if (c.rc != 0 || c.out.empty()) return json::object();
        return json::parse(c.out);
    }
    json status() const {
        auto c = sh(tcd("-j status"));
        EXPECT_EQ(c.rc, 0) << c.err;
        return json::parse(c.out.empty() ? "{}" : c.out);
    }
    std::string id_, dir_, ns_, file_;
    std::optional<tcdtest::Topology> net_;
};

// deploy/tcd.yaml as shipped, with the paths of this build and machine: the
// installed example object is the one built here.
TEST_F(Apply, DeployExampleDryRun) {
    std::string y = read(std::string(TCD_SOURCE_DIR) + "/deploy/tcd.yaml");
    ASSERT_NE(y.find("/usr/share/doc/tcd/examples/ports.bpf.o"), std::string::npos);
    replace_all(y, "/usr/share/doc/tcd/examples/ports.bpf.o", std::string(TCD_BPF_OBJ_DIR) + "/ports.bpf.o");
    replace_all(y, "pin_dir: /sys/fs/bpf/tcd ", "pin_dir: " + dir_ + " ");
    ASSERT_NE(y.find(dir_), std::string::npos);
    json j = apply(y, true);
    EXPECT_EQ(j.value("pin_dir", ""), dir_);
    EXPECT_EQ(j.value("dry_run", false), true);
    auto c = changes(j);
    EXPECT_TRUE(c.count("load --key proto --hook xdp --miss-action pass")) << j.dump();
    EXPECT_TRUE(c.count("handler load " + std::string(TCD_BPF_OBJ_DIR) + "/ports.bpf.o --prog tcp_ports --prog port22"))
        << j.dump();
    EXPECT_TRUE(c.count("map set 6 tcp_ports")) << j.dump();
    EXPECT_TRUE(c.count("map set 17 udp_handler")) << j.dump();
    EXPECT_TRUE(c.count("map set 254 port22")) << j.dump();
    EXPECT_TRUE(c.count("attach eth0 --mode auto")) << j.dump();
    EXPECT_FALSE(tcd::bpffs::exists(dir_));  // a dry run makes nothing
}

// The description in the DaemonSet's ConfigMap (data: tcd.yaml).
TEST_F(Apply, DaemonSetConfigMapDryRun) {
    std::string body;
    for (const auto& doc : YAML::LoadAllFromFile(std::string(TCD_SOURCE_DIR) + "/deploy/daemonset.yaml"))
        if (doc["kind"] && doc["kind"].as<std::string>() == "ConfigMap") body = doc["data"]["tcd.yaml"].as<std::string>();
    ASSERT_FALSE(body.empty()) << "no ConfigMap with data: tcd.yaml in deploy/daemonset.yaml";
    json j = apply(body, true);
    EXPECT_EQ(j.value("pin_dir", ""), dir_);  // none in the file: -d
    auto c = changes(j);
    EXPECT_TRUE(c.count("load --key proto --hook xdp --miss-action pass")) << j.dump();
    EXPECT_TRUE(c.count("map set 6 tcp_handler")) << j.dump();
    EXPECT_TRUE(c.count("map set 17 udp_handler")) << j.dump();
    EXPECT_TRUE(c.count("attach eth0 --mode auto")) << j.dump();
    EXPECT_FALSE(tcd::bpffs::exists(dir_));
}

TEST_F(Apply, ConvergesOnModeAndProgramIds) {
    auto file = [&](const std::string& mode, const std::string& extra) {
        return "pin_dir: " + dir_ + "\nwiring:\n  tcp: tcp_handler\n  udp: " + dir_ + "/udp_handler\n" + extra +
               "interfaces:\n  - name: ca\n    netns: " + ns_ + "\n    mode: " + mode + "\n";
    };
    json first = apply(file("skb", ""));
    EXPECT_GE(first["changes"].size(), 4u) << first.dump();
    json st = status();
    ASSERT_EQ(st["attached"].size(), 1u) << st.dump();
    EXPECT_EQ(st["attached"][0].value("mode", ""), "skb");
    // Again: nothing (the udp key is given as a bpffs path, compared by id).
    json again = apply(file("skb", ""));
    EXPECT_TRUE(again["changes"].empty()) << again.dump();

    // The mode changed in the file: re-attached in the new mode, once.
    json moved = apply(file("native", ""));
    ASSERT_EQ(moved["changes"].size(), 1u) << moved.dump();
    EXPECT_EQ(moved["changes"][0].get<std::string>().rfind("re-attach ca --netns " + ns_ + " --mode native", 0), 0u)
        << moved.dump();
    st = status();
    ASSERT_EQ(st["attached"].size(), 1u) << st.dump();
    EXPECT_EQ(st["attached"][0].value("mode", ""), "native");
    EXPECT_TRUE(apply(file("native", ""))["changes"].empty());
    // auto accepts whatever mode it runs in.
    EXPECT_TRUE(apply(file("auto", ""))["changes"].empty());

    // A key given as id:N.
    uint32_t drop_id = 0;
    for (const auto& h : st["handlers"])
        if (h["name"] == "drop") drop_id = h["prog_id"];
    ASSERT_NE(drop_id, 0u);
    std::string with_id = "  47: id:" + std::to_string(drop_id) + "\n";
    json wired = apply(file("native", with_id));
    EXPECT_EQ(changes(wired), (std::set<std::string>{"map set 47 id:" + std::to_string(drop_id)})) << wired.dump();
    EXPECT_TRUE(apply(file("native", with_id))["changes"].empty());

    // A bad file changes nothing.
    json before = status();
    apply(file("turbo", with_id), false, 2);
    apply("pin_dir: " + dir_ + "\nwiring:\n  300: drop\n", false, 2);
    apply("pin_dir: " + dir_ + "\nwiring: [tcp]\n", false, 2);
    EXPECT_EQ(status().dump(), before.dump());
}

}  // namespace
