// tcd-http.so: cpp-httplib's server behind the C interface of
// cli/http_module.h. Transport only; what to answer is tcd's (cli/metrics_server.cpp).
#include "cli/http_module.h"

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

struct tcd_http_reply {
    httplib::Response* res;
    bool answered = false;
};

struct tcd_http_server {
    httplib::Server svr;
    int sock = -1;  // the listening socket, as socket_options last saw it
    std::thread thread;
    std::atomic<bool> done{false};
    tcd_http_handler_fn handler = nullptr;
    void* user = nullptr;
};

namespace {

void respond(tcd_http_reply* r, int status, const char* content_type, const char* body, size_t len) {
    r->res->status = status;
    r->res->set_content(body, len, content_type);
    r->answered = true;
}

// cpp-httplib's default sets SO_REUSEPORT, with which a second server on the
// same port binds too and takes half the connections. SO_REUSEADDR alone
// still refuses a port that something listens on (EADDRINUSE), and only lets
// a restarted server past the old one's TIME_WAIT connections.
void socket_options(tcd_http_server* s, socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    s->sock = sock;
}

void say(char* msg, size_t len, const std::string& s) {
    if (len) std::snprintf(msg, len, "%s", s.c_str());
}

tcd_http_server* start(const char* host, int port, tcd_http_handler_fn handler, void* user, int* bound_port,
                       int* err, char* msg, size_t msg_len) {
    *err = 0;
    say(msg, msg_len, "");
    try {
        auto* s = new tcd_http_server;
        s->handler = handler;
        s->user = user;
        s->svr.set_socket_options([s](socket_t sock) { socket_options(s, sock); });
        s->svr.set_tcp_nodelay(true);
        s->svr.set_pre_routing_handler([s](const httplib::Request& req, httplib::Response& res) {
            if (req.method != "GET" && req.method != "HEAD") {
                res.status = 405;
                res.set_header("Allow", "GET, HEAD");
                res.set_content("405 method not allowed\n", "text/plain; charset=utf-8");
                return httplib::Server::HandlerResponse::Handled;
            }
            tcd_http_reply r{&res};
            s->handler(s->user, req.path.c_str(), &r, respond);
            if (!r.answered) {
                res.status = 500;
                res.set_content("500 no answer\n", "text/plain; charset=utf-8");
            }
            return httplib::Server::HandlerResponse::Handled;
        });
        // "" = every address: "::" takes IPv4 too (net.ipv6.bindv6only is 0
        // by default); a kernel without IPv6 gets 0.0.0.0.
        std::string h = *host ? host : "::";
        auto bind = [&](const std::string& where) {
            errno = 0;
            int p = port ? (s->svr.bind_to_port(where, port) ? port : -1) : s->svr.bind_to_any_port(where);
            *err = errno;
            return p;
        };
        int p = bind(h);
        if (p < 0 && !*host && (*err == EAFNOSUPPORT || *err == EADDRNOTAVAIL)) p = bind("0.0.0.0");
        if (p < 0) {
            if (*err == 0) say(msg, msg_len, "no address of that name to listen on");
            delete s;
            return nullptr;
        }
        // The library listens with a backlog of 5, built into it: a burst of
        // scrapes past that waits for SYN retransmits (a second each). Linux
        // takes a second listen() on a listening socket as a new backlog.
        listen(s->sock, SOMAXCONN);
        *bound_port = p;
        s->thread = std::thread([s] {
            s->svr.listen_after_bind();
            s->done = true;
        });
        return s;
    } catch (const std::exception& e) {
        say(msg, msg_len, e.what());
        return nullptr;
    }
}

int running(tcd_http_server* s) { return s->done ? 0 : 1; }

void stop(tcd_http_server* s) {
    // stop() does nothing until the accept loop has begun: ask again until
    // it has ended.
    while (!s->done) {
        s->svr.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    s->thread.join();
    delete s;
}

const tcd_http_ops kOps = {TCD_HTTP_ABI, start, running, stop};

}  // namespace

extern "C" __attribute__((visibility("default"))) const tcd_http_ops* tcd_http_module(void) { return &kOps; }
