// Running a shell command from a test and keeping its status and output.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace tcdtest {

struct Cmd {
    int rc = -1;
    std::string out, err;
};

inline std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// sh -c CMD, stdout and stderr kept apart. Safe to call from several threads.
inline Cmd sh(const std::string& cmd) {
    static std::atomic<unsigned> seq{0};
    std::string base = "/tmp/tcd_test_" + std::to_string(getpid()) + "_" + std::to_string(seq++);
    int st = std::system(("(" + cmd + ") >" + base + ".out 2>" + base + ".err").c_str());
    Cmd c;
    c.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    c.out = slurp(base + ".out");
    c.err = slurp(base + ".err");
    std::remove((base + ".out").c_str());
    std::remove((base + ".err").c_str());
    return c;
}

}  // namespace tcdtest
