// A command started in the background for the e2e tests (stats --watch,
// stats --listen), stdout and stderr into files of its own.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/common/shell.h"

namespace tcdtest {

// A command started in the background, stdout and stderr into files of
// their own; killed and reaped in the destructor if the test did not.
class Background {
public:
    explicit Background(const std::vector<std::string>& argv, const std::string& prefix = "/tmp/tcd_bg") {
        static int seq = 0;
        base_ = prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(seq++);
        pid_ = fork();
        if (pid_ == 0) {
            int out = open((base_ + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            int err = open((base_ + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            execv(args[0], args.data());
            _exit(127);
        }
    }
    ~Background() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        std::remove((base_ + ".out").c_str());
        std::remove((base_ + ".err").c_str());
    }
    bool started() const { return pid_ > 0; }
    // Sends sig without waiting (the process is reaped by stop or the
    // destructor, so a pid that exited meanwhile is still its own).
    bool signal(int sig) const { return pid_ > 0 && kill(pid_, sig) == 0; }
    std::string out() const { return slurp(base_ + ".out"); }
    // Sends sig and waits for the exit: status, stdout and stderr.
    Cmd stop(int sig) {
        Cmd c;
        int st = 0;
        if (kill(pid_, sig) == 0 && waitpid(pid_, &st, 0) == pid_) c.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        pid_ = -1;
        c.out = slurp(base_ + ".out");
        c.err = slurp(base_ + ".err");
        return c;
    }

private:
    std::string base_;
    pid_t pid_ = -1;
};

}  // namespace tcdtest
