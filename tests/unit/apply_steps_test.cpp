// apply's plan as data: each step said as apply and --dry-run print it (the
// texts from before the plan became data), and the rollback guard that
// execute and the commands share.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/apply_text.h"
#include "core/apply.h"
#include "core/rollback.h"

namespace {

using tcd::Step;
using tcd::StepOp;

TEST(ApplySteps, SaidAsTheCommandLine) {
    tcd::LoadOptions load;
    load.miss = tcd::MissAction::next;
    load.kind = {tcd::KeyKind::port, tcd::Hook::tc};
    EXPECT_EQ(tcd::step_text({StepOp::load, "/d", load}), "load --key port --hook tc --miss-action next");
    load.force = true;
    load.miss = tcd::MissAction::drop;
    EXPECT_EQ(tcd::step_text({StepOp::reload, "/d", tcd::ReloadStep{load, tcd::MissAction::pass}}),
              "load --force --miss-action drop");
    EXPECT_EQ(tcd::step_text({StepOp::unload, "/d",
                              tcd::UnloadStep{{tcd::KeyKind::proto, tcd::Hook::xdp}, {tcd::KeyKind::port, tcd::Hook::tc}}}),
              "unload (a proto instance on xdp; port on tc is wanted)");
    EXPECT_EQ(tcd::step_text({StepOp::handler_load, "/d", tcd::HandlerLoadRequest{"ports.bpf.o", {"a", "b"}}}),
              "handler load ports.bpf.o --prog a --prog b");
    EXPECT_EQ(tcd::step_text({StepOp::wire, "/d", tcd::WireRequest{6, "tcp_handler", ""}}), "map set 6 tcp_handler");
    EXPECT_EQ(tcd::step_text({StepOp::rewire_child, "/d", tcd::WireRequest{6, "/c", "/c"}}),
              "map set 6 /c (its dispatcher was replaced)");
    EXPECT_EQ(tcd::step_text({StepOp::unwire, "/d", tcd::UnwireRequest{17, "drop"}}),
              "map del 17 (wired to drop, not in the file)");
    EXPECT_EQ(tcd::step_text({StepOp::respecialise, "/d", tcd::RespecialiseRequest{{1, 6}}}),
              "respecialise (direct jumps to 1 6: a command was cut short before it)");
    EXPECT_EQ(tcd::step_text({StepOp::respecialise, "/d", tcd::RespecialiseRequest{}}),
              "respecialise (direct jumps to none: a command was cut short before it)");
    tcd::AttachRequest xdp{.ifname = "v0", .netns = "ns1", .mode = tcd::AttachMode::skb};
    EXPECT_EQ(tcd::step_text({StepOp::attach, "/d", xdp}), "attach v0 --netns ns1 --mode skb");
    EXPECT_EQ(tcd::step_text({StepOp::reattach, "/d", tcd::ReattachStep{xdp, tcd::AttachMode::native}}),
              "re-attach v0 --netns ns1 --mode skb (attached in native mode)");
    tcd::AttachRequest tc{.ifname = "v0", .direction = tcd::Direction::egress};
    EXPECT_EQ(tcd::step_text({StepOp::attach, "/d", tc}), "attach v0 --direction egress");
    EXPECT_EQ(tcd::step_text({StepOp::detach, "/d",
                              tcd::DetachStep{{.ifname = "v1", .netns = "", .all = false, .direction = tcd::Direction::none},
                                              tcd::AttachMode::native}}),
              "detach v1 (not in the file)");
    EXPECT_EQ(tcd::step_text({StepOp::hold_dispatcher, "/d", std::monostate{}}), "");
}

TEST(ApplySteps, OnlyTheFollowUpsAreConditional) {
    for (const auto& n : tcd::Names<StepOp>::table) {
        Step s{n.value, "/d", std::monostate{}};
        EXPECT_EQ(s.conditional(), n.value == StepOp::rewire_child || n.value == StepOp::hold_dispatcher)
            << n.name;
    }
}

TEST(Rollback, UndoesLastFirstOnTheWayOut) {
    std::vector<int> ran;
    {
        tcd::Rollback undo;
        undo.push([&] { ran.push_back(1); });
        undo.push([&] { ran.push_back(2); });
        undo.push([&] { ran.push_back(3); });
    }
    EXPECT_EQ(ran, (std::vector<int>{3, 2, 1}));
}

TEST(Rollback, CommitKeepsEverything) {
    std::vector<int> ran;
    {
        tcd::Rollback undo;
        undo.push([&] { ran.push_back(1); });
        undo.commit();
        undo.push([&] { ran.push_back(2); });  // a step after the commit is guarded again
    }
    EXPECT_EQ(ran, (std::vector<int>{2}));
}

TEST(Rollback, RunNowThenNothingOnTheWayOut) {
    std::vector<int> ran;
    {
        tcd::Rollback undo;
        undo.push([&] { ran.push_back(1); });
        undo.push([&] { ran.push_back(2); });
        undo.run();
        EXPECT_EQ(ran, (std::vector<int>{2, 1}));
    }
    EXPECT_EQ(ran, (std::vector<int>{2, 1}));
}

}  // namespace
