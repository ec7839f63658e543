#include "core/log.h"

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <vector>

namespace tcd {
namespace {

bool g_verbose = false;
thread_local int g_quiet = 0;  // live QuietLibraries on this thread
std::mutex g_mu;
std::string g_last;
std::string g_verifier;

void remember(const char* fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n < 0) return;
    std::string line(size_t(n) + 1, '\0');
    vsnprintf(line.data(), line.size(), fmt, ap);
    line.resize(size_t(n));
    // libbpf prints a rejected program's verifier log in one warning,
    // between these markers.
    static const std::string begin = "-- BEGIN PROG LOAD LOG --", end = "-- END PROG LOAD LOG --";
    std::lock_guard lock(g_mu);
    if (auto b = line.find(begin); b != std::string::npos) {
        auto e = line.find(end, b);
        g_verifier = line.substr(b + begin.size(), e == std::string::npos ? std::string::npos : e - b - begin.size());
        line = line.substr(0, b) + "verifier log";
    }
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    g_last = line;
}

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
    if (g_quiet) return 0;
    if (g_verbose) return vfprintf(stderr, fmt, ap);
    if (level == LIBBPF_WARN) remember(fmt, ap);
    return 0;
}

int libxdp_print(enum libxdp_print_level level, const char* fmt, va_list ap) {
    if (g_quiet) return 0;
    if (g_verbose) return vfprintf(stderr, fmt, ap);
    if (level == LIBXDP_WARN) remember(fmt, ap);
    return 0;
}

}  // namespace

QuietLibraries::QuietLibraries() { ++g_quiet; }
QuietLibraries::~QuietLibraries() { --g_quiet; }

void set_library_verbosity(bool verbose) {
    g_verbose = verbose;
    libbpf_set_print(libbpf_print);
    libxdp_set_print(libxdp_print);
}

std::string last_verifier_words() {
    std::string log;
    {
        std::lock_guard lock(g_mu);
        log = g_verifier;
    }
    // Its last lines, without the statistics lines ("processed N insns ...",
    // "verification time ...", "stack depth ...") that follow the cause.
    std::vector<std::string> lines;
    size_t at = 0;
    while (at < log.size()) {
        size_t nl = log.find('\n', at);
        std::string l = log.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? log.size() : nl + 1;
        while (!l.empty() && (l.back() == ' ' || l.back() == '\r')) l.pop_back();
        if (l.empty() || l.rfind("processed ", 0) == 0 || l.rfind("verification time", 0) == 0 ||
            l.rfind("stack depth", 0) == 0 || l.rfind("max_states_per_insn", 0) == 0)
            continue;
        lines.push_back(l);
    }
    return fmt::format("{}", fmt::join(lines.end() - std::min<size_t>(lines.size(), 2), lines.end(), " / "));
}

std::string last_library_warning() {
    std::lock_guard lock(g_mu);
    return g_last;
}

}  // namespace tcd
