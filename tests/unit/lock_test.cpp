// The lock of a pin dir is one file whatever the spelling of the directory:
// trailing or doubled slashes, '.', '..' and relative paths all serialise on
// the same lock.
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "core/lock.h"

namespace {

using tcd::InstanceLock;

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

}  // namespace
