// tcd stats --listen on the host: the tcd binary serving an instance of the
// test's own over HTTP on 127.0.0.1 (a port the kernel picks): /metrics is
// the --format prometheus text read on each scrape (an unload and a load in
// between are seen), the probes' paths, 404 and 405, 32 scrapes at once, a
// second server refused the port in use, SIGTERM and SIGINT end it with
// status 0. The container image runs the same (tests/image/check_image.sh).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/lifecycle.h"
#include "tests/common/instance.h"
#include "tests/common/kernel.h"
#include "tests/common/background.h"
#include "tests/common/shell.h"
#include "tests/common/wait.h"

namespace {

using tcdtest::Cmd;

// tcd stats --listen in the background (tests/common/background.h).
class Server : public tcdtest::Background {
public:
    explicit Server(const std::vector<std::string>& argv) : Background(argv, "/tmp/tcd_listen") {}
    // The port from the -j line it prints when it serves; 0 until then.
    int port() const {
        std::string o = out();
        auto nl = o.find('\n');
        if (nl == std::string::npos) return 0;
        auto j = nlohmann::json::parse(o.substr(0, nl), nullptr, false);
        if (!j.is_object() || !j.contains("listen")) return 0;
        std::string l = j["listen"];
        return std::stoi(l.substr(l.rfind(':') + 1));
    }
};

struct Reply {
    int status = 0;
    std::string head, body;
};

// One HTTP/1.0 request to 127.0.0.1:port (the server closes after it).
Reply request(int port, const std::string& method, const std::string& path) {
    Reply r;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return r;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return r;
    }
    std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
        close(fd);
        return r;
    }
    std::string all;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
    close(fd);
    auto end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
    r.status = std::stoi(all.substr(9, 3));
    r.head = all.substr(0, end);
    r.body = all.substr(end + 4);
    return r;
}

class Listen : public ::testing::Test {
protected:
    void SetUp() override {
        TCD_REQUIRE_KERNEL();
        inst_.emplace("tcd_listen", tcd::MissAction::pass);
        ASSERT_EQ(inst_->error(), "");
    }
    std::string dir() const { return inst_->dir(); }
    // Starts a server on a free port of 127.0.0.1 and waits for its line.
    int serve(std::optional<Server>& s) {
        s.emplace(std::vector<std::string>{TCD_BIN, "-d", dir(), "-j", "stats", "--listen", "127.0.0.1:0"});
        bool up = static_cast<bool>(tcdtest::wait_until([&] { return s->port() != 0; }, std::chrono::seconds(10),
                                      "tcd stats --listen says where it listens"));
        return up ? s->port() : 0;
    }
    std::optional<tcdtest::TestInstance> inst_;
};

TEST_F(Listen, ServesWhatFormatPrometheusPrintsOnEachScrape) {
    std::optional<Server> s;
    int port = serve(s);
    ASSERT_NE(port, 0) << s->out();
    auto first = nlohmann::json::parse(s->out().substr(0, s->out().find('\n')));
    EXPECT_EQ(first["pin_dir"], dir());
    EXPECT_EQ(first["loaded"], true);

    Reply m = request(port, "GET", "/metrics");
    ASSERT_EQ(m.status, 200) << m.head << m.body;
    EXPECT_NE(m.head.find("Content-Type: text/plain; version=0.0.4; charset=utf-8"), std::string::npos) << m.head;
    Cmd once = tcdtest::sh(std::string(TCD_BIN) + " -d " + dir() + " stats --format prometheus");
    ASSERT_EQ(once.rc, 0) << once.err;
    EXPECT_EQ(m.body, once.out);  // nothing flows: the same reading
    EXPECT_NE(m.body.find("tcd_packets_total{pin_dir=\"" + dir() + "\",key=\"6\",proto=\"tcp\",handler=\"tcp_handler\"} 0"),
              std::string::npos)
        << m.body;
    Reply head = request(port, "HEAD", "/metrics");
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.body, "");

    EXPECT_EQ(request(port, "GET", "/-/healthy").status, 200);
    Reply ready = request(port, "GET", "/-/ready");
    EXPECT_EQ(ready.status, 200) << ready.body;
    Reply root = request(port, "GET", "/");
    EXPECT_EQ(root.status, 200);
    EXPECT_NE(root.body.find("href=\"metrics\""), std::string::npos) << root.body;
    EXPECT_EQ(request(port, "GET", "/metrics/more").status, 404);
    EXPECT_EQ(request(port, "GET", "/favicon.ico").status, 404);
    Reply post = request(port, "POST", "/metrics");
    EXPECT_EQ(post.status, 405);
    EXPECT_NE(post.head.find("Allow: GET, HEAD"), std::string::npos) << post.head;

    // Each scrape reads the pins afresh: unloaded, it answers 503 with tcd's
    // error line and is not ready; loaded again, 200 and ready.
    ASSERT_TRUE(tcd::unload(dir()).has_value());
    Reply gone = request(port, "GET", "/metrics");
    EXPECT_EQ(gone.status, 503);
    EXPECT_EQ(gone.body.rfind("tcd: instance " + dir() + ": not loaded", 0), 0u) << gone.body;
    EXPECT_EQ(request(port, "GET", "/-/ready").status, 503);
    EXPECT_EQ(request(port, "GET", "/-/healthy").status, 200);
    ASSERT_TRUE(tcd::load(dir(), {tcd::MissAction::pass, false}).has_value());
    EXPECT_EQ(request(port, "GET", "/metrics").status, 200);
    EXPECT_EQ(request(port, "GET", "/-/ready").status, 200);

    Cmd c = s->stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.err, "");
}

TEST_F(Listen, AnswersConcurrentScrapes) {
    std::optional<Server> s;
    int port = serve(s);
    ASSERT_NE(port, 0) << s->out();
    std::vector<Reply> replies(32);
    std::vector<std::thread> threads;
    for (auto& r : replies) threads.emplace_back([&r, port] { r = request(port, "GET", "/metrics"); });
    for (auto& t : threads) t.join();
    for (const auto& r : replies) {
        EXPECT_EQ(r.status, 200);
        EXPECT_NE(r.body.find("tcd_total_bytes_total{pin_dir=\"" + dir() + "\"} "), std::string::npos) << r.body;
    }
    EXPECT_EQ(s->stop(SIGINT).rc, 0);
}

TEST_F(Listen, RefusesAPortInUse) {
    std::optional<Server> s;
    int port = serve(s);
    ASSERT_NE(port, 0) << s->out();
    std::string p = std::to_string(port);
    Cmd second = tcdtest::sh(std::string(TCD_BIN) + " -d " + dir() + " stats --listen 127.0.0.1:" + p);
    EXPECT_EQ(second.rc, 1);
    EXPECT_EQ(second.err, "tcd: listen 127.0.0.1:" + p + ": the address is in use (another process listens on port " +
                              p + ": stop it, or choose another port)\n");
    EXPECT_EQ(second.out, "");
    // The first one still answers.
    EXPECT_EQ(request(port, "GET", "/metrics").status, 200);
    EXPECT_EQ(s->stop(SIGTERM).rc, 0);
}

TEST_F(Listen, StartsBeforeTheInstanceIsLoaded) {
    ASSERT_TRUE(tcd::unload(dir()).has_value());
    Server s({TCD_BIN, "-d", dir(), "stats", "--listen", "127.0.0.1:0"});
    ASSERT_TRUE(tcdtest::wait_until([&] { return s.out().find('\n') != std::string::npos; }, std::chrono::seconds(10),
                                    "tcd stats --listen starts"));
    EXPECT_NE(s.out().find(": not loaded now, /metrics and /-/ready answer 503 until it is"), std::string::npos)
        << s.out();
    EXPECT_EQ(s.stop(SIGTERM).rc, 0);
}

// timeout(1) sends its signal to the command and then to the process group,
// so a server can get SIGTERM twice: the second, pending as it stopped,
// ended it with status 143 (the packaged binary's check failed so).
TEST_F(Listen, SigtermTwiceStillEndsWithStatusZero) {
    std::optional<Server> s;
    ASSERT_NE(serve(s), 0) << s->out();
    ASSERT_TRUE(s->signal(SIGTERM));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Cmd c = s->stop(SIGTERM);
    EXPECT_EQ(c.rc, 0) << c.err;
}

}  // namespace
