// The commands the end-to-end fixtures run: the tcd binary on a pin dir, and
// tcd_peer's UDP and TCP traffic between two network namespaces; also a key's
// row of `stats -j`. One copy for every fixture (e2e_test's Topology,
// core_test's and pair.h's Pair). Needs TCD_BIN, and TCD_PEER for the
// traffic, from the test target's compile definitions.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/common/shell.h"
#include "tests/common/topology.h"

namespace tcdtest {

// "tcd -d DIR ARGS"
inline Cmd tcd_on(const std::string& dir, const std::string& args) {
    return sh(std::string(TCD_BIN) + " -d " + dir + " " + args);
}

// "tcd -d DIR -j ARGS", expected to succeed; its JSON (null when it printed
// nothing, discarded when it printed something else).
inline nlohmann::json tcd_json_on(const std::string& dir, const std::string& args) {
    Cmd c = tcd_on(dir, "-j " + args);
    EXPECT_EQ(c.rc, 0) << args << ": " << c.err;
    return nlohmann::json::parse(c.out.empty() ? "null" : c.out, nullptr, false);
}

// TCD_TEST_SLOWDOWN=K (a whole number, default 1): the machine is K times
// slower than a development host (scripts/vm-test.sh's emulated guest).
// tcd_peer stretches its waits by it; no test counts how much work fits in
// a time (udp_stream_around makes the stream last as long as the work).
inline int slowdown() {
    const char* s = std::getenv("TCD_TEST_SLOWDOWN");
    int k = s ? std::atoi(s) : 1;
    return k < 1 ? 1 : k;
}

#ifdef TCD_PEER
// `count` UDP datagrams from namespace `from` to address `to` (of namespace
// `at`), port `port`; how many arrived (-1: the receiver did not start).
inline int udp_across(const std::string& from, const std::string& at, const std::string& to, int port, int count) {
    std::string peer = TCD_PEER;
    std::string recv = peer + " udp-recv --netns " + at + " --port " + std::to_string(port) + " --count " +
                       std::to_string(count) + " --timeout-ms 700";
    FILE* r = popen(recv.c_str(), "r");
    if (!r) return -1;
    char line[128] = {};
    if (!fgets(line, sizeof line, r)) {  // "ready"
        pclose(r);
        return -1;
    }
    sh(peer + " udp-send --netns " + from + " --to " + to + " --port " + std::to_string(port) + " --count " +
       std::to_string(count) + " --interval-us 200");
    int received = -1;
    while (fgets(line, sizeof line, r))
        if (std::sscanf(line, "received %d", &received) == 1) break;
    pclose(r);
    return received;
}

struct StreamResult {
    int received = -1, missing = -1, sent = -1;  // sent: what the receiver learnt from the last datagram
};

namespace detail {
// tcd_peer udp-recv in namespace `at` on `port`, for up to `count`
// datagrams, once it said "ready" (nullptr: it did not start).
inline FILE* udp_receiver(const std::string& at, int port, int count) {
    FILE* r = popen((std::string(TCD_PEER) + " udp-recv --netns " + at + " --port " + std::to_string(port) +
                     " --count " + std::to_string(count) + " --timeout-ms 2000")
                        .c_str(),
                    "r");
    char line[128] = {};
    if (r && !fgets(line, sizeof line, r)) {  // "ready"
        pclose(r);
        r = nullptr;
    }
    return r;
}

// What the receiver says once the stream ended, and its exit.
inline StreamResult udp_receiver_result(FILE* r) {
    StreamResult res;
    char line[128] = {};
    while (fgets(line, sizeof line, r)) {
        std::sscanf(line, "received %d", &res.received);
        std::sscanf(line, "missing %d", &res.missing);
        std::sscanf(line, "count %d", &res.sent);
    }
    pclose(r);
    return res;
}

inline std::string udp_sender(const std::string& from, const std::string& to, int port, int count,
                              int interval_us) {
    return std::string(TCD_PEER) + " udp-send --netns " + from + " --to " + to + " --port " + std::to_string(port) +
           " --count " + std::to_string(count) + " --interval-us " + std::to_string(interval_us);
}
}  // namespace detail

// A steady UDP stream, one datagram every `interval_us`, from namespace
// `from` to address `to` (of namespace `at`), port `port`, for exactly as
// long as `work` runs: the sender is told to stop once `work` returns (its
// last datagram says how many it sent). So a test does a fixed amount of
// work under traffic, however fast or slow the machine is, and never counts
// how much work fits in a stream. Returns what the receiver said.
inline StreamResult udp_stream_around(const std::string& from, const std::string& at, const std::string& to,
                                      int port, int interval_us, const std::function<void()>& work) {
    constexpr int kUpTo = 10000000;  // tcd_peer's largest count: the stream ends before
    FILE* r = detail::udp_receiver(at, port, kUpTo);
    if (!r) return {};
    FILE* s = popen((detail::udp_sender(from, to, port, kUpTo, interval_us) + " --stop stdin >/dev/null").c_str(), "w");
    if (!s) {
        pclose(r);
        return {};
    }
    work();
    pclose(s);  // end of file on the sender's stdin: it sends its last datagram and exits
    return detail::udp_receiver_result(r);
}

// `count` datagrams, `interval_us` apart, as above but for a fixed count,
// while nothing else is done (a stream that must cross a datapath whole).
inline StreamResult udp_stream(const std::string& from, const std::string& at, const std::string& to, int port,
                               int count, int interval_us) {
    FILE* r = detail::udp_receiver(at, port, count);
    if (!r) return {};
    sh(detail::udp_sender(from, to, port, count, interval_us) + " >/dev/null");
    return detail::udp_receiver_result(r);
}

// A TCP connection from namespace `from` to address `to` (of namespace `at`),
// port `port`, carrying `bytes`; whether both ends saw them all.
inline bool tcp_across(const std::string& from, const std::string& at, const std::string& to, int port, int bytes) {
    std::string peer = TCD_PEER;
    std::string listen = peer + " tcp-listen --netns " + at + " --port " + std::to_string(port) +
                         " --timeout-ms 3000 --bytes " + std::to_string(bytes);
    FILE* l = popen(listen.c_str(), "r");
    if (!l) return false;
    char line[128] = {};
    if (!fgets(line, sizeof line, l)) {
        pclose(l);
        return false;
    }
    Cmd s = sh(peer + " tcp-send --netns " + from + " --to " + to + " --port " + std::to_string(port) + " --bytes " +
               std::to_string(bytes) + " --timeout-ms 3000");
    int rc = pclose(l);
    return s.rc == 0 && rc == 0;
}
#endif

// `count` pings from namespace `from` to `to`, 0.1 s apart; whether they were answered.
inline bool ping_across(const std::string& from, const std::string& to, int count) {
    return sh(in_netns(from, "ping -q -c " + std::to_string(count) + " -i 0.1 -W 1 " + to)).rc == 0;
}

// The row of `key` in `stats -j` output, or null.
inline const nlohmann::json* key_row(const nlohmann::json& stats, int key) {
    for (const auto& k : stats["keys"])
        if (k["key"] == key) return &k;
    return nullptr;
}

// Its packets (0 without a row).
inline uint64_t packets(const nlohmann::json& stats, int key) {
    const nlohmann::json* r = key_row(stats, key);
    return r ? (*r)["packets"].get<uint64_t>() : 0;
}

}  // namespace tcdtest
