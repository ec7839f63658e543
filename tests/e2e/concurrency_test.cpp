// Parallel scripts: 8 processes wiring and unwiring at random against one
// instance, each a fixed number of writes (TCD_CONCURRENCY_WRITES). Every
// command succeeds (waiting for the lock is fine), no two ports share a
// counter slot, and the table ends as some serial order of the writes would
// leave it: for each key, the final handler is the value of a write that no
// other write to that key certainly followed. The machine's speed changes
// only how long it takes.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/lock.h"
#include "tests/common/kernel.h"
#include "tests/common/lock_files.h"
#include "tests/common/shell.h"
#include "tests/common/wait.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Write {
    Clock::time_point start, end;
    uint32_t key;
    std::string value;  // handler, or "" for map del
    int rc;
};

// A port instance: `map set` there is a read-modify-write (a free counter
// slot is found, then taken), which only the lock keeps from racing.
TEST(Concurrency, ParallelWritersSerialise) {
    TCD_REQUIRE_KERNEL();
    std::string dir = "/sys/fs/bpf/" + tcdtest::unique_name("tcdconc");
    tcdtest::LockFiles locks{dir};
    // The writers keep the lock busy all the time; on a port instance most
    // writes also load a new dispatcher (the direct ports change), about
    // 0.1 s each, and flock is not fair, so an unlucky writer may wait more
    // than the default 10 s without any holder being stuck.
    std::string tcd = "TCD_LOCK_TIMEOUT=60 " + std::string(TCD_BIN) + " -d " + dir;
    std::system((tcd + " -q unload").c_str());
    ASSERT_EQ(std::system((tcd + " -q load --key port").c_str()), 0);

    constexpr int kWriters = 8;
    int writes = 100;
    if (const char* s = std::getenv("TCD_CONCURRENCY_WRITES")) writes = std::max(1, std::atoi(s));
    const std::vector<uint32_t> keys = {22, 53, 80, 443, 8080, 9000};
    const std::vector<std::string> handlers = {"pass", "drop", "tcp_handler", "udp_handler", ""};
    std::mutex mu;
    std::vector<Write> log;
    std::string errors;
    auto worker = [&](int id) {
        std::mt19937 rng(unsigned(id) * 7919u + unsigned(getpid()));
        std::string err_file = "/tmp/tcdconc_" + std::to_string(getpid()) + "_" + std::to_string(id);
        for (int n = 0; n < writes; n++) {
            uint32_t key = keys[rng() % keys.size()];
            std::string value = handlers[rng() % handlers.size()];
            std::string cmd = tcd + " -q " + (value.empty() ? "map del " + std::to_string(key)
                                                            : "map set " + std::to_string(key) + " " + value) +
                              " 2>" + err_file;
            Write w{Clock::now(), {}, key, value, 0};
            int st = std::system(cmd.c_str());
            w.end = Clock::now();
            w.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            std::ifstream e(err_file);
            std::stringstream ss;
            ss << e.rdbuf();
            std::lock_guard lock(mu);
            log.push_back(w);
            if (w.rc != 0 || !ss.str().empty()) errors += ss.str() + "\n";
        }
        std::remove(err_file.c_str());
    };
    std::vector<std::thread> threads;
    auto began = Clock::now();
    for (int i = 0; i < kWriters; i++) threads.emplace_back(worker, i);
    for (auto& t : threads) t.join();
    double took = std::chrono::duration<double>(Clock::now() - began).count();

    EXPECT_EQ(errors, "");
    ASSERT_EQ(log.size(), size_t(kWriters) * size_t(writes));
    std::string out;
    {
        FILE* p = popen((tcd + " -j map list").c_str(), "r");
        char buf[4096];
        while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
        pclose(p);
    }
    auto list = nlohmann::json::parse(out);
    std::map<uint32_t, std::string> final_state;
    std::map<uint32_t, uint32_t> slot_owner;
    for (const auto& e : list) {
        uint32_t key = e["key"].get<uint32_t>();
        final_state[key] = e["handler"].get<std::string>();
        ASSERT_TRUE(e.contains("slot")) << e.dump();
        uint32_t slot = e["slot"].get<uint32_t>();
        EXPECT_TRUE(slot_owner.emplace(slot, key).second)
            << "ports " << slot_owner[slot] << " and " << key << " share counter slot " << slot;
    }
    for (uint32_t key : keys) {
        std::string now = final_state.count(key) ? final_state[key] : "";
        bool explained = false;
        for (const auto& w : log) {
            if (w.key != key || w.value != now) continue;
            bool superseded = false;
            for (const auto& o : log)
                if (o.key == key && o.start > w.end) superseded = true;
            if (!superseded) explained = true;
        }
        EXPECT_TRUE(explained) << "key " << key << " ends as '" << now << "', which no last write left";
    }
    std::printf("concurrency: %zu writes by %d processes in %.1f s\n", log.size(), kWriters, took);
    std::system((tcd + " -q unload").c_str());
}

TEST(Concurrency, StuckHolderIsNamed) {
    TCD_REQUIRE_KERNEL();
    std::string dir = "/sys/fs/bpf/" + tcdtest::unique_name("tcdstuck");
    tcdtest::LockFiles locks{dir};
    std::string tcd = std::string(TCD_BIN) + " -d " + dir;
    std::system((tcd + " -q unload").c_str());
    ASSERT_EQ(std::system((tcd + " -q load").c_str()), 0);
    // A real tcd holds the lock: 'stats --reset' (which takes it) writing to
    // a pipe that is already full blocks in its print, lock held, until the
    // pipe is closed.
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char junk[4096] = {};
    while (write(p[1], junk, sizeof junk) > 0) {
    }
    fcntl(p[1], F_SETFL, 0);
    pid_t holder = fork();
    ASSERT_GE(holder, 0);
    if (holder == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(TCD_BIN, "tcd", "-d", dir.c_str(), "stats", "--reset", static_cast<char*>(nullptr));
        _exit(127);
    }
    close(p[1]);
    std::string lock = tcd::InstanceLock::path_for(dir);
    std::optional<long> holding;
    (void)tcdtest::wait_until(
        [&] {
            holding = tcd::InstanceLock::holder_pid(lock);
            return holding == holder;
        },
        std::chrono::seconds(10), "the holder to take the flock of " + lock);
    ASSERT_EQ(holding, std::optional<long>(holder)) << "the holder never took the lock";
    // Another spelling of the same pin dir waits on the same lock.
    std::string err = "/tmp/tcdstuck_" + std::to_string(getpid());
    int st = std::system(("TCD_LOCK_TIMEOUT=1 " + std::string(TCD_BIN) + " -d " + dir + "/ map set tcp drop 2>" + err)
                             .c_str());
    std::ifstream e(err);
    std::stringstream ss;
    ss << e.rdbuf();
    std::remove(err.c_str());
    close(p[0]);  // the holder's write fails; it exits
    int wst = 0;
    waitpid(holder, &wst, 0);
    EXPECT_EQ(WEXITSTATUS(st), 1);
    EXPECT_NE(ss.str().find("has held its lock for 1 s"), std::string::npos) << ss.str();
    EXPECT_NE(ss.str().find("(pid " + std::to_string(holder) + ")"), std::string::npos)
        << "holder pid " << holder << ": " << ss.str();
    std::string said = ss.str();
    EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << said;
    // The waiting command changed nothing.
    auto list = tcdtest::sh(tcd + " -j map list");
    EXPECT_EQ(list.out.find("\"tcp\""), std::string::npos) << list.out;
    std::system((tcd + " -q unload").c_str());
}

}  // namespace

namespace {

// /run/tcd entries whose name holds `tag`.
std::vector<std::string> lock_files_with(const std::string& tag) {
    std::vector<std::string> out;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/run/tcd", ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename().string().find(tag) != std::string::npos) out.push_back(it->path().string());
    return out;
}

// A lock file goes with its holder (docs/cli.md, "Privileges and locking"):
// commands on many pin dirs, failing ones and paths outside bpffs (/proc,
// /tmp) included, leave none of their lock files in /run/tcd. (Counted by
// this test's own names: other tcd commands may run on the machine meanwhile.)
TEST(Concurrency, LockFilesGoWithTheirHolders) {
    TCD_REQUIRE_KERNEL();
    const std::string tag = tcdtest::unique_name("tcdlockgone");
    ASSERT_EQ(lock_files_with(tag), std::vector<std::string>{}) << "left by an earlier run with this pid";
    std::vector<std::string> dirs;
    std::string bin = TCD_BIN;
    auto run = [&](const std::string& dir, const std::string& args, int want) {
        dirs.push_back(dir);
        auto r = tcdtest::sh(bin + " -q -d '" + dir + "' " + args);
        EXPECT_EQ(r.rc, want) << dir << " " << args << ": " << r.err;
    };
    const std::string live = "/sys/fs/bpf/" + tag + "_live";
    run(live, "load", 0);
    run(live, "map set tcp drop", 0);
    run(live + "/", "map del tcp", 0);  // another spelling, the same lock
    run(live, "unload", 0);
    for (int i = 0; i < 8; i++) {
        run("/sys/fs/bpf/" + tag + "_none" + std::to_string(i), "map set tcp drop", 1);  // not loaded
        run("/sys/fs/bpf/" + tag + "_none" + std::to_string(i), "stats --reset", 1);
        run("/tmp/" + tag + "_tmp" + std::to_string(i), "load", 1);  // not on a bpffs
        if (i % 2) run("/proc/" + tag + std::to_string(i), "load", 1);  // not on a bpffs
        else run("/proc/" + tag + std::to_string(i), "unload", 0);      // nothing there
    }
    run("/proc/self", "unload", 1);
    EXPECT_EQ(lock_files_with(tag), std::vector<std::string>{});
    std::error_code ec;
    for (const auto& d : dirs) EXPECT_FALSE(std::filesystem::exists(tcd::InstanceLock::path_for(d), ec)) << d;
    tcdtest::sh(bin + " -q -d " + live + " unload");
}

}  // namespace
