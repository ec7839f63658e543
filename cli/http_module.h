// The HTTP server of `tcd stats --listen`: cpp-httplib (Debian's
// libcpp-httplib) in a module of its own, tcd-http.so, that tcd dlopen()s
// only for --listen. Linked into tcd, the library and what it needs
// (libstdc++.so, libssl, libcrypto, brotli) would be loaded and relocated at
// the start of every command: 3 ms more than tcd's whole start-up here.
//
// The module is transport only: it binds, accepts, runs requests on its
// thread pool and hands every GET or HEAD to tcd's handler, which says what
// to answer (cli/metrics_server.cpp). Other methods get 405. The two sides
// meet through this C interface alone: each keeps its own C++ runtime, and no
// exception or C++ object crosses.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TCD_HTTP_ABI 1

struct tcd_http_reply;   // the module's: one response being made
struct tcd_http_server;  // the module's: one listening server

// Sets the response: status, Content-Type and body (copied).
typedef void (*tcd_http_respond_fn)(struct tcd_http_reply* reply, int status, const char* content_type,
                                    const char* body, size_t len);
// Called on the module's threads, possibly several at once, for each GET or
// HEAD with the request's path (without the query). It must call respond.
typedef void (*tcd_http_handler_fn)(void* user, const char* path, struct tcd_http_reply* reply,
                                    tcd_http_respond_fn respond);

struct tcd_http_ops {
    int abi;  // TCD_HTTP_ABI
    // Binds host:port (host "" = every address, IPv6 and IPv4; port 0 = a free
    // one, written to *bound_port) and serves on threads of its own. On
    // failure returns NULL with *err the errno (0 when there is none) and why
    // in msg.
    struct tcd_http_server* (*start)(const char* host, int port, tcd_http_handler_fn handler, void* user,
                                     int* bound_port, int* err, char* msg, size_t msg_len);
    // 0 once the server stopped by itself (its accept loop ended).
    int (*running)(struct tcd_http_server* server);
    // Stops accepting, finishes the requests under way, frees the server.
    void (*stop)(struct tcd_http_server* server);
};

// The module's one entry point.
const struct tcd_http_ops* tcd_http_module(void);
#define TCD_HTTP_MODULE_SYMBOL "tcd_http_module"

#ifdef __cplusplus
}
#endif
