// Names from the kernel or the command line are bytes, not UTF-8: JSON output
// replaces what is not UTF-8 instead of throwing (nlohmann's type_error 316).
#include <gtest/gtest.h>

#include "cli/render.h"

TEST(RenderUtf8, InvalidInterfaceNameIsReplacedNotThrown) {
    tcd::AttachResult r;
    r.changed = true;
    r.where.ifname = std::string("ve\xff\xfe", 4);
    r.where.ifindex = 7;
    r.where.mode = tcd::AttachMode::skb;
    auto j = tcd::render::attach_json(r);
    EXPECT_THROW((void)j.dump(), nlohmann::json::type_error);  // the case is real
    std::string out;
    ASSERT_NO_THROW(out = tcd::render::dump(j));
    EXPECT_NE(out.find("ve\xef\xbf\xbd\xef\xbf\xbd"), std::string::npos) << out;  // U+FFFD twice
    EXPECT_TRUE(nlohmann::json::accept(out)) << out;
    ASSERT_NO_THROW(out = tcd::render::dump(j, 2));
    EXPECT_NE(out.find("\n  "), std::string::npos);
}

TEST(RenderUtf8, InvalidHandlerNameInWiring) {
    std::vector<tcd::WiredEntry> w{{6, "tcp", std::string("h\xc3", 2), 42, "abcd"}};
    auto j = tcd::render::wiring_json(w);
    std::string out;
    ASSERT_NO_THROW(out = tcd::render::dump(j));
    EXPECT_TRUE(nlohmann::json::accept(out)) << out;
    EXPECT_NE(out.find("h\xef\xbf\xbd"), std::string::npos) << out;
}
