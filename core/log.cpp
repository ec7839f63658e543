#include "core/log.h"

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace tcd {
namespace {

bool g_verbose = false;
std::mutex g_mu;
std::string g_last;

void remember(const char* fmt, va_list ap) {
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    std::lock_guard lock(g_mu);
    g_last = line;
}

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
    if (g_verbose) return vfprintf(stderr, fmt, ap);
    if (level == LIBBPF_WARN) remember(fmt, ap);
    return 0;
}

int libxdp_print(enum libxdp_print_level level, const char* fmt, va_list ap) {
    if (g_verbose) return vfprintf(stderr, fmt, ap);
    if (level == LIBXDP_WARN) remember(fmt, ap);
    return 0;
}

}  // namespace

void set_library_verbosity(bool verbose) {
    g_verbose = verbose;
    libbpf_set_print(libbpf_print);
    libxdp_set_print(libxdp_print);
}

std::string last_library_warning() {
    std::lock_guard lock(g_mu);
    return g_last;
}

}  // namespace tcd
