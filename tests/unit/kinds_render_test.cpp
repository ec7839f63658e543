// How trace says why a frame was not run through test_run.
#include <gtest/gtest.h>

#include <string>

#include "cli/render.h"
#include "core/trace.h"

namespace {

tcd::TraceFrame not_run(uint32_t len, tcd::Verdict verdict) {
    tcd::TraceFrame f;
    f.frame = 1;
    f.len = len;
    f.cls = "malformed";
    f.verdict = verdict;
    f.ran = false;
    return f;
}

TEST(TraceNotRun, ShorterThanAnEthernetHeader) {
    std::string line = tcd::render::trace_frame_plain(not_run(8, {tcd::Hook::xdp, 2}));
    EXPECT_NE(line.find("(not run: shorter than an Ethernet header; no interface delivers it)"), std::string::npos)
        << line;
}

TEST(TraceNotRun, CutIpHeaderOnTc) {
    // tc's test_run refuses it, but a real interface hands it to tc.
    std::string line = tcd::render::trace_frame_plain(not_run(33, {tcd::Hook::tc, 0}));
    EXPECT_NE(line.find("tc's test_run refuses a cut IP header; on an interface tc sees it, malformed"),
              std::string::npos)
        << line;
    EXPECT_EQ(line.find("never"), std::string::npos) << line;
}

TEST(TraceNotRun, RunFramesSayNothing) {
    tcd::TraceFrame f = not_run(60, {tcd::Hook::tc, 0});
    f.ran = true;
    EXPECT_EQ(tcd::render::trace_frame_plain(f).find("not run"), std::string::npos);
    EXPECT_EQ(tcd::render::trace_frame_json(not_run(33, {tcd::Hook::tc, 0}))["ran"], false);
    EXPECT_FALSE(tcd::render::trace_frame_json(f).contains("ran"));
}

}  // namespace
