// Crash consistency: load, attach and handler load killed with SIGKILL at
// every step. Afterwards status works and tells what is there, the same
// command run again completes, and unload leaves nothing behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/bpffs.h"
#include "core/fd.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/no_tcx.h"
#include "tests/common/shell.h"
#include "tests/common/topology.h"
#include "tests/common/veth_test.h"
#include "tests/common/wait.h"

namespace {

using nlohmann::json;
using tcdtest::sh;

constexpr int kKilled = 128 + 9;

// Pin dir tcdcrash<pid>, namespace tcdcr<pid> with ca/cb (tests/common/veth_test.h).
class Crash : public tcdtest::VethTest {
protected:
    Crash() : VethTest("tcdcrash", "tcdcr") {}
    std::string crash(const std::string& op, int n, const std::string& args) const {
        return "TCD_CRASHPOINT=" + op + ":" + std::to_string(n) + " " + tcd(args);
    }
    // Entries of the instance's attach map (records of attachments).
    size_t records() const {
        auto c = sh("bpftool -j map dump pinned " + dir_ + "/maps/attach");
        if (c.rc != 0 || c.out.empty()) return 0;
        return json::parse(c.out).size();
    }
    static bool says(const json& st, const std::string& what) {
        for (const auto& p : st.value("problems", json::array()))
            if (p.get<std::string>().find(what) != std::string::npos) return true;
        return false;
    }
    // The program id XDP runs on cb, 0 if none.
    uint64_t xdp_id_on_cb() const {
        auto c = sh("ip -n " + ns_ + " -j link show cb");
        auto j = json::parse(c.out.empty() ? "[]" : c.out);
        if (j.empty() || !j[0].contains("xdp")) return 0;
        const auto& x = j[0]["xdp"];
        if (x.contains("prog")) return x["prog"].value("id", 0);
        if (x.contains("attached"))
            for (const auto& a : x["attached"]) return a["prog"].value("id", 0);
        return 0;
    }
    // The dispatcher that runs on cb: the program at the hook, or, behind
    // tcd's entry shim (alone at the hook, or inside libxdp's dispatcher in
    // multiprog mode), slot 0 of maps/mp_entry.
    uint64_t running_on_cb(const json& st) const {
        bool entry = !st["attached"].empty() && st["attached"][0].value("entry_id", 0u) != 0;
        if (!entry) return xdp_id_on_cb();
        tcd::UniqueFd fd(bpf_obj_get((dir_ + "/maps/mp_entry").c_str()));
        uint32_t k = 0, id = 0;
        if (!fd || bpf_map_lookup_elem(fd.get(), &k, &id) != 0) return 0;
        return id;
    }
    bool xdp_on_cb() const {
        return sh("nsenter --net=/run/netns/" + ns_ + " ip link show cb").out.find("prog/xdp") != std::string::npos;
    }
    // After a load --force killed at step `at`: the next one completes it
    // (miss action drop, the one wiring, one attachment, no problem, its
    // dispatcher what runs on cb), then unload leaves nothing, and cb's hook
    // is cleared for the next step.
    void expect_load_force_completes(const std::string& at, bool tcp_handler_wired) {
        auto again = sh(tcd("load --force --miss-action drop"));
        EXPECT_EQ(again.rc, 0) << at << ": " << again.err;
        json done = status();
        EXPECT_EQ(done["dispatcher"].value("miss_action", ""), "drop") << at;
        EXPECT_EQ(done["wired"].size(), 1u) << at;
        if (tcp_handler_wired && done["wired"].size() == 1u) EXPECT_EQ(done["wired"][0]["handler"], "tcp_handler") << at;
        EXPECT_EQ(done["attached"].size(), 1u) << at << ": " << done.dump();
        EXPECT_TRUE(done["problems"].empty()) << at << ": " << done.dump();
        EXPECT_EQ(running_on_cb(done), done["dispatcher"].value("prog_id", 0u)) << at;
        EXPECT_EQ(sh(tcd("unload")).rc, 0) << at;
        EXPECT_FALSE(xdp_on_cb()) << at;
        EXPECT_FALSE(tcd::bpffs::exists(dir_)) << at;
        sh("ip -n " + ns_ + " link set cb xdp off");  // one failed step does not fail the next
    }
};

TEST_F(Crash, LoadKilledAtEveryStep) {
    int steps = 0;
    for (int n = 1; n < 40; n++) {
        auto c = sh(crash("load", n, "load"));
        if (c.rc != kKilled) {  // past the last step: it simply ran
            EXPECT_EQ(c.rc, 0) << c.err;
            break;
        }
        steps++;
        json st = status();  // works, and says what there is
        if (!st.value("loaded", false) && tcd::bpffs::exists(dir_))
            EXPECT_FALSE(st["problems"].empty()) << "half-made state not reported at step " << n;
        auto again = sh(tcd("load"));
        EXPECT_EQ(again.rc, 0) << "step " << n << ": " << again.err;
        json done = status();
        EXPECT_TRUE(done.value("loaded", false)) << "step " << n;
        EXPECT_TRUE(done["problems"].empty()) << done.dump();
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(tcd::bpffs::exists(dir_)) << "step " << n;
    }
    EXPECT_GE(steps, 8);
    std::printf("load killed at each of its %d steps\n", steps);
    // Also the pin steps inside (between pinning a temporary name and renaming it).
    for (int n = 1; n < 20; n++) {
        auto c = sh(crash("pin", n, "load"));
        if (c.rc != kKilled) break;
        json st = status();
        bool tmp = false;
        for (const auto& name : tcd::bpffs::list_pins(dir_)) tmp |= name.find("~tmp-") != std::string::npos;
        if (tmp || (!st.value("loaded", false) && tcd::bpffs::exists(dir_)))
            EXPECT_FALSE(st["problems"].empty()) << "pin step " << n << ": " << st.dump();
        EXPECT_EQ(sh(tcd("load")).rc, 0) << "pin step " << n;
        EXPECT_TRUE(status()["problems"].empty());
        for (const auto& name : tcd::bpffs::list_pins(dir_)) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << name;
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(tcd::bpffs::exists(dir_));
    }
}

TEST_F(Crash, AttachKilledAtEveryStep) {
    int steps = 0;
    for (int n = 1; n < 20; n++) {
        auto c = sh(crash("attach", n, "attach cb --netns " + ns_));
        if (c.rc != kKilled) {
            EXPECT_EQ(c.rc, 0) << c.err;
            break;
        }
        steps++;
        json st = status();
        // A record of an attachment that is not there is reported.
        if (st.value("loaded", false) && st["attached"].empty() && records() > 0)
            EXPECT_TRUE(says(st, "stale attach record")) << "step " << n << ": " << st.dump();
        if (!st.value("loaded", false) && tcd::bpffs::exists(dir_))
            EXPECT_FALSE(st["problems"].empty()) << "step " << n << ": " << st.dump();
        if (!st["attached"].empty()) EXPECT_TRUE(st["problems"].empty()) << "step " << n << ": " << st.dump();
        auto again = sh(tcd("attach cb --netns " + ns_));
        EXPECT_EQ(again.rc, 0) << "step " << n << ": " << again.err;
        EXPECT_TRUE(xdp_on_cb()) << "step " << n;
        json done = status();
        EXPECT_EQ(done["attached"].size(), 1u) << "step " << n;
        EXPECT_TRUE(done["problems"].empty()) << "step " << n << ": " << done.dump();
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(xdp_on_cb()) << "step " << n;  // unload found it, recorded or not
        EXPECT_FALSE(tcd::bpffs::exists(dir_));
    }
    EXPECT_GE(steps, 3);
}

// A record whose namespace is gone, or whose interface no longer runs the
// dispatcher, is a problem status names; detach --all and unload clear it.
TEST_F(Crash, StaleAttachRecordsReportedAndCleared) {
    ASSERT_EQ(sh(tcd("-q attach cb --netns " + ns_)).rc, 0);
    EXPECT_TRUE(status()["problems"].empty());
    // Taken off behind tcd's back: the record stays.
    ASSERT_EQ(sh("ip -n " + ns_ + " link set cb xdp off").rc, 0);
    json st = status();
    EXPECT_TRUE(st["attached"].empty()) << st.dump();
    ASSERT_EQ(st["problems"].size(), 1u) << st.dump();
    EXPECT_TRUE(says(st, "stale attach record (cb in /run/netns/" + ns_ + "): the dispatcher does not run there"))
        << st.dump();
    auto plain = sh(tcd("status"));
    EXPECT_NE(plain.out.find("problem: stale attach record"), std::string::npos) << plain.out;
    ASSERT_EQ(sh(tcd("-q detach --all")).rc, 0);
    EXPECT_TRUE(status()["problems"].empty()) << status().dump();
    // The namespace gone.
    ASSERT_EQ(sh(tcd("-q attach cb --netns " + ns_)).rc, 0);
    ASSERT_EQ(sh("ip netns del " + ns_).rc, 0);
    (void)tcdtest::wait_until([&] { return says(status(), "network namespace is gone"); }, std::chrono::seconds(10),
                              "status to see that the namespace is gone");  // the assertion below shows status
    st = status();
    EXPECT_TRUE(says(st, "the network namespace is gone")) << st.dump();
    ASSERT_EQ(sh(tcd("unload")).rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir_));
    ASSERT_EQ(sh(tcd("-q load")).rc, 0);
    EXPECT_TRUE(status()["problems"].empty()) << status().dump();
}

// load --force on a loaded, wired, attached instance (the live swap) killed
// at every step: status works and shows the old dispatcher or the new one
// (miss action pass or drop), still wired and attached; the same command
// run again completes; unload leaves nothing.
TEST_F(Crash, LoadForceKilledAtEveryStep) {
    int steps = 0;
    for (const char* op : {"load", "pin"}) {
        for (int n = 1; n < 40; n++) {
            ASSERT_EQ(sh(tcd("-q load") + " && " + tcd("-q map set tcp tcp_handler") + " && " +
                         tcd("-q attach cb --netns " + ns_))
                          .rc,
                      0);
            auto c = sh(crash(op, n, "load --force --miss-action drop"));
            if (c.rc != kKilled) {
                EXPECT_EQ(c.rc, 0) << c.err;
                EXPECT_EQ(status()["dispatcher"].value("miss_action", ""), "drop");
                EXPECT_EQ(sh(tcd("unload")).rc, 0);
                break;
            }
            steps++;
            std::string at = std::string(op) + " step " + std::to_string(n);
            json st = status();
            EXPECT_TRUE(st.value("loaded", false)) << at << ": " << st.dump();
            std::string miss = st["dispatcher"].is_object() ? st["dispatcher"].value("miss_action", "") : "";
            EXPECT_TRUE(miss == "pass" || miss == "drop") << at << ": " << st.dump();
            EXPECT_EQ(st["wired"].size(), 1u) << at << ": " << st.dump();
            EXPECT_TRUE(xdp_on_cb()) << at;  // never a gap
            // Either clean, or what is left over is named.
            bool tmp = false;
            for (const auto& name : tcd::bpffs::list_pins(dir_)) tmp |= name.find("~tmp-") != std::string::npos;
            if (tmp) EXPECT_FALSE(st["problems"].empty()) << at << ": " << st.dump();
            // Killed between the swap and the rename, the interface runs the
            // staged new dispatcher (xdp_dispatch~tmp-next) while the pin is
            // still the old one: status does not list the attachment but
            // names the state (an interrupted load --force, and the leftover
            // pin); the next load adopts the staged dispatcher.
            bool staged_runs = tcd::bpffs::exists(dir_ + "/xdp_dispatch~tmp-next") && st["attached"].empty() &&
                               xdp_id_on_cb() != 0;
            if (staged_runs) {
                EXPECT_TRUE(says(st, "interrupted load --force: cb in /run/netns/" + ns_ +
                                         " runs the new dispatcher, still pinned as xdp_dispatch~tmp-next"))
                    << at << ": " << st.dump();
                EXPECT_FALSE(says(st, "stale attach record")) << at << ": " << st.dump();
                EXPECT_TRUE(says(st, "leftover temporary pin xdp_dispatch~tmp-next")) << at << ": " << st.dump();
            } else {
                EXPECT_EQ(st["attached"].size(), 1u) << at << ": " << st.dump();
            }
            expect_load_force_completes(at, true);
        }
    }
    EXPECT_GE(steps, 5);
    std::printf("load --force killed at each of its %d steps\n", steps);
}

// A dispatcher at the hook itself (as ip or an older tcd attached it):
// load --force killed at every step, the step that puts tcd's entry shim
// at the hook in its place among them. Never a gap at the hook; the next
// load --force completes it, and then the shim runs the new dispatcher.
TEST_F(Crash, LoadForceMovingADispatcherAtTheHookKilledAtEveryStep) {
    int steps = 0;
    for (int n = 1; n < 40; n++) {
        ASSERT_EQ(sh(tcd("-q load") + " && " + tcd("-q map set tcp tcp_handler") + " && " +
                     tcd("-q attach cb --netns " + ns_))
                      .rc,
                  0);
        ASSERT_EQ(sh("nsenter --net=/run/netns/" + ns_ + " ip -force link set dev cb xdpdrv pinned " + dir_ +
                     "/xdp_dispatch")
                      .rc,
                  0);
        ASSERT_EQ(xdp_id_on_cb(), status()["dispatcher"].value("prog_id", 0u));
        auto c = sh(crash("load", n, "load --force --miss-action drop"));
        std::string at = "step " + std::to_string(n);
        if (c.rc != kKilled) {
            EXPECT_EQ(c.rc, 0) << c.err;
            json done = status();
            EXPECT_EQ(done["dispatcher"].value("miss_action", ""), "drop");
            EXPECT_GT(done["attached"][0].value("entry_id", 0u), 0u) << done.dump();
            EXPECT_EQ(running_on_cb(done), done["dispatcher"].value("prog_id", 0u)) << at;
            EXPECT_EQ(sh(tcd("unload")).rc, 0);
            break;
        }
        steps++;
        EXPECT_TRUE(xdp_on_cb()) << at;  // never a gap
        expect_load_force_completes(at, false);
    }
    EXPECT_GE(steps, 5);
    std::printf("load --force moving a dispatcher at the hook killed at each of its %d steps\n", steps);
}

// XDP multiprog mode (where freplace works: the guest): detach killed at its
// step, before libxdp rebuilds its dispatcher without tcd's entry: status
// still shows the attachment, the detach run again completes, and nothing
// of tcd stays at the hook.
TEST_F(Crash, MultiprogDetachKilled) {
    ASSERT_EQ(sh(tcd("-q attach cb --netns " + ns_)).rc, 0);
    json st = status();
    ASSERT_EQ(st["attached"].size(), 1u);
    if (!st["attached"][0].value("multiprog", false))
        GTEST_SKIP() << "tcd attached alone here: " << st["attached"][0].value("alone_reason", "(no reason)");
    auto c = sh(crash("detach", 1, "detach cb --netns " + ns_));
    ASSERT_EQ(c.rc, kKilled) << c.err;
    st = status();
    EXPECT_EQ(st["attached"].size(), 1u) << st.dump();
    EXPECT_TRUE(st["problems"].empty()) << st.dump();
    ASSERT_EQ(sh(tcd("detach cb --netns " + ns_)).rc, 0);
    EXPECT_TRUE(status()["attached"].empty());
    EXPECT_FALSE(xdp_on_cb()) << "libxdp's dispatcher stayed after tcd's entry, the last program, left";
    EXPECT_EQ(sh(tcd("unload")).rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir_));
}

// XDP alone behind tcd's entry shim: detach killed at its step, before the
// shim is taken off the hook: status still shows the attachment (through
// the shim), the detach run again completes, and nothing stays at the hook.
TEST_F(Crash, AloneDetachKilled) {
    ASSERT_EQ(sh(tcd("-q attach cb --netns " + ns_ + " --alone")).rc, 0);
    json st = status();
    ASSERT_EQ(st["attached"].size(), 1u);
    const uint32_t entry = st["attached"][0].value("entry_id", 0u);
    ASSERT_GT(entry, 0u) << st.dump();
    EXPECT_EQ(xdp_id_on_cb(), entry);
    auto c = sh(crash("detach", 1, "detach cb --netns " + ns_));
    ASSERT_EQ(c.rc, kKilled) << c.err;
    st = status();
    ASSERT_EQ(st["attached"].size(), 1u) << st.dump();
    EXPECT_EQ(st["attached"][0].value("entry_id", 0u), entry) << st.dump();
    EXPECT_TRUE(st["problems"].empty()) << st.dump();
    ASSERT_EQ(sh(tcd("detach cb --netns " + ns_)).rc, 0);
    EXPECT_TRUE(status()["attached"].empty());
    EXPECT_FALSE(xdp_on_cb());
    EXPECT_EQ(sh(tcd("unload")).rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir_));
}

// attach --direction on a tc instance killed at every step, through a tcx
// link and through the clsact fallback (the test knob TCD_TEST_NO_TCX):
// loaded first (nothing was), the record, the link made but not pinned (it
// goes with the process), the link pinned. Status tells a stale record from
// an attachment, the same command completes, unload leaves nothing.
TEST_F(Crash, TcAttachKilledAtEveryStep) {
    for (bool tcx : {true, false}) {
        if (tcx && !tcd::tcx_supported()) continue;  // a kernel without tcx: the clsact steps only
        std::string env = tcx ? "" : "TCD_TEST_NO_TCX=1 ";
        int steps = 0;
        for (int n = 1; n < 20; n++) {
            std::string at = (tcx ? "tcx step " : "clsact step ") + std::to_string(n);
            auto c = sh(env + crash("attach", n, "attach cb --netns " + ns_ + " --direction ingress"));
            if (c.rc != kKilled) {
                EXPECT_EQ(c.rc, 0) << at << ": " << c.err;
                EXPECT_EQ(sh(tcd("unload")).rc, 0);
                break;
            }
            steps++;
            json st = status();
            if (st.value("loaded", false) && st["attached"].empty() && records() > 0)
                EXPECT_TRUE(says(st, "stale attach record (cb in /run/netns/" + ns_ + " ingress)"))
                    << at << ": " << st.dump();
            if (!st["attached"].empty()) EXPECT_TRUE(st["problems"].empty()) << at << ": " << st.dump();
            auto again = sh(env + tcd("attach cb --netns " + ns_ + " --direction ingress"));
            EXPECT_EQ(again.rc, 0) << at << ": " << again.err;
            json done = status();
            ASSERT_EQ(done["attached"].size(), 1u) << at << ": " << done.dump();
            EXPECT_EQ(done["attached"][0]["mode"], tcx ? "tcx" : "tc") << at;
            EXPECT_TRUE(done["problems"].empty()) << at << ": " << done.dump();
            EXPECT_EQ(sh(tcd("unload")).rc, 0) << at;
            EXPECT_FALSE(tcd::bpffs::exists(dir_)) << at;
            EXPECT_EQ(sh("nsenter --net=/run/netns/" + ns_ + " tc filter show dev cb ingress").out, "") << at;
        }
        // tcx: load, record, link made, link pinned; clsact: load, record, filter.
        EXPECT_EQ(steps, tcx ? 4 : 3) << (tcx ? "tcx" : "clsact");
    }
}

// load --force on an attached tc instance (tcx link) killed at every step:
// BPF_LINK_UPDATE swaps the program inside the link; killed between the
// swap and the rename, the link runs the staged dispatcher and status says
// so; the same command completes.
TEST_F(Crash, TcxLoadForceKilledAtEveryStep) {
    REQUIRE_TCX();
    int steps = 0;
    for (int n = 1; n < 40; n++) {
        ASSERT_EQ(sh(tcd("-q load --hook tc") + " && " + tcd("-q map set tcp tcp_handler") + " && " +
                     tcd("-q attach cb --netns " + ns_ + " --direction ingress"))
                      .rc,
                  0);
        auto c = sh(crash("load", n, "load --hook tc --force --miss-action drop"));
        if (c.rc != kKilled) {
            EXPECT_EQ(c.rc, 0) << c.err;
            EXPECT_EQ(sh(tcd("unload")).rc, 0);
            break;
        }
        steps++;
        std::string at = "step " + std::to_string(n);
        json st = status();
        EXPECT_TRUE(st.value("loaded", false)) << at << ": " << st.dump();
        EXPECT_EQ(st["wired"].size(), 1u) << at << ": " << st.dump();
        bool staged_runs = tcd::bpffs::exists(dir_ + "/tc_dispatch~tmp-next") && st["attached"].empty();
        if (staged_runs)
            EXPECT_TRUE(says(st, "interrupted load --force: cb in /run/netns/" + ns_ +
                                     " ingress runs the new dispatcher, still pinned as tc_dispatch~tmp-next"))
                << at << ": " << st.dump();
        else
            EXPECT_EQ(st["attached"].size(), 1u) << at << ": " << st.dump();
        auto again = sh(tcd("load --hook tc --force --miss-action drop"));
        EXPECT_EQ(again.rc, 0) << at << ": " << again.err;
        json done = status();
        EXPECT_EQ(done["dispatcher"].value("miss_action", ""), "drop") << at;
        ASSERT_EQ(done["attached"].size(), 1u) << at << ": " << done.dump();
        EXPECT_EQ(done["attached"][0]["mode"], "tcx") << at;
        EXPECT_TRUE(done["problems"].empty()) << at << ": " << done.dump();
        EXPECT_EQ(sh(tcd("unload")).rc, 0) << at;
        EXPECT_FALSE(tcd::bpffs::exists(dir_)) << at;
    }
    EXPECT_GE(steps, 3);
    std::printf("tc load --force killed at each of its %d steps\n", steps);
}

// The packets row `key` counts, summed over CPUs.
static uint64_t packets_at(const json& stats, int key) {
    for (const auto& r : stats.value("keys", json::array()))
        if (r.value("key", -1) == key) return r.value("packets", 0ull);
    return 0;
}

// A map set that makes gre direct, and a map del that takes it out again,
// each a respecialise (a new dispatcher loaded and swapped in the way load
// --force does it), killed at every step: the interface never loses its
// dispatcher, status works and names what is half done, and the next map
// set or del completes it with the wiring and the counters intact.
TEST_F(Crash, RespecialiseKilledAtEveryStep) {
    ASSERT_EQ(sh(tcd("-q load") + " && " + tcd("-q map set tcp tcp_handler") + " && " +
                 tcd("-q attach cb --netns " + ns_))
                  .rc,
              0);
    // Counted packets the swaps must carry: TCP frames through the pinned
    // dispatcher with BPF_PROG_TEST_RUN (it counts in the live counters).
    uint64_t sent = 0;
    auto send = [&](int n) {
        const std::string frame = std::string("020000000002" "020000000001" "0800") +  // Ethernet
                                  "45000028000140004006" "0000" "0a000001" "0a000002" +  // IPv4, TCP
                                  "30390050" "00000001" "00000000" "50020000" "00000000";  // TCP
        tcd::UniqueFd fd(bpf_obj_get((dir_ + "/xdp_dispatch").c_str()));
        std::vector<uint8_t> f;
        for (size_t i = 0; i + 1 < frame.size(); i += 2) f.push_back(uint8_t(std::stoi(frame.substr(i, 2), nullptr, 16)));
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.data(), .data_size_in = uint32_t(f.size()), .repeat = static_cast<int>(n));
        ASSERT_EQ(bpf_prog_test_run_opts(fd.get(), &o), 0);
        sent += uint64_t(n);
    };
    send(5);
    int steps = 0;
    struct Step {
        const char* op;
        const char* cmd;
        bool gre;  // wired after the command
    };
    for (Step step : {Step{"map", "map set gre pass", true}, Step{"map", "map del gre", false},
                      Step{"load", "map set gre pass", true}, Step{"load", "map del gre", false},
                      Step{"pin", "map set gre pass", true}, Step{"pin", "map del gre", false}}) {
        for (int n = 1; n < 30; n++) {
            auto c = sh(crash(step.op, n, step.cmd));
            std::string at = std::string(step.cmd) + " killed at " + step.op + " step " + std::to_string(n);
            if (c.rc != kKilled) {  // past the last step: it ran, and left what the next step kind starts from
                EXPECT_EQ(c.rc, 0) << at << ": " << c.err;
                break;
            }
            steps++;
            json st = status();
            EXPECT_TRUE(st.value("loaded", false)) << at << ": " << st.dump();
            EXPECT_TRUE(xdp_on_cb()) << at;  // never a gap
            EXPECT_EQ(packets_at(json::parse(sh(tcd("-j stats")).out), 6), sent) << at;
            bool tmp = false;
            for (const auto& name : tcd::bpffs::list_pins(dir_)) tmp |= name.find("~tmp-") != std::string::npos;
            if (tmp) EXPECT_FALSE(st["problems"].empty()) << at << ": " << st.dump();
            // The same command again completes it.
            auto again = sh(tcd(std::string("-q ") + step.cmd));
            EXPECT_EQ(again.rc, 0) << at << ": " << again.err;
            json done = status();
            EXPECT_TRUE(done["problems"].empty()) << at << ": " << done.dump();
            EXPECT_EQ(done["attached"].size(), 1u) << at << ": " << done.dump();
            EXPECT_EQ(running_on_cb(done), done["dispatcher"].value("prog_id", 0u)) << at;
            std::vector<uint32_t> direct = done["dispatcher"].value("direct_keys", std::vector<uint32_t>{});
            bool gre_direct = std::find(direct.begin(), direct.end(), 47u) != direct.end();
            EXPECT_EQ(gre_direct, step.gre) << at << ": " << done.dump();
            EXPECT_EQ(done["wired"].size(), step.gre ? 2u : 1u) << at << ": " << done.dump();
            for (const auto& name : tcd::bpffs::list_pins(dir_)) EXPECT_EQ(name.find("~tmp-"), std::string::npos) << at;
            send(1);
            EXPECT_EQ(packets_at(json::parse(sh(tcd("-j stats")).out), 6), sent) << at;
            // Back to the state before the step for the next one.
            std::string back = step.gre ? "map del gre" : "map set gre pass";
            EXPECT_EQ(sh(tcd("-q " + back)).rc, 0) << at;
        }
    }
    EXPECT_GE(steps, 10);
    std::printf("respecialise (map set / del) killed at each of %d steps\n", steps);
}

// A map set of three pairs killed at every step (docs/datapath.md, "Several
// pairs under a kill"): the next command that takes the instance's lock
// leaves either none of the pairs or all of them, never some.
TEST_F(Crash, MultiPairMapSetAllOrNothing) {
    ASSERT_EQ(sh(tcd("-q load --key port") + " && " + tcd("-q map set 22 drop")).rc, 0);
    auto wiring = [&] {
        auto c = sh(tcd("-j map list"));
        EXPECT_EQ(c.rc, 0) << c.err;
        std::vector<std::string> out;
        for (const auto& w : json::parse(c.out.empty() ? "[]" : c.out))
            out.push_back(std::to_string(w.value("key", 0u)) + "=" + w.value("handler", std::string()));
        return out;
    };
    const std::vector<std::string> before = wiring();
    ASSERT_EQ(before, (std::vector<std::string>{"22=drop"}));
    const std::string cmd = "map set 22 pass http pass 9999 drop";
    ASSERT_EQ(sh(tcd("-q " + cmd)).rc, 0);
    const std::vector<std::string> all = wiring();
    ASSERT_EQ(all.size(), 3u);
    auto back_to_before = [&] {
        sh(tcd("-q map del http 9999"));
        EXPECT_EQ(sh(tcd("-q map set 22 drop")).rc, 0);
        EXPECT_EQ(wiring(), before);
    };
    back_to_before();
    int steps = 0, none = 0, whole = 0;
    for (const char* op : {"map", "load", "pin", "slot"}) {
        for (int n = 1; n < 30; n++) {
            auto c = sh(crash(op, n, cmd));
            std::string at = cmd + " killed at " + op + " step " + std::to_string(n);
            if (c.rc != kKilled) {
                EXPECT_EQ(c.rc, 0) << at << ": " << c.err;
                back_to_before();
                break;
            }
            steps++;
            // The next command that takes the lock (a map del of a key not
            // wired changes nothing of its own).
            auto next = sh(tcd("-q map del 7777"));
            EXPECT_EQ(next.rc, 0) << at << ": " << next.err;
            auto now = wiring();
            EXPECT_TRUE(now == before || now == all) << at << ": " << ::testing::PrintToString(now);
            (now == before ? none : whole)++;
            EXPECT_FALSE(tcd::bpffs::exists(dir_ + "/undo/map-set")) << at;
            // Slots: none left for ports the rollback unwired.
            auto slot = sh("bpftool -j map lookup pinned " + dir_ + "/maps/port_slot key 0x0f 0x27 0 0");
            if (now == before && slot.rc == 0)
                EXPECT_NE(slot.out.find("\"value\":[\"0x00\",\"0x00\",\"0x00\",\"0x00\"]"), std::string::npos)
                    << at << ": " << slot.out;
            json st = status();
            if (now == all) {
                // Killed before the respecialise: the next map set makes it.
                EXPECT_EQ(sh(tcd("-q " + cmd)).rc, 0) << at;
                EXPECT_TRUE(status()["problems"].empty()) << at << ": " << status().dump();
            } else {
                EXPECT_TRUE(st["problems"].empty()) << at << ": " << st.dump();
            }
            back_to_before();
        }
    }
    EXPECT_GE(steps, 4);
    EXPECT_GT(none, 0);
    // A kill inside the rollback leaves the record for the command after.
    ASSERT_EQ(sh(crash("map", 3, cmd)).rc, kKilled);
    ASSERT_TRUE(tcd::bpffs::exists(dir_ + "/undo/map-set"));
    EXPECT_EQ(sh(crash("undo", 2, "map del 7777")).rc, kKilled);
    EXPECT_EQ(sh(tcd("-q map del 7777")).rc, 0);
    EXPECT_EQ(wiring(), before);
    // And unload takes a record left behind with it.
    ASSERT_EQ(sh(crash("map", 3, cmd)).rc, kKilled);
    EXPECT_EQ(sh(tcd("-q unload")).rc, 0);
    EXPECT_FALSE(tcd::bpffs::exists(dir_));
    std::printf("map set of 3 pairs killed at each of %d steps: %d left none, %d all\n", steps, none, whole);
}

// Every port that has a counter slot in maps/port_slot has its entry in the
// index maps/slot_port; "" when so, else what is wrong.
std::string slot_index_problems(const std::string& dir) {
    int ps = bpf_obj_get((dir + "/maps/port_slot").c_str()), sp = bpf_obj_get((dir + "/maps/slot_port").c_str());
    tcd::UniqueFd a(ps), b(sp);
    if (ps < 0 || sp < 0) return "maps/port_slot or maps/slot_port cannot be opened";
    std::string out;
    for (uint32_t port = 0; port < 65536; port++) {
        uint32_t slot = 0, entry = 0;
        if (bpf_map_lookup_elem(ps, &port, &slot) != 0) return "port_slot cannot be read";
        if (!slot) continue;
        if (bpf_map_lookup_elem(sp, &slot, &entry) != 0 || entry != (0x10000u | port))
            out += "port " + std::to_string(port) + " has slot " + std::to_string(slot) + ", the index " +
                   std::to_string(entry) + "; ";
    }
    return out;
}

// A port getting or giving back its counter slot, killed between the two
// maps (docs/datapath.md, "Counters"): the index keeps every slotted port,
// an entry left over counts for nothing (not listed, its slot given again),
// and the next commands work and agree with --scan.
TEST_F(Crash, PortSlotIndexUnderAKill) {
    ASSERT_EQ(sh(tcd("-q load --key port") + " && " + tcd("-q map set 22 drop")).rc, 0);
    auto list = [&](const std::string& extra = "") {
        auto c = sh(tcd("-j map list" + extra));
        EXPECT_EQ(c.rc, 0) << c.err;
        return c.out;
    };
    int steps = 0;
    for (const char* cmd : {"map set http pass", "map del 22", "map set 22 pass http drop"}) {
        for (int n = 1; n < 10; n++) {
            std::string at = std::string(cmd) + " killed at slot step " + std::to_string(n);
            auto c = sh(crash("slot", n, cmd));
            if (c.rc != kKilled) {
                EXPECT_EQ(c.rc, 0) << at << ": " << c.err;
                break;
            }
            steps++;
            EXPECT_EQ(slot_index_problems(dir_), "") << at;
            EXPECT_EQ(list(), list(" --scan")) << at;
            // The next command on the instance works, and the slots stay one per port.
            auto next = sh(tcd("-q map set 9999 pass"));
            EXPECT_EQ(next.rc, 0) << at << ": " << next.err;
            EXPECT_EQ(slot_index_problems(dir_), "") << at;
            std::vector<int> slots;
            for (const auto& w : json::parse(list())) {
                EXPECT_GT(w.value("slot", 0), 0) << at << ": " << w.dump();
                slots.push_back(w.value("slot", 0));
            }
            std::sort(slots.begin(), slots.end());
            EXPECT_EQ(std::adjacent_find(slots.begin(), slots.end()), slots.end()) << at << ": a slot given twice";
            EXPECT_TRUE(status()["problems"].empty()) << at << ": " << status().dump();
            // Back to 22 alone, wired to drop.
            EXPECT_EQ(sh(tcd("-q map del 9999 http") + " ; " + tcd("-q map set 22 drop")).rc, 0) << at;
            EXPECT_EQ(slot_index_problems(dir_), "") << at;
        }
    }
    EXPECT_GE(steps, 3);
    std::printf("port slot writes killed at %d steps\n", steps);
}

TEST_F(Crash, HandlerLoadKilledAtEveryStep) {
    std::string obj = std::string(TCD_BPF_OBJ_DIR) + "/ports.bpf.o";
    int steps = 0;
    for (int n = 1; n < 20; n++) {
        ASSERT_EQ(sh(tcd("-q load")).rc, 0);
        auto c = sh(crash("handler", n, "handler load " + obj));
        if (c.rc != kKilled) {
            EXPECT_EQ(c.rc, 0) << c.err;
            sh(tcd("-q unload"));
            break;
        }
        steps++;
        // Killed while the temporary pins were made: the old set, and status
        // names the leftovers. Killed among the renames: a partial set that
        // status shows as half made (the rest are still temporary pins).
        // Killed after the last rename: the new set, nothing to report.
        json st = status();
        EXPECT_TRUE(st.value("loaded", false)) << "step " << n;
        json hs0 = json::parse(sh(tcd("-j handler list")).out);
        size_t users = 0;
        for (const auto& h : hs0) users += h["builtin"] == false;
        if (users == 3)
            EXPECT_TRUE(st["problems"].empty()) << "step " << n << ": " << st.dump();
        else
            EXPECT_TRUE(says(st, "leftover temporary pin")) << "step " << n << " (" << users
                                                           << " of 3 handlers): " << st.dump();
        // Loading the rest completes the set.
        json hs = json::parse(sh(tcd("-j handler list")).out);
        std::string rest;
        for (const char* name : {"tcp_ports", "port8080", "port22"}) {
            bool there = false;
            for (const auto& h : hs) there |= h["name"] == name;
            if (!there) rest += std::string(" --prog ") + name;
        }
        if (!rest.empty()) EXPECT_EQ(sh(tcd("handler load " + obj + rest)).rc, 0) << "step " << n;
        EXPECT_EQ(json::parse(sh(tcd("-j handler list")).out).size(), 7u) << "step " << n;
        EXPECT_TRUE(status()["problems"].empty()) << "step " << n;
        EXPECT_EQ(sh(tcd("unload")).rc, 0);
        EXPECT_FALSE(tcd::bpffs::exists(dir_));
    }
    // Three programs: three temporary pins, then three renames.
    EXPECT_EQ(steps, 6);
}

}  // namespace
