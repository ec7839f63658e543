// The lock of a pin dir is one file whatever the spelling of the directory:
// trailing or doubled slashes, '.', '..' and relative paths all serialise on
// the same lock.
#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/lock.h"

namespace {

using tcd::InstanceLock;
using tcd::LockSet;

TEST(Lock, EquivalentSpellingsShareOneLock) {
    const std::string want = InstanceLock::path_for("/sys/fs/bpf/tcd");
    EXPECT_EQ(want, "/run/tcd/_sys_fs_bpf_tcd.lock");
    for (const char* s : {"/sys/fs/bpf/tcd/", "/sys/fs/bpf/tcd//", "//sys//fs/bpf/tcd", "/sys/fs/bpf/./tcd",
                          "/sys/fs/bpf/x/../tcd", "/sys/./fs/bpf/tcd/."})
        EXPECT_EQ(InstanceLock::path_for(s), want) << s;
    EXPECT_EQ(InstanceLock::canonical_dir("/sys/fs/bpf/tcd/"), "/sys/fs/bpf/tcd");
}

TEST(Lock, RelativeDirIsMadeAbsolute) {
    char cwd[PATH_MAX];
    ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
    ASSERT_EQ(chdir("/sys/fs"), 0);
    std::string a = InstanceLock::path_for("bpf/tcd");
    std::string b = InstanceLock::path_for("./bpf/tcd/");
    std::string c = InstanceLock::path_for("../fs/bpf/tcd");
    ASSERT_EQ(chdir(cwd), 0);
    EXPECT_EQ(a, InstanceLock::path_for("/sys/fs/bpf/tcd"));
    EXPECT_EQ(b, a);
    EXPECT_EQ(c, a);
}

TEST(Lock, DistinctDirsDistinctLocks) {
    EXPECT_NE(InstanceLock::path_for("/sys/fs/bpf/a_b"), InstanceLock::path_for("/sys/fs/bpf/a/b"));
    EXPECT_NE(InstanceLock::path_for("/sys/fs/bpf/tcd"), InstanceLock::path_for("/sys/fs/bpf/tcd2"));
    EXPECT_NE(InstanceLock::path_for("/sys/fs/bpf/tcd"), InstanceLock::path_for("/sys/fs/bpf"));
}

// The lock files live in /run/tcd, which needs root to create.
bool lock_dir_usable() { return ::mkdir("/run/tcd", 0755) == 0 || errno == EEXIST; }

std::string fake_dir(const std::string& tag) { return "/tmp/tcdlockunit" + std::to_string(getpid()) + "/" + tag; }

// The holder is named by the kernel's record of the flock (/proc/locks),
// not by anything written into the file, which stays empty.
TEST(InstanceLock, HolderIsNamedByTheKernelAndTheFileStaysEmpty) {
    if (!lock_dir_usable()) GTEST_SKIP() << "/run/tcd cannot be created (not root)";
    const std::string dir = fake_dir("holder"), file = InstanceLock::path_for(dir);
    {
        auto l = InstanceLock::acquire(dir, 1);
        ASSERT_TRUE(l) << l.error().message();
        EXPECT_EQ(InstanceLock::holder_pid(file), std::optional<long>(getpid()));
        struct stat st {};
        ASSERT_EQ(::stat(file.c_str(), &st), 0);
        EXPECT_EQ(st.st_size, 0);
    }
    EXPECT_EQ(InstanceLock::holder_pid(file), std::nullopt);  // let go, and the file is gone
}

TEST(LockSet, TakesWhatIsNotHeldAndLetsGo) {
    if (!lock_dir_usable()) GTEST_SKIP() << "/run/tcd cannot be created (not root)";
    const std::string a = fake_dir("a"), b = fake_dir("b");
    auto own = InstanceLock::acquire(a, 1);
    ASSERT_TRUE(own) << own.error().message();
    EXPECT_TRUE(LockSet::held(a + "/"));
    EXPECT_FALSE(LockSet::held(b));
    {
        bool relocked = true;
        auto set = LockSet::acquire({a, b, b}, true, &relocked);
        ASSERT_TRUE(set) << set.error().message();
        EXPECT_TRUE(LockSet::held(b));
        EXPECT_FALSE(relocked);
        // Held already: nothing more to take.
        auto again = LockSet::acquire({b}, false);
        ASSERT_TRUE(again);
    }
    EXPECT_FALSE(LockSet::held(b));
    EXPECT_TRUE(LockSet::held(a));
}

// Two commands, each holding its own instance's lock and needing the
// other's (two instances wiring each other): both get through. The one whose
// need sorts before its own lock lets go and retakes both in order; the other
// waits in order.
TEST(LockSet, CrossedNeedsDoNotDeadlock) {
    if (!lock_dir_usable()) GTEST_SKIP() << "/run/tcd cannot be created (not root)";
    setenv("TCD_LOCK_TIMEOUT", "30", 1);  // a deadlock would end in a timeout, failing
    const std::string a = fake_dir("a"), b = fake_dir("b");  // a sorts first
    std::atomic<int> holding{0};
    bool ok_a = false, ok_b = false, relocked_a = true, relocked_b = false;
    auto run = [&](const std::string& own_dir, const std::string& other, bool& ok, bool& relocked) {
        auto own = InstanceLock::acquire(own_dir, 30);
        if (!own) return;
        holding++;
        while (holding.load() < 2) std::this_thread::yield();
        auto set = LockSet::acquire({other}, true, &relocked);
        ok = set && LockSet::held(own_dir) && LockSet::held(other);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // both held a while
    };
    std::thread ta(run, a, b, std::ref(ok_a), std::ref(relocked_a));
    std::thread tb(run, b, a, std::ref(ok_b), std::ref(relocked_b));
    ta.join();
    tb.join();
    unsetenv("TCD_LOCK_TIMEOUT");
    EXPECT_TRUE(ok_a);
    EXPECT_TRUE(ok_b);
    EXPECT_FALSE(relocked_a);  // b sorts after a: waited for in order
    EXPECT_TRUE(relocked_b);   // a sorts before b and was busy: b let go and retook both
}

}  // namespace

namespace {

// The lock file goes when its holder lets go (core/lock.cpp): a waiter that
// got the flock of the removed file must notice and take the path's new
// file, or two would hold one instance's lock at once. Threads of one
// process open the file each for itself, so their flocks contend as two
// processes' do. No lock file is left.
TEST(InstanceLock, OneHolderAtATimeAndNoFileLeft) {
    if (!lock_dir_usable()) GTEST_SKIP() << "/run/tcd cannot be created (not root)";
    const std::string dir = fake_dir("excl");
    const std::string file = InstanceLock::path_for(dir);
    constexpr int kThreads = 4, kRounds = 300;
    std::atomic<int> inside{0}, overlaps{0}, failures{0};
    auto run = [&] {
        for (int i = 0; i < kRounds; i++) {
            auto l = InstanceLock::acquire(dir, 60);
            if (!l) {
                failures++;
                continue;
            }
            if (inside.fetch_add(1) != 0) overlaps++;
            struct stat st {};
            if (::stat(file.c_str(), &st) != 0) failures++;  // the holder's file is there
            std::this_thread::yield();
            inside.fetch_sub(1);
        }
    };
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; i++) threads.emplace_back(run);
    for (auto& t : threads) t.join();
    EXPECT_EQ(overlaps.load(), 0) << "two threads held the lock at once";
    EXPECT_EQ(failures.load(), 0);
    struct stat st {};
    EXPECT_NE(::stat(file.c_str(), &st), 0) << file << " is left after its last holder let go";
}

// A relock (LockSet::acquire letting go of this thread's locks and taking
// them again, in order) takes the file another holder made meanwhile, and
// the lock files go when the locks do.
TEST(LockSet, RelockTakesTheNewFileAndLeavesNone) {
    if (!lock_dir_usable()) GTEST_SKIP() << "/run/tcd cannot be created (not root)";
    const std::string a = fake_dir("ra"), b = fake_dir("rb");  // a sorts first
    {
        auto own = InstanceLock::acquire(b, 1);
        ASSERT_TRUE(own) << own.error().message();
        struct stat before {};
        ASSERT_EQ(::stat(InstanceLock::path_for(b).c_str(), &before), 0);
        // Another thread holds a and waits for b: this thread, needing a,
        // must let go of b (relock). The other then takes b and lets go of
        // both, removing their files, while this thread waits for a on a's
        // old file and will retake b through its old fd.
        std::atomic<bool> holding{false};
        bool other_ok = false;
        std::thread other([&] {
            auto la = InstanceLock::acquire(a, 10);
            holding = true;
            if (!la) return;
            auto lb = InstanceLock::acquire(b, 10);
            other_ok = lb.has_value();
        });
        while (!holding) std::this_thread::yield();
        bool relocked = false;
        auto set = LockSet::acquire({a}, true, &relocked);
        other.join();
        ASSERT_TRUE(other_ok);
        ASSERT_TRUE(set) << set.error().message();
        EXPECT_TRUE(relocked);
        EXPECT_TRUE(LockSet::held(a));
        EXPECT_TRUE(LockSet::held(b));
        struct stat st {};
        EXPECT_EQ(::stat(InstanceLock::path_for(a).c_str(), &st), 0);
        ASSERT_EQ(::stat(InstanceLock::path_for(b).c_str(), &st), 0) << "b's holder has no lock file";
        EXPECT_NE(st.st_ino, before.st_ino) << "b was retaken on the file its other holder removed";
    }
    struct stat st {};
    EXPECT_NE(::stat(InstanceLock::path_for(a).c_str(), &st), 0);
    EXPECT_NE(::stat(InstanceLock::path_for(b).c_str(), &st), 0);
}

}  // namespace
