// Linked into every binary whose tests run tcd on pin dirs of their own: after
// the tests, no lock file of a pin dir named after this process (its pid, as
// unique_name() and the fixtures spell it) may be left in /run/tcd
// (tests/common/lock_files.h says when tcd leaves them and why the tests remove
// them). Files that were there before the tests began (a dead process of an
// earlier run had this pid) are not counted; other processes' files do not
// carry this pid.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <set>
#include <string>

namespace {

// /run/tcd entries whose name holds this pid, not as part of a longer number.
std::set<std::string> own_lock_files() {
    std::set<std::string> out;
    const std::string pid = std::to_string(getpid());
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/run/tcd", ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (name.size() < 5 || name.compare(name.size() - 5, 5, ".lock") != 0) continue;
        for (size_t at = name.find(pid); at != std::string::npos; at = name.find(pid, at + 1)) {
            bool digit_before = at > 0 && std::isdigit(static_cast<unsigned char>(name[at - 1]));
            size_t after = at + pid.size();
            bool digit_after = after < name.size() && std::isdigit(static_cast<unsigned char>(name[after]));
            if (!digit_before && !digit_after) {
                out.insert(name);
                break;
            }
        }
    }
    return out;
}

class NoLockFilesLeft : public ::testing::Environment {
public:
    void SetUp() override { before_ = own_lock_files(); }
    void TearDown() override {
        std::string left;
        for (const auto& f : own_lock_files())
            if (!before_.count(f)) left += " /run/tcd/" + f;
        EXPECT_EQ(left, "") << "lock files of this run's pin dirs are left (tcdtest::LockFiles removes them)";
    }

private:
    std::set<std::string> before_;
};

const auto* const registered = ::testing::AddGlobalTestEnvironment(new NoLockFilesLeft);

}  // namespace
