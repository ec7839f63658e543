// cli/words.cpp: the core's reasons and flags in the user's words.
#include <gtest/gtest.h>

#include <string>

#include "cli/words.h"
#include "core/attach.h"
#include "core/instance.h"
#include "core/kind.h"
#include "core/trace.h"

namespace {

using tcd::cli::said;

TEST(Words, ParseErrorsNameTheFlag) {
    EXPECT_EQ(said(tcd::parse_order("before:").error()), "--order before:: names no program (before:ID or before:NAME)");
    EXPECT_EQ(said(tcd::parse_order("beside:x").error()), "--order beside:x: not first, last, before:PROG or after:PROG");
    EXPECT_EQ(said(tcd::parse_hex("abc").error()), "--hex: odd number of hex digits");
    EXPECT_EQ(said(tcd::parse_key_kind("mac").error()).rfind("--key mac: not ", 0), 0u);
    EXPECT_EQ(said(tcd::parse_hook("tcx").error()).rfind("--hook tcx: not ", 0), 0u);
    EXPECT_EQ(said(tcd::parse_miss_action("next", tcd::Hook::xdp).error()),
              "--miss-action next: is for tc instances (the next tcx program); XDP has pass and drop");
    // The core's own words name no flag.
    EXPECT_EQ(tcd::parse_order("before:").error().message().find("--"), std::string::npos);
}

TEST(Words, StepsAndHints) {
    auto forced = tcd::about(tcd::fail("load", "busy"), tcd::Flag::force);
    EXPECT_EQ(said(forced.value()), "load --force: busy");
    auto out = tcd::worded(tcd::about(tcd::fail("attach", "no tcx"), tcd::Flag::order), tcd::Reason::leave_flag_out);
    EXPECT_EQ(said(out.value()), "attach --order: no tcx (leave --order out)");
    auto wired = tcd::worded(tcd::fail("unload", "wired"), tcd::Reason::wired_in_parent, {"/p", "tcp"});
    EXPECT_EQ(said(wired.value()), "unload: wired ('tcd -d /p map del tcp' first, or 'tcd unload --force' to unwire it there)");
    // The core's own hint (apply's note) follows the reason's.
    auto noted = tcd::worded(tcd::fail("apply: load", "refused", "1 change undone"), tcd::Reason::unload_first_drops);
    EXPECT_EQ(said(noted.value()), "apply: load: refused ('tcd unload' first (this drops wiring and counters); 1 change undone)");
    // A finding: WHY and how to get on, no WHAT.
    EXPECT_EQ(said(tcd::finding("half-made", tcd::Reason::unload_removes)), "half-made; 'tcd unload' removes it");
    EXPECT_EQ(said(tcd::finding("plain")), "plain");
}

TEST(Words, EveryReasonHasWords) {
    for (auto r = static_cast<uint16_t>(tcd::Reason::none) + 1; r <= static_cast<uint16_t>(tcd::kLastReason); r++) {
        tcd::Error e = tcd::finding("why", static_cast<tcd::Reason>(r), {"a", "b", "c"});
        e.what = "what";
        tcd::Error w = tcd::cli::in_words(e);
        EXPECT_TRUE(w.why != e.why || !w.hint.empty()) << "reason " << r;
        EXPECT_EQ(w.reason, tcd::Reason::none) << "reason " << r;
    }
}

}  // namespace
