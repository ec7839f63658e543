// tcd_peer: a tiny UDP/TCP traffic source and sink for tcd end-to-end tests.
//
// It is meant to run on either end of a veth pair between network namespaces.
// Every subcommand can enter a namespace first (--netns), every wait has a
// timeout and every loop is bounded, so a broken datapath makes a test fail
// instead of hang. Errors are one line on stderr ("tcd_peer: CMD: ...") and a
// non-zero exit status (1 = runtime failure, 2 = usage error).
//
// Wire format: each UDP datagram starts with a 64-bit big-endian sequence
// number (0..N-1), padded to --size bytes; byte 8 of the last datagram of a
// stream is 0x01 (the others carry 0xab there), so the receiver learns how
// many were sent. TCP payload byte i is (i % 251), which the listener
// verifies.
//
// Build: g++ -std=c++20 -O2 -Wall -Wextra -Werror -o tcd_peer tcd_peer.cpp

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr const char* kUsage = R"(usage: tcd_peer COMMAND [--netns NAME|PATH] OPTIONS

  udp-recv --port P --count N --timeout-ms T [--bind ADDR]
      Print "ready", then receive until N datagrams arrived (or, once the
      sender's last datagram came, all it sent) or T ms passed without one.
      Prints "received K", "missing K", "dup K" and "count K" (how many the
      sender sent, as its last datagram said; N when that never came).
      Binds to [::] (dual-stack) unless --bind is given.
  udp-send --to ADDR --port P --count N [--interval-us U] [--size BYTES]
           [--stop stdin]
      Send N datagrams carrying sequence numbers 0..N-1 (size default 64,
      minimum 9), the last one marked as the last. With --stop stdin, N is
      an upper bound: the stream ends (its current datagram marked as the
      last) as soon as standard input reaches end of file, so a stream lasts
      exactly as long as the work it accompanies. Prints "sent K".
  tcp-listen --port P --timeout-ms T [--bytes B] [--bind ADDR]
      Print "ready", accept one connection, read until EOF (T ms idle
      timeout), print "received BYTES". With --bytes, fail unless exactly B.
  tcp-send --to ADDR --port P --bytes B --timeout-ms T
      Connect, write B bytes, shut down, wait for the peer to close.
      Prints "sent B".

--netns NAME enters /run/netns/NAME; a value containing '/' is a path.
ADDR is an IPv4 or IPv6 literal (fe80::1%IFACE accepted).
TCD_TEST_SLOWDOWN=K in the environment multiplies every --timeout-ms by K.
)";

constexpr uint64_t kMaxCount = 10'000'000;
constexpr uint64_t kMaxTimeoutMs = 3'600'000;
constexpr uint64_t kMaxTcpBytes = uint64_t{1} << 34;  // 16 GiB
constexpr uint8_t kPatternModulus = 251;
constexpr uint8_t kLastMark = 0x01;  // byte 8 of a stream's last datagram

using Clock = std::chrono::steady_clock;

std::string g_command;  // Prefix for error messages once known.

[[noreturn]] void fail(const std::string& msg, int status = 1) {
  if (g_command.empty())
    std::fprintf(stderr, "tcd_peer: %s\n", msg.c_str());
  else
    std::fprintf(stderr, "tcd_peer: %s: %s\n", g_command.c_str(), msg.c_str());
  std::exit(status);
}

[[noreturn]] void usage_error(const std::string& msg) { fail(msg + " (see tcd_peer --help)", 2); }

// "what: strerror(errno)"
std::string sys_error(const std::string& what, int err = errno) {
  return what + ": " + std::strerror(err);
}

void print_line(const std::string& line) {
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// "--key value" options, validated against the keys a subcommand accepts.
class Options {
 public:
  Options(int argc, char** argv, const std::vector<std::string_view>& allowed) {
    for (int i = 0; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (!arg.starts_with("--")) usage_error("unexpected argument '" + std::string(arg) + "'");
      std::string key(arg.substr(2));
      bool known = key == "netns";
      for (auto a : allowed) known = known || key == a;
      if (!known) usage_error("unknown option --" + key);
      if (i + 1 >= argc) usage_error("--" + key + " needs a value");
      if (!values_.emplace(key, argv[++i]).second) usage_error("--" + key + " given twice");
    }
  }

  std::optional<std::string> get(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  std::string required(const std::string& key) const {
    auto v = get(key);
    if (!v) usage_error("missing --" + key);
    return *v;
  }

  uint64_t number(const std::string& key, uint64_t lo, uint64_t hi,
                  std::optional<uint64_t> fallback = std::nullopt) const {
    auto text = get(key);
    if (!text) {
      if (fallback) return *fallback;
      usage_error("missing --" + key);
    }
    uint64_t value = 0;
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, value);
    if (text->empty() || ec != std::errc() || ptr != end || value < lo || value > hi)
      usage_error("--" + key + " must be an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "], got '" + *text + "'");
    return value;
  }

 private:
  std::map<std::string, std::string> values_;
};

void enter_netns(const Options& opts) {
  auto ns = opts.get("netns");
  if (!ns) return;
  if (ns->empty()) usage_error("--netns must not be empty");
  std::string path = ns->find('/') == std::string::npos ? "/run/netns/" + *ns : *ns;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) fail(sys_error("open netns " + path));
  if (::setns(fd.get(), CLONE_NEWNET) < 0) fail(sys_error("setns " + path));
}

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* ptr() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

std::optional<SockAddr> parse_addr(const std::string& text, uint16_t port) {
  SockAddr out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  std::string host = text;
  if (auto pct = host.find('%'); pct != std::string::npos) {
    v6->sin6_scope_id = ::if_nametoindex(host.substr(pct + 1).c_str());
    if (v6->sin6_scope_id == 0) return std::nullopt;
    host.resize(pct);
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) return std::nullopt;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  out.len = sizeof(sockaddr_in6);
  return out;
}

SockAddr require_addr(const Options& opts, const std::string& key, uint16_t port) {
  std::string text = opts.required(key);
  auto addr = parse_addr(text, port);
  if (!addr) usage_error("--" + key + ": not an IPv4/IPv6 address: '" + text + "'");
  return *addr;
}

// Socket bound to --bind, or to [::] dual-stack (0.0.0.0 if IPv6 is unavailable).
UniqueFd open_bound_socket(const Options& opts, int type, uint16_t port) {
  SockAddr addr;
  if (opts.get("bind")) {
    addr = require_addr(opts, "bind", port);
  } else {
    addr = *parse_addr("::", port);
    UniqueFd probe(::socket(AF_INET6, type | SOCK_CLOEXEC, 0));
    if (!probe && errno == EAFNOSUPPORT) addr = *parse_addr("0.0.0.0", port);
  }
  UniqueFd fd(::socket(addr.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail(sys_error("socket"));
  int one = 1, zero = 0;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.family() == AF_INET6 &&
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
    fail(sys_error("setsockopt IPV6_V6ONLY"));
  if (::bind(fd.get(), addr.ptr(), addr.len) < 0)
    fail(sys_error("bind port " + std::to_string(port)));
  return fd;
}

// Waits until fd reports one of `events` or `deadline` passes (returns false).
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, events, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) fail(sys_error("poll"));
  }
}

// --timeout-ms, times TCD_TEST_SLOWDOWN (a whole number, default 1): on a
// machine that runs everything K times slower, such as scripts/vm-test.sh's
// emulated guest, every wait stretches without the tests' numbers changing.
uint64_t timeout_option(const Options& opts) {
  uint64_t ms = opts.number("timeout-ms", 1, kMaxTimeoutMs);
  if (const char* s = std::getenv("TCD_TEST_SLOWDOWN")) {
    uint64_t scale = std::strtoull(s, nullptr, 10);
    if (scale > 1) ms = std::min<uint64_t>(ms * scale, kMaxTimeoutMs);
  }
  return ms;
}

std::string timed_out(uint64_t ms) { return "timed out after " + std::to_string(ms) + " ms"; }

int udp_recv(const Options& opts) {
  auto port = static_cast<uint16_t>(opts.number("port", 1, 65535));
  uint64_t count = opts.number("count", 1, kMaxCount);
  uint64_t timeout_ms = timeout_option(opts);
  enter_netns(opts);

  UniqueFd fd = open_bound_socket(opts, SOCK_DGRAM, port);
  int rcvbuf = 8 << 20;  // Absorb unpaced bursts; best effort (FORCE needs CAP_NET_ADMIN).
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  print_line("ready");

  std::vector<bool> seen(count);
  uint64_t received = 0, distinct = 0, dups = 0;
  std::vector<uint8_t> buf(65536);
  auto timeout = std::chrono::milliseconds(timeout_ms);
  auto deadline = Clock::now() + timeout;
  // Until all were seen: `count`, or fewer once the last datagram says so.
  while (distinct < count && wait_for(fd.get(), POLLIN, deadline)) {
    ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail(sys_error("recv"));
    }
    ++received;
    deadline = Clock::now() + timeout;
    if (n < 8) continue;  // Too short to carry a sequence number.
    uint64_t seq = 0;
    for (int i = 0; i < 8; ++i) seq = (seq << 8) | buf[i];
    if (seq >= count) continue;  // Not one of ours; counted, but not tracked.
    if (n > 8 && buf[8] == kLastMark) count = seq + 1;  // The sender's last.
    if (seen[seq]) {
      ++dups;
    } else {
      seen[seq] = true;
      ++distinct;
    }
  }
  print_line("received " + std::to_string(received));
  print_line("missing " + std::to_string(count - std::min(distinct, count)));
  print_line("dup " + std::to_string(dups));
  print_line("count " + std::to_string(count));
  return 0;
}

// True once standard input has reached end of file (or hung up); reads and
// drops whatever it carries before that. Never blocks.
bool stdin_ended() {
  for (;;) {
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    int r = ::poll(&pfd, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    if (!(pfd.revents & POLLIN)) return true;  // POLLHUP, POLLERR or POLLNVAL alone
    char junk[256];
    ssize_t n = ::read(STDIN_FILENO, junk, sizeof junk);
    if (n == 0) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN) return true;
  }
}

int udp_send(const Options& opts) {
  auto port = static_cast<uint16_t>(opts.number("port", 1, 65535));
  SockAddr to = require_addr(opts, "to", port);
  uint64_t count = opts.number("count", 1, kMaxCount);
  uint64_t interval_us = opts.number("interval-us", 0, 10'000'000, 0);
  uint64_t size = opts.number("size", 9, 65507, 64);
  bool stop_on_stdin = false;
  if (auto stop = opts.get("stop")) {
    if (*stop != "stdin") usage_error("--stop takes 'stdin', got '" + *stop + "'");
    stop_on_stdin = true;
  }
  enter_netns(opts);

  UniqueFd fd(::socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) fail(sys_error("socket"));
  timeval send_timeout{1, 0};  // A full send buffer must not block forever.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));

  std::vector<uint8_t> payload(size, 0xab);
  timespec next{};
  ::clock_gettime(CLOCK_MONOTONIC, &next);
  uint64_t sent = 0;
  for (uint64_t seq = 0; seq < count; ++seq) {
    for (int i = 0; i < 8; ++i) payload[i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
    bool last = seq + 1 == count || (stop_on_stdin && stdin_ended());
    if (last) payload[8] = kLastMark;
    // Unconnected sendto: ICMP errors from the peer are not reported back as
    // ECONNREFUSED on later sends, so a closed port is just a lossy sink.
    while (::sendto(fd.get(), payload.data(), payload.size(), 0, to.ptr(), to.len) < 0) {
      if (errno != EINTR) fail(sys_error("sendto (datagram " + std::to_string(seq) + ")"));
    }
    sent = seq + 1;
    if (last) break;
    if (interval_us > 0) {
      // The stream's pace is what --interval-us asks for (the live-swap tests
      // need it to last seconds): a rate, not a wait for something.
      uint64_t nsec = static_cast<uint64_t>(next.tv_nsec) + interval_us * 1000;
      next.tv_sec += static_cast<time_t>(nsec / 1'000'000'000);
      next.tv_nsec = static_cast<long>(nsec % 1'000'000'000);
      while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr) == EINTR) {
      }
    }
  }
  print_line("sent " + std::to_string(sent));
  return 0;
}

int tcp_listen(const Options& opts) {
  auto port = static_cast<uint16_t>(opts.number("port", 1, 65535));
  uint64_t timeout_ms = timeout_option(opts);
  std::optional<uint64_t> expected;
  if (opts.get("bytes")) expected = opts.number("bytes", 0, kMaxTcpBytes);
  enter_netns(opts);

  UniqueFd listener = open_bound_socket(opts, SOCK_STREAM, port);
  if (::listen(listener.get(), 1) < 0) fail(sys_error("listen"));
  print_line("ready");

  auto timeout = std::chrono::milliseconds(timeout_ms);
  if (!wait_for(listener.get(), POLLIN, Clock::now() + timeout))
    fail("accept: " + timed_out(timeout_ms));
  UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!conn) fail(sys_error("accept"));
  listener.reset();

  uint64_t total = 0;
  std::optional<uint64_t> corrupt_at;
  std::vector<uint8_t> buf(65536);
  auto deadline = Clock::now() + timeout;  // Idle timeout: reset on progress.
  for (;;) {
    if (!wait_for(conn.get(), POLLIN, deadline))
      fail("read: " + timed_out(timeout_ms) + " (received " + std::to_string(total) + " bytes)");
    ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail(sys_error("recv after " + std::to_string(total) + " bytes"));
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n && !corrupt_at; ++i)
      if (buf[i] != (total + i) % kPatternModulus) corrupt_at = total + i;
    total += static_cast<uint64_t>(n);
    if (total > kMaxTcpBytes) fail("peer sent more than " + std::to_string(kMaxTcpBytes) + " bytes");
    deadline = Clock::now() + timeout;
  }
  print_line("received " + std::to_string(total));
  if (corrupt_at) fail("payload corrupted at byte offset " + std::to_string(*corrupt_at));
  if (expected && total != *expected)
    fail("expected " + std::to_string(*expected) + " bytes, received " + std::to_string(total));
  return 0;
}

int tcp_send(const Options& opts) {
  auto port = static_cast<uint16_t>(opts.number("port", 1, 65535));
  std::string to_text = opts.required("to");
  SockAddr to = require_addr(opts, "to", port);
  uint64_t bytes = opts.number("bytes", 0, kMaxTcpBytes);
  uint64_t timeout_ms = timeout_option(opts);
  enter_netns(opts);

  auto timeout = std::chrono::milliseconds(timeout_ms);
  auto connect_failed = [&](const std::string& reason) {
    fail("connect to " + to_text + ":" + std::to_string(port) + ": " + reason);
  };
  UniqueFd fd(::socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail(sys_error("socket"));
  if (::connect(fd.get(), to.ptr(), to.len) < 0) {
    if (errno != EINPROGRESS) connect_failed(std::strerror(errno));
    if (!wait_for(fd.get(), POLLOUT, Clock::now() + timeout)) connect_failed(timed_out(timeout_ms));
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) connect_failed(std::strerror(err));
  }

  // Pattern buffer long enough that any offset mod 251 has a full chunk after it.
  constexpr size_t kChunk = 65536;
  std::vector<uint8_t> pattern(kChunk + kPatternModulus);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i % kPatternModulus);

  uint64_t sent = 0;
  auto deadline = Clock::now() + timeout;  // Idle timeout: reset on progress.
  while (sent < bytes) {
    if (!wait_for(fd.get(), POLLOUT, deadline))
      fail("send: " + timed_out(timeout_ms) + " (sent " + std::to_string(sent) + " bytes)");
    size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - sent));
    ssize_t n = ::send(fd.get(), pattern.data() + sent % kPatternModulus, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      fail(sys_error("send after " + std::to_string(sent) + " bytes"));
    }
    sent += static_cast<uint64_t>(n);
    deadline = Clock::now() + timeout;
  }
  if (::shutdown(fd.get(), SHUT_WR) < 0) fail(sys_error("shutdown"));

  // Wait for the peer's FIN so "sent" means the listener consumed everything.
  deadline = Clock::now() + timeout;
  char sink[4096];
  for (;;) {
    if (!wait_for(fd.get(), POLLIN, deadline)) fail("waiting for close: " + timed_out(timeout_ms));
    ssize_t n = ::recv(fd.get(), sink, sizeof(sink), 0);
    if (n == 0) break;
    if (n < 0 && errno != EAGAIN && errno != EINTR) fail(sys_error("waiting for close"));
  }
  print_line("sent " + std::to_string(bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  struct Command {
    const char* name;
    std::vector<std::string_view> options;
    int (*run)(const Options&);
  };
  const Command commands[] = {
      {"udp-recv", {"port", "count", "timeout-ms", "bind"}, udp_recv},
      {"udp-send", {"to", "port", "count", "interval-us", "size", "stop"}, udp_send},
      {"tcp-listen", {"port", "timeout-ms", "bytes", "bind"}, tcp_listen},
      {"tcp-send", {"to", "port", "bytes", "timeout-ms"}, tcp_send},
  };

  if (argc < 2) usage_error("missing command");
  std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  for (const auto& cmd : commands) {
    if (name != cmd.name) continue;
    g_command = cmd.name;
    Options opts(argc - 2, argv + 2, cmd.options);
    return cmd.run(opts);
  }
  usage_error("unknown command '" + std::string(name) + "'");
}
