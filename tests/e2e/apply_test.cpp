// tcd apply: the shipped descriptions (deploy/tcd.yaml, the DaemonSet's
// ConfigMap, examples/tree.yaml) are valid and plan what they say; apply
// converges: a mode change re-attaches, wiring given as a bpffs path or id:N
// is compared by program id, a second run finds nothing to do, a bad file
// changes nothing. Instance trees (several instances in one file): children
// before parents, a second run changes nothing, one edit changes one thing, a
// loop or a chain past 33 tail calls is refused before anything is made, and
// a step that fails half-way leaves every instance as it was, and an apply
// killed at any step is finished by the next.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
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
#include "tests/common/veth_test.h"

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

// Pin dir tcdapply<pid> (and the tree tests' r, w, x after it), namespace
// tcdap<pid> with ca/cb (tests/common/veth_test.h), and the file apply reads.
class Apply : public tcdtest::VethTest {
protected:
    Apply()
        : VethTest("tcdapply", "tcdap"),
          file_("/tmp/tcdapply" + id_ + ".yaml"),
          root_(dir_ + "r"),
          web_(dir_ + "w"),
          extra_(dir_ + "x") {}
    void TearDown() override {
        VethTest::TearDown();
        std::remove(file_.c_str());
    }
    // Parents first (a wired child is not unloaded): the tree tests' root,
    // then its children.
    void unload() override {
        for (const auto& d : {root_, dir_, web_, extra_}) sh(std::string(TCD_BIN) + " -q -d " + d + " unload --force");
    }
    // dir_ and every pin dir named after it (the tree tests' r, w, x, dN, nN).
    void remove_lock_files() override {
        std::string own = tcd::InstanceLock::path_for(dir_);
        std::string stem = own.substr(0, own.size() - std::string(".lock").size());
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(own).parent_path(), ec))
            if (e.path().string().rfind(stem, 0) == 0) std::filesystem::remove(e.path(), ec);
    }
    // apply -f FILE (the text), as JSON.
    json apply(const std::string& yaml, bool dry = false, int want_rc = 0) {
        std::ofstream(file_) << yaml;
        auto c = sh(tcd("-j apply " + std::string(dry ? "--dry-run " : "") + "-f " + file_));
        EXPECT_EQ(c.rc, want_rc) << yaml << "\n" << c.err;
        if (c.rc != 0 || c.out.empty()) return json::object();
        return json::parse(c.out);
    }
    // apply with any flags on the file (the text): the command's outcome.
    tcdtest::Cmd run(const std::string& yaml, const std::string& flags) {
        std::ofstream(file_) << yaml;
        return sh(std::string(TCD_BIN) + " " + flags + " apply -f " + file_);
    }
    // What every instance of the tree says of itself: status and map list.
    std::string snapshot() const {
        std::string out;
        for (const auto& d : {root_, web_, extra_}) {
            out += d + "\n";
            if (!tcd::bpffs::exists(d)) continue;
            for (const char* c : {"-j status", "-j map list"}) {
                auto r = sh(std::string(TCD_BIN) + " -d " + d + " " + c);
                EXPECT_EQ(r.rc, 0) << d << " " << c << ": " << r.err;
                out += r.out;
            }
        }
        return out;
    }
    json map_list(const std::string& d) const {
        auto r = sh(std::string(TCD_BIN) + " -j -d " + d + " map list");
        EXPECT_EQ(r.rc, 0) << r.err;
        return json::parse(r.out.empty() ? "[]" : r.out);
    }
    // The tree: root (proto) hands tcp to web (port) by name; root attached
    // to ca in skb mode. web's wiring and root's extra lines as given.
    std::string tree(const std::string& web_wiring, const std::string& root_extra = "",
                     const std::string& more = "") const {
        return "instances:\n  - name: root\n    pin_dir: " + root_ + "\n" + root_extra +
               "    wiring:\n      tcp: {instance: web}\n      udp: udp_handler\n" +
               "    interfaces:\n      - name: ca\n        netns: " + ns_ + "\n        mode: skb\n" +
               "  - name: web\n    pin_dir: " + web_ + "\n    key: port\n    wiring:\n" + web_wiring + more;
    }
    std::string file_, root_, web_, extra_;
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

// examples/tree.yaml as shipped (its pin dirs this test's): children are
// loaded and wired before the root that wires them.
TEST_F(Apply, TreeExampleDryRun) {
    std::string y = read(std::string(TCD_SOURCE_DIR) + "/examples/tree.yaml");
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"/sys/fs/bpf/tcd-web", web_},
                                   {"/sys/fs/bpf/tcd-dns", extra_}, {"pin_dir: /sys/fs/bpf/tcd\n", "pin_dir: " + root_ + "\n"}}) {
        ASSERT_NE(y.find(from), std::string::npos) << from;
        replace_all(y, from, to);
    }
    json j = apply(y, true);
    EXPECT_EQ(j.value("dry_run", false), true);
    ASSERT_EQ(j["instances"].size(), 3u) << j.dump();
    EXPECT_EQ(j["instances"][2].value("name", ""), "edge");
    EXPECT_EQ(j["instances"][2].value("pin_dir", ""), root_);
    std::vector<std::string> c;
    for (const auto& x : j["changes"]) c.push_back(x);
    auto at = [&](const std::string& what) {
        auto it = std::find(c.begin(), c.end(), what);
        EXPECT_NE(it, c.end()) << what << " not in " << j.dump();
        return it - c.begin();
    };
    EXPECT_LT(at(web_ + ": load --key port --hook xdp --miss-action pass"), at(root_ + ": map set 6 " + web_));
    EXPECT_LT(at(extra_ + ": map set 53 pass"), at(root_ + ": map set 17 " + extra_));
    at(web_ + ": map set 443 pass");
    at(root_ + ": attach eth0 --mode auto");
    EXPECT_EQ(j.value("applied", -1), 0);
    for (const auto& d : {root_, web_, extra_}) EXPECT_FALSE(tcd::bpffs::exists(d)) << d;  // a dry run makes nothing
}

// apply, apply again (nothing), edit one wiring (one change), an edit that
// gives the child a new dispatcher (the parent's key follows it).
TEST_F(Apply, TreeConvergesAndEditsOneWiring) {
    const std::string base = "      http: pass\n      ssh: drop\n";
    json first = apply(tree(base));
    EXPECT_EQ(changes(first),
              (std::set<std::string>{web_ + ": load --key port --hook xdp --miss-action pass", web_ + ": map set 22 drop",
                                     web_ + ": map set 80 pass", root_ + ": load --key proto --hook xdp --miss-action pass",
                                     root_ + ": map set 6 " + web_, root_ + ": map set 17 udp_handler",
                                     root_ + ": attach ca --netns " + ns_ + " --mode skb"}))
        << first.dump();
    EXPECT_EQ(first.value("applied", 0), 7);
    // Children first: everything of web before anything of root.
    ASSERT_EQ(first["changes"].size(), 7u);
    for (size_t i = 0; i < 3; i++) EXPECT_EQ(first["changes"][i].get<std::string>().rfind(web_ + ": ", 0), 0u) << first.dump();
    ASSERT_EQ(first["instances"].size(), 2u);
    EXPECT_EQ(first["instances"][0].value("name", ""), "root");
    EXPECT_EQ(first["instances"][0]["changes"].size(), 4u);
    EXPECT_EQ(first["instances"][1].value("name", ""), "web");
    EXPECT_EQ(first["instances"][1]["changes"].size(), 3u);
    json rl = map_list(root_);
    ASSERT_EQ(rl.size(), 2u) << rl.dump();
    EXPECT_EQ(rl[0].value("key", 0), 6);
    EXPECT_EQ(rl[0].value("instance", ""), web_) << rl.dump();

    // Again: nothing, and every instance as it was.
    std::string snap = snapshot();
    json again = apply(tree(base));
    EXPECT_TRUE(again["changes"].empty()) << again.dump();
    EXPECT_EQ(again.value("applied", -1), 0);
    for (const auto& i : again["instances"]) EXPECT_TRUE(i["changes"].empty()) << again.dump();
    EXPECT_EQ(snapshot(), snap);

    // One wiring edited: that one change (22 is a direct port already: no
    // new dispatcher, the root untouched).
    std::string root_before = snapshot().substr(0, snapshot().find(web_ + "\n"));
    json edited = apply(tree("      http: pass\n      ssh: pass\n"));
    EXPECT_EQ(changes(edited), (std::set<std::string>{web_ + ": map set 22 pass"})) << edited.dump();
    EXPECT_EQ(snapshot().substr(0, snapshot().find(web_ + "\n")), root_before);
    json wl = map_list(web_);
    ASSERT_EQ(wl.size(), 2u) << wl.dump();
    EXPECT_EQ(wl[0].value("key", 0), 22);
    EXPECT_EQ(wl[0].value("handler", ""), "pass");
    EXPECT_TRUE(apply(tree("      http: pass\n      ssh: pass\n"))["changes"].empty());

    // A port added to web: web gets a new dispatcher (another direct port),
    // and the respecialising load --force moves root's key 6 to it (no step
    // of apply's own is left to do).
    const std::string more = "      http: pass\n      ssh: pass\n      443: drop\n";
    json grown = apply(tree(more));
    EXPECT_EQ(changes(grown), (std::set<std::string>{web_ + ": map set 443 drop"})) << grown.dump();
    auto ws = sh(std::string(TCD_BIN) + " -j -d " + web_ + " status");
    ASSERT_EQ(ws.rc, 0) << ws.err;
    EXPECT_EQ(map_list(root_)[0].value("prog_id", 0u), json::parse(ws.out)["dispatcher"].value("prog_id", 1u));
    EXPECT_TRUE(apply(tree(more))["changes"].empty());

    // web alone, as a proto instance: that means unloading it, which would
    // unwire it in root, which this file does not describe: refused.
    const std::string kept = snapshot();
    auto other_kind = run("instances:\n  - name: web\n    pin_dir: " + web_ + "\n    key: proto\n", "");
    EXPECT_EQ(other_kind.rc, 1) << other_kind.out << other_kind.err;
    EXPECT_NE(other_kind.err.find(web_ + " is wired by " + root_ + " (key 6), which the file does not describe"),
              std::string::npos)
        << other_kind.err;
    EXPECT_EQ(snapshot(), kept);
}

// Refused before anything is made: a loop, a chain past the kernel's 33
// tail calls (33 is fine), a child on another hook, an instance wiring
// itself; an instance name the file does not have is a mistake in the file.
TEST_F(Apply, TreeRefusesLoopDepthAndHook) {
    auto nothing_made = [&](const std::vector<std::string>& dirs) {
        for (const auto& d : dirs) EXPECT_FALSE(tcd::bpffs::exists(d)) << d;
    };
    auto loop = run(tree("      http: {instance: root}\n"), "");
    EXPECT_EQ(loop.rc, 1) << loop.out << loop.err;
    EXPECT_NE(loop.err.find("makes a loop: "), std::string::npos) << loop.err;
    EXPECT_NE(loop.err.find(root_ + " -> " + web_ + " -> " + root_), std::string::npos) << loop.err;
    nothing_made({root_, web_});

    auto chain = [&](int n) {
        std::string y = "instances:\n";
        for (int i = 0; i < n; i++)
            y += "  - name: n" + std::to_string(i) + "\n    pin_dir: " + dir_ + "d" + std::to_string(i) +
                 "\n    wiring:\n      tcp: " +
                 (i + 1 < n ? "{instance: n" + std::to_string(i + 1) + "}" : std::string("pass")) + "\n";
        return y;
    };
    std::vector<std::string> deep;
    // 33 levels: the kernel's 33 less the one tail call kept for tcd's entry.
    for (int i = 0; i < 33; i++) deep.push_back(dir_ + "d" + std::to_string(i));
    auto too_deep = run(chain(33), "");
    EXPECT_EQ(too_deep.rc, 1) << too_deep.err;
    EXPECT_NE(too_deep.err.find("33 tail calls"), std::string::npos) << too_deep.err;
    EXPECT_NE(too_deep.err.find("the kernel allows 33"), std::string::npos) << too_deep.err;
    nothing_made(deep);
    json ok = apply(chain(32), true);  // the limit itself: planned
    EXPECT_EQ(ok["instances"].size(), 32u);
    nothing_made(deep);

    auto hook = run("instances:\n  - name: root\n    pin_dir: " + root_ +
                        "\n    wiring:\n      tcp: {instance: t}\n  - name: t\n    pin_dir: " + web_ + "\n    hook: tc\n",
                    "");
    EXPECT_EQ(hook.rc, 1) << hook.err;
    EXPECT_NE(hook.err.find("a child instance must be on the same hook"), std::string::npos) << hook.err;
    auto self = run("instances:\n  - name: root\n    pin_dir: " + root_ + "\n    wiring:\n      tcp: {instance: root}\n", "");
    EXPECT_EQ(self.rc, 1) << self.err;
    EXPECT_NE(self.err.find("itself"), std::string::npos) << self.err;
    auto unknown = run(tree("      http: {instance: nosuch}\n"), "");
    EXPECT_EQ(unknown.rc, 2) << unknown.err;
    EXPECT_NE(unknown.err.find("no instance in the file is called nosuch"), std::string::npos) << unknown.err;
    auto twice = run("instances:\n  - pin_dir: " + root_ + "\n  - pin_dir: " + root_ + "/\n", "");
    EXPECT_EQ(twice.rc, 2) << twice.err;
    EXPECT_NE(twice.err.find("two instances have the pin dir"), std::string::npos) << twice.err;
    nothing_made({root_, web_});
}

// A step that fails half-way: every change made before it is undone, last
// first, and every instance says what it said before (same programs, same
// ids, same counter slots); a new instance is gone again.
TEST_F(Apply, TreeFailureHalfWayIsUndone) {
    const std::string base = "      http: pass\n      ssh: drop\n";
    apply(tree(base));
    const std::string snap = snapshot();
    ASSERT_NE(snap.find("\"direct_keys\""), std::string::npos);
    // web: 8080 wired and 22 unwired (a new dispatcher), extra loaded and
    // wired, root's udp handed to extra; then root's handler object fails to
    // load (its jt is not tcd's).
    const std::string extra = "  - name: extra\n    pin_dir: " + extra_ + "\n    key: port\n    wiring:\n      53: pass\n";
    std::string y = tree("      http: pass\n      8080: drop\n",
                         "    handlers:\n      - object: " + std::string(TCD_BPF_OBJ_DIR) + "/bad_jt.bpf.o\n", extra);
    replace_all(y, "udp: udp_handler", "udp: {instance: extra}");
    auto failed = run(y, "");
    EXPECT_EQ(failed.rc, 1) << failed.out << failed.err;
    EXPECT_NE(failed.err.find("apply: " + root_ + ": handler load "), std::string::npos) << failed.err;
    EXPECT_NE(failed.err.find("change(s) made before it were undone"), std::string::npos) << failed.err;
    EXPECT_FALSE(tcd::bpffs::exists(extra_));
    EXPECT_EQ(snapshot(), snap);

    // The same with the failure later in the root: a handler loaded and a
    // key wired to it, then a key whose handler does not exist.
    std::string z = tree("      http: pass\n      8080: drop\n",
                         "    handlers:\n      - object: " + std::string(TCD_BPF_OBJ_DIR) +
                             "/ports.bpf.o\n        progs: [tcp_ports]\n",
                         extra);
    replace_all(z, "udp: udp_handler", "udp: {instance: extra}\n      gre: tcp_ports\n      esp: nosuch");
    auto later = run(z, "-j");
    EXPECT_EQ(later.rc, 1) << later.out << later.err;
    EXPECT_TRUE(later.out.empty()) << later.out;
    EXPECT_NE(later.err.find("map set 50 nosuch"), std::string::npos) << later.err;
    EXPECT_NE(later.err.find("were undone"), std::string::npos) << later.err;
    EXPECT_FALSE(tcd::bpffs::exists(extra_));
    EXPECT_FALSE(tcd::bpffs::exists(root_ + "/tcp_ports"));
    EXPECT_EQ(snapshot(), snap);
    // And the file it had converged to finds nothing to do.
    EXPECT_TRUE(apply(tree(base))["changes"].empty());
}

// Plain and JSON output of a tree: "PINDIR: " before each change ("would"
// first on a dry run), one line when there is nothing to do; JSON with
// instances[] (name, pin_dir, changes) beside the flat changes and applied.
// A single-instance file keeps its own shapes.
TEST_F(Apply, TreeOutputPlainAndJson) {
    const std::string y = tree("      http: pass\n");
    std::ofstream(file_) << y;
    auto plain_dry = sh(std::string(TCD_BIN) + " apply --dry-run -f " + file_);
    ASSERT_EQ(plain_dry.rc, 0) << plain_dry.err;
    EXPECT_EQ(plain_dry.out.rfind("would " + web_ + ": load --key port --hook xdp --miss-action pass\n", 0), 0u)
        << plain_dry.out;
    EXPECT_NE(plain_dry.out.find("would " + root_ + ": map set 6 " + web_ + "\n"), std::string::npos) << plain_dry.out;
    EXPECT_FALSE(tcd::bpffs::exists(web_));
    json jd = apply(y, true);
    EXPECT_EQ(jd.value("dry_run", false), true);
    EXPECT_EQ(jd.value("applied", -1), 0);
    EXPECT_FALSE(jd.contains("pin_dir"));
    ASSERT_EQ(jd["instances"].size(), 2u);
    EXPECT_EQ(jd["instances"][1].value("pin_dir", ""), web_);
    EXPECT_EQ(jd["instances"][1]["changes"][0], "load --key port --hook xdp --miss-action pass");
    EXPECT_EQ(jd["changes"].size(), jd["instances"][0]["changes"].size() + jd["instances"][1]["changes"].size());

    auto made = run(y, "");
    ASSERT_EQ(made.rc, 0) << made.err;
    EXPECT_EQ(made.out.rfind(web_ + ": load --key port", 0), 0u) << made.out;
    EXPECT_EQ(made.out.find("would"), std::string::npos) << made.out;
    auto none = run(y, "");
    ASSERT_EQ(none.rc, 0) << none.err;
    EXPECT_EQ(none.out, "2 instance(s) as " + file_ + " says, nothing to do\n");
    auto none_json = run(y, "-j");
    ASSERT_EQ(none_json.rc, 0) << none_json.err;
    json nj = json::parse(none_json.out);
    EXPECT_EQ(nj.value("applied", -1), 0);
    EXPECT_TRUE(nj["changes"].empty());
    ASSERT_EQ(nj["instances"].size(), 2u);
    EXPECT_EQ(nj["instances"][0].value("name", ""), "root");
    EXPECT_EQ(nj["instances"][0].value("pin_dir", ""), root_);

    // One instance: the old shapes.
    const std::string one = "pin_dir: " + dir_ + "\nwiring:\n  tcp: tcp_handler\n";
    ASSERT_EQ(run(one, "").rc, 0);
    auto one_none = run(one, "");
    EXPECT_EQ(one_none.out, dir_ + ": as " + file_ + " says, nothing to do\n");
    json oj = json::parse(run(one, "-j").out);
    EXPECT_EQ(oj.value("pin_dir", ""), dir_);
    EXPECT_FALSE(oj.contains("instances"));
}

// SIGKILL between any two steps of a tree's first apply (TCD_CRASHPOINT=
// apply:N), and inside the steps at each load, respecialise and attach
// point: the
// next apply converges to what an apply that was not killed makes (the same
// wiring, children, direct keys, handlers and attachments; program ids
// aside), and the one after finds nothing to do.
TEST_F(Apply, TreeKilledAtEveryStepConverges) {
    // The child a proto instance here (a port dispatcher takes ten times as
    // long to load, and this test loads a few hundred): gre and esp are not
    // among the four direct keys it starts with, so wiring them respecialises.
    std::string y = tree("      gre: pass\n      esp: drop\n");
    replace_all(y, "    key: port\n", "");
    auto view = [&]() {
        json v = json::object();
        for (const auto& d : {root_, web_}) {
            json one = json::object();
            for (const auto& e : map_list(d))
                one["wired"][std::to_string(e.value("key", 0))] =
                    e["instance"].is_string() ? e["instance"].get<std::string>() : e.value("handler", "");
            auto st = sh(std::string(TCD_BIN) + " -j -d " + d + " status");
            EXPECT_EQ(st.rc, 0) << st.err;
            json j = json::parse(st.out.empty() ? "{}" : st.out);
            one["direct"] = j["dispatcher"]["direct_keys"];
            one["miss"] = j["dispatcher"]["miss_action"];
            for (const auto& h : j["handlers"]) one["handlers"].push_back(h.value("name", ""));
            for (const auto& a : j["attached"]) one["attached"].push_back(a.value("ifname", "") + " " + a.value("mode", ""));
            v[d] = one;
        }
        return v;
    };
    ASSERT_EQ(run(y, "").rc, 0);
    const json want = view();
    ASSERT_EQ(want[root_]["wired"]["6"], web_) << want.dump();
    unload();
    int kills = 0;
    for (const std::string op : {"apply", "load", "map", "attach"}) {
        for (int n = 1; n < 40; n++) {
            unload();
            std::ofstream(file_) << y;
            auto c = sh("TCD_CRASHPOINT=" + op + ":" + std::to_string(n) + " " + TCD_BIN + " apply -f " + file_);
            if (c.rc == 0) break;  // fewer than n points: ran through
            ASSERT_EQ(c.rc, 137) << op << ":" << n << " " << c.err;
            kills++;
            auto again = run(y, "-j");
            ASSERT_EQ(again.rc, 0) << op << ":" << n << " " << again.err;
            EXPECT_EQ(view(), want) << op << ":" << n;
            auto third = run(y, "-j");
            ASSERT_EQ(third.rc, 0) << third.err;
            EXPECT_TRUE(json::parse(third.out)["changes"].empty()) << op << ":" << n << " " << third.out;
        }
        unload();
        ASSERT_FALSE(tcd::bpffs::exists(root_));
        ASSERT_FALSE(tcd::bpffs::exists(web_));
    }
    EXPECT_GE(kills, 12) << kills;  // after each of apply's 7 steps, and inside its loads and respecialises
}

}  // namespace

namespace {

// A file wiring 1,000 ports on one port instance: every port wired, each with
// a counter slot of its own (the slots read once for the instance's steps,
// as map set with several pairs does); applied again, nothing to do.
TEST_F(Apply, AThousandPortsInOneFile) {
    std::string y = "instances:\n  - name: web\n    pin_dir: " + web_ + "\n    key: port\n    wiring:\n";
    for (int p = 10000; p < 11000; p++) y += "      " + std::to_string(p) + ": pass\n";
    apply(y);
    json l = map_list(web_);
    ASSERT_EQ(l.size(), 1000u);
    std::set<int> slots;
    for (const auto& row : l) slots.insert(row["slot"].get<int>());
    EXPECT_EQ(slots.size(), 1000u);
    EXPECT_EQ(slots.count(0), 0u);
    json again = apply(y);
    EXPECT_TRUE(again["changes"].empty()) << again.dump();
}

}  // namespace
