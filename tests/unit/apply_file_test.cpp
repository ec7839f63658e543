// apply's file reader without a kernel: the single-instance format as
// before, the instances: list of an instance tree, and each mistake a
// usage error (exit 2) naming the file's line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "core/apply.h"

namespace {

class ApplyFile : public ::testing::Test {
protected:
    void TearDown() override { std::remove(path_.c_str()); }
    tcd::Result<tcd::DesiredFile> read(const std::string& yaml) {
        std::ofstream(path_) << yaml;
        return tcd::read_desired(path_);
    }
    // The message of a refused file, which must be a usage error.
    std::string refused(const std::string& yaml) {
        auto r = read(yaml);
        EXPECT_FALSE(r) << yaml;
        if (r) return "";
        EXPECT_EQ(r.error().code, tcd::ExitCode::usage) << r.error().message();
        return r.error().message();
    }
    std::string path_ = "/tmp/tcdapplyfile" + std::to_string(getpid()) + ".yaml";
};

TEST_F(ApplyFile, OneInstanceAsBefore) {
    auto f = read("pin_dir: /sys/fs/bpf/x\nkey: port\nwiring:\n  http: pass\n  ssh: /sys/fs/bpf/y\n");
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_FALSE(f->several);
    ASSERT_EQ(f->instances.size(), 1u);
    const auto& d = f->instances[0];
    EXPECT_EQ(d.pin_dir.value_or(""), "/sys/fs/bpf/x");
    EXPECT_EQ(d.kind.key, tcd::KeyKind::port);
    EXPECT_EQ(d.wiring.at("http"), "pass");
    EXPECT_EQ(d.wiring.at("ssh"), "/sys/fs/bpf/y");
    EXPECT_TRUE(d.wiring_to.empty());
    // No pin_dir: -d decides.
    auto none = read("wiring:\n  tcp: tcp_handler\n");
    ASSERT_TRUE(none);
    EXPECT_FALSE(none->instances[0].pin_dir);
}

TEST_F(ApplyFile, InstancesList) {
    auto f = read(
        "instances:\n"
        "  - name: web\n    pin_dir: /sys/fs/bpf/w\n    key: port\n    wiring: {http: pass}\n"
        "  - pin_dir: /sys/fs/bpf/r\n    hook: tc\n    wiring:\n      tcp: {instance: web}\n      udp: udp_handler\n");
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_TRUE(f->several);
    ASSERT_EQ(f->instances.size(), 2u);
    EXPECT_EQ(f->instances[0].name, "web");
    EXPECT_EQ(f->instances[0].line, 2);
    EXPECT_EQ(f->instances[1].name, "");
    EXPECT_EQ(f->instances[1].kind.hook, tcd::Hook::tc);
    EXPECT_EQ(f->instances[1].miss, tcd::MissAction::next);  // tc's default
    EXPECT_EQ(f->instances[1].wiring_to.at("tcp"), "web");
    EXPECT_EQ(f->instances[1].wiring.at("udp"), "udp_handler");
    EXPECT_FALSE(f->instances[1].wiring.count("tcp"));
    auto dirs = tcd::desired_dirs(*f, "/sys/fs/bpf/tcd");
    ASSERT_TRUE(dirs);
    EXPECT_EQ(*dirs, (std::vector<std::string>{"/sys/fs/bpf/w", "/sys/fs/bpf/r"}));
}

TEST_F(ApplyFile, MistakesNameTheirLine) {
    EXPECT_NE(refused("pin_dir: /a\ninstances:\n  - pin_dir: /b\n").find("goes into an entry"), std::string::npos);
    EXPECT_NE(refused("instances:\n  - name: a\n").find("line 2: each entry of instances needs pin_dir"),
              std::string::npos);
    EXPECT_NE(refused("instances: []\n").find("instances must be a list"), std::string::npos);
    EXPECT_NE(refused("instances:\n  - {name: a, pin_dir: /a}\n  - {name: a, pin_dir: /b}\n")
                  .find("two instances are called a"),
              std::string::npos);
    EXPECT_NE(refused("instances:\n  - pin_dir: /a\n    wiring:\n      tcp: {instance: b}\n")
                  .find("line 4: no instance in the file is called b"),
              std::string::npos);
    EXPECT_NE(refused("instances:\n  - pin_dir: /a\n    colour: red\n").find("line 3: unknown field colour"),
              std::string::npos);
    EXPECT_NE(refused("instances:\n  - pin_dir: /a\n    wiring:\n      tcp: {handler: b}\n").find("line 4: a key wires"),
              std::string::npos);
    // One instance: {instance: } has nothing to name.
    EXPECT_NE(refused("wiring:\n  tcp: {instance: b}\n").find("is for files with an instances: list"),
              std::string::npos);
    // One key twice, by name and number.
    EXPECT_NE(refused("wiring:\n  tcp: pass\n  6: drop\n").find("key 6 is wired twice (also as tcp)"),
              std::string::npos);
    // A field given twice is refused, naming both lines (yaml-cpp keeps both
    // and a lookup took the first: pin_dir twice applied the first silently).
    EXPECT_NE(refused("pin_dir: /sys/fs/bpf/a\nkey: port\npin_dir: /sys/fs/bpf/b\n")
                  .find("line 3: pin_dir given twice (also on line 1)"),
              std::string::npos);
    EXPECT_NE(refused("instances:\n  - pin_dir: /a\n    hook: tc\n    pin_dir: /b\n")
                  .find("line 4: pin_dir given twice (also on line 2)"),
              std::string::npos);
    EXPECT_NE(refused("wiring:\n  tcp: pass\n  tcp: drop\n").find("line 3: tcp given twice (also on line 2)"),
              std::string::npos);
    EXPECT_NE(refused("interfaces:\n  - name: a\n    name: b\n").find("line 3: name given twice (also on line 2)"),
              std::string::npos);
    // Two instances in one directory, however spelled.
    auto f = read("instances:\n  - pin_dir: /sys/fs/bpf/a\n  - pin_dir: /sys/fs/bpf//a/\n");
    ASSERT_TRUE(f) << f.error().message();
    auto dirs = tcd::desired_dirs(*f, "/sys/fs/bpf/tcd");
    ASSERT_FALSE(dirs);
    EXPECT_EQ(dirs.error().code, tcd::ExitCode::usage);
    EXPECT_NE(dirs.error().message().find("line 3: two instances have the pin dir /sys/fs/bpf/a"), std::string::npos)
        << dirs.error().message();
}

}  // namespace
