// tcd stats --listen: what each path answers, and the serving loop around the
// HTTP module (cli/http_module.h).
#include "cli/metrics_server.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/http_module.h"
#include "cli/render.h"
#include "cli/words.h"
#include "core/instance.h"
#include "core/jumptable.h"
#include "core/stats.h"

#ifndef TCD_HTTP_MODULE_REL
#define TCD_HTTP_MODULE_REL "../lib/tcd/tcd-http.so"
#endif

namespace tcd::cli {

namespace {

constexpr const char* kPromType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextType = "text/plain; charset=utf-8";

Result<ListenAddress> listen_usage(const std::string& spec, const std::string& why) {
    return usage_error("--listen " + spec, why, "e.g. --listen :9435 or --listen 127.0.0.1:9435");
}

std::string html_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

// The instance's counters as Prometheus text, read now: what `tcd stats
// --format prometheus` prints.
Result<std::string> prometheus_now(const std::string& pin_dir, bool all) {
    auto in = Instance::open(pin_dir);
    if (!in) return propagate(in);
    auto s = read_stats(in->stats_fd(), in->kind().key);
    if (!s) return propagate(s);
    auto w = list_wiring(*in, /*slotted_only=*/true);
    if (!w) return propagate(w);
    return render::stats_prometheus(make_stats_view(*s, nullptr, *w, all), pin_dir);
}

// Where the module is: beside the binary in a build tree, else where
// `cmake --install` and the package put it, relative to the binary.
std::string module_path() {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return TCD_HTTP_MODULE_REL;
    exe[n] = 0;
    std::string dir(exe);
    dir.resize(dir.rfind('/') + 1);
    if (access((dir + "tcd-http.so").c_str(), F_OK) == 0) return dir + "tcd-http.so";
    return dir + TCD_HTTP_MODULE_REL;
}

Result<const tcd_http_ops*> load_module() {
    std::string path = module_path();
    // Never closed: the server's threads run its code until the command ends.
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* e = dlerror();
        return fail("stats --listen", fmt::format("cannot load the HTTP module: {}", e ? e : path),
                    "it comes with tcd, as " + path + "; reinstall tcd, or install libcpp-httplib0.11");
    }
    auto entry = reinterpret_cast<const tcd_http_ops* (*)()>(dlsym(h, TCD_HTTP_MODULE_SYMBOL));
    const tcd_http_ops* ops = entry ? entry() : nullptr;
    if (!ops || ops->abi != TCD_HTTP_ABI)
        return fail("stats --listen", path + " is not this tcd's HTTP module", "reinstall tcd");
    return ops;
}

tl::unexpected<Error> bind_error(const ListenAddress& a, int err, const std::string& msg) {
    std::string what = "listen " + listen_text(a);
    switch (err) {
    case EADDRINUSE:
        return fail(what, "the address is in use",
                    fmt::format("another process listens on port {}: stop it, or choose another port", a.port), err);
    case EACCES:
        return fail(what, "permission denied", "ports below 1024 need root or CAP_NET_BIND_SERVICE", err);
    case EADDRNOTAVAIL:
        return fail(what, "no interface of this host has that address",
                    "use one of its addresses, 127.0.0.1, or :PORT for all", err);
    case 0:
        return fail(what, msg.empty() ? "cannot listen there" : msg, "check the host name", 0);
    default:
        return fail(what, std::strerror(err), "", err);
    }
}

// One scrape at a time reaches the core (it keeps probe results in
// statics); connections are accepted and answered concurrently around it.
struct Serving {
    std::string pin_dir;
    bool all = false;
    std::mutex core;
};

void handle(void* user, const char* path, tcd_http_reply* reply, tcd_http_respond_fn respond) {
    auto* s = static_cast<Serving*>(user);
    HttpAnswer a;
    try {
        std::lock_guard<std::mutex> hold(s->core);
        a = metrics_answer(path, s->pin_dir, s->all);
    } catch (const std::exception& e) {
        a = {500, kTextType, std::string("tcd: stats --listen: internal error: ") + e.what() + "\n"};
    } catch (...) {
        a = {500, kTextType, "tcd: stats --listen: internal error\n"};
    }
    respond(reply, a.status, a.content_type.c_str(), a.body.data(), a.body.size());
}

// SIGINT and SIGTERM blocked in this thread and so in the server's threads
// (they inherit the mask): the loop below takes them with sigtimedwait.
class BlockStopSignals {
public:
    BlockStopSignals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, &old_);
    }
    // A stop signal that came twice (timeout(1) signals the child, then its
    // process group) was taken once by the loop; the other, still pending,
    // would end the process by its default action (status 143) as the mask
    // comes off. The server has stopped by now: take what is pending first.
    ~BlockStopSignals() {
        const timespec now{0, 0};
        while (sigtimedwait(&set_, nullptr, &now) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    const sigset_t& set() const { return set_; }

private:
    sigset_t set_{}, old_{};
};

}  // namespace

Result<ListenAddress> parse_listen(const std::string& spec) {
    auto colon = spec.rfind(':');
    if (colon == std::string::npos) return listen_usage(spec, "not ADDR:PORT");
    ListenAddress a;
    a.host = spec.substr(0, colon);
    std::string port = spec.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) > 65535)
        return listen_usage(spec, "the port is not a number from 0 to 65535");
    a.port = std::stoi(port);
    if (!a.host.empty() && a.host.front() == '[') {
        in6_addr v6{};
        if (a.host.back() != ']' || inet_pton(AF_INET6, a.host.substr(1, a.host.size() - 2).c_str(), &v6) != 1)
            return listen_usage(spec, "not an IPv6 address in brackets");
        a.host = a.host.substr(1, a.host.size() - 2);
    } else if (a.host.find(':') != std::string::npos) {
        return listen_usage(spec, "an IPv6 address goes in brackets, [::1]:PORT");
    } else if (a.host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
               std::string::npos) {
        return listen_usage(spec, "not an address or a host name");
    }
    return a;
}

std::string listen_text(const ListenAddress& a) {
    if (a.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", a.host, a.port);
    return fmt::format("{}:{}", a.host, a.port);
}

HttpAnswer metrics_answer(const std::string& path, const std::string& pin_dir, bool all) {
    if (path == "/metrics") {
        auto text = prometheus_now(pin_dir, all);
        if (!text) return {503, kTextType, "tcd: " + cli::said(text.error()) + "\n"};
        return {200, kPromType, std::move(*text)};
    }
    if (path == "/-/healthy") return {200, kTextType, "tcd is healthy.\n"};
    if (path == "/-/ready") {
        auto text = prometheus_now(pin_dir, all);
        if (!text) return {503, kTextType, "tcd: " + cli::said(text.error()) + "\n"};
        return {200, kTextType, "tcd is ready: " + pin_dir + " is loaded.\n"};
    }
    if (path == "/") {
        return {200, "text/html; charset=utf-8",
                fmt::format("<html>\n<head><title>tcd</title></head>\n<body>\n<h1>tcd</h1>\n"
                            "<p>The counters of the BPF dispatcher in {}.</p>\n<ul>\n"
                            "<li><a href=\"metrics\">/metrics</a> (Prometheus text)</li>\n"
                            "<li><a href=\"-/healthy\">/-/healthy</a></li>\n"
                            "<li><a href=\"-/ready\">/-/ready</a> (the instance is loaded)</li>\n"
                            "</ul>\n</body>\n</html>\n",
                            html_escape(pin_dir))};
    }
    return {404, kTextType, "404 page not found\n"};
}

Result<> run_stats_listen(const StatsOptions& o, Context& ctx) {
    auto addr = parse_listen(o.listen);
    if (!addr) return propagate(addr);
    auto ops = load_module();
    if (!ops) return propagate(ops);

    BlockStopSignals signals;
    Serving serving;
    serving.pin_dir = ctx.g.pin_dir;
    serving.all = o.all;
    int bound = 0, err = 0;
    char msg[256] = "";
    tcd_http_server* srv =
        (*ops)->start(addr->host.c_str(), addr->port, handle, &serving, &bound, &err, msg, sizeof msg);
    if (!srv) return bind_error(*addr, err, msg);
    addr->port = bound;

    bool loaded = Instance::open(ctx.g.pin_dir).has_value();
    std::string where = listen_text(*addr);
    ctx.print({{"listen", where}, {"pin_dir", ctx.g.pin_dir}, {"loaded", loaded}},
              fmt::format("serving {} on {} (/metrics){}\n", ctx.g.pin_dir, where,
                          loaded ? "" : ": not loaded now, /metrics and /-/ready answer 503 until it is"));

    Result<> r;
    for (;;) {
        timespec tick{1, 0};
        int sig = sigtimedwait(&signals.set(), nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (!(*ops)->running(srv)) {
            r = fail("stats --listen", "the HTTP server stopped by itself");
            break;
        }
    }
    (*ops)->stop(srv);
    return r;
}

}  // namespace tcd::cli
