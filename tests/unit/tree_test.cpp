// Instance trees without a kernel: the depth and loop analysis map set and
// status rely on (core/tree.h), over hand-made graphs.
#include <gtest/gtest.h>

#include <string>

#include "core/tree.h"

namespace {

using tcd::tree::Graph;
using tcd::tree::Node;
using tcd::tree::Wire;

Node node(const std::string& dir, std::vector<Wire> wires) {
    Node n;
    n.dir = dir;
    n.wires = std::move(wires);
    return n;
}

TEST(Tree, EmptyInstanceTakesNoTailCall) {
    Graph g;
    g.nodes.push_back(node("/a", {}));
    auto a = tcd::tree::analyse(g);
    EXPECT_TRUE(a.cycle.empty());
    EXPECT_EQ(a.depth.at("/a"), 0);
}

TEST(Tree, EachLevelAndEachChainingHandlerIsOneTailCall) {
    Graph g;
    // /a wires /b at 6 and a leaf at 17; /b wires a leaf and two distinct
    // chaining handlers (using its own jt), one of them at two keys.
    g.nodes.push_back(node("/a", {{6, 100, {"/b"}}, {17, 101, {}}}));
    g.nodes.push_back(node("/b", {{80, 102, {}}, {81, 103, {"/b"}}, {82, 104, {"/b"}}, {83, 104, {"/b"}}}));
    auto a = tcd::tree::analyse(g);
    EXPECT_TRUE(a.cycle.empty());
    EXPECT_EQ(a.depth.at("/b"), 1 + 2);
    EXPECT_EQ(a.depth.at("/a"), 1 + 3);
    EXPECT_EQ(a.max_depth, 4);
    EXPECT_EQ(a.deepest, (std::vector<std::string>{"/a", "/b"}));
    EXPECT_EQ(g.parents_of("/b").size(), 1u);
    EXPECT_EQ(g.children_of("/a").size(), 1u);
    EXPECT_EQ(g.children_of("/a")[0].key, 6u);
}

TEST(Tree, ALoopIsFoundWithItsMembers) {
    Graph g;
    g.nodes.push_back(node("/a", {{6, 1, {"/b"}}}));
    g.nodes.push_back(node("/b", {{80, 2, {"/c"}}}));
    g.nodes.push_back(node("/c", {{1, 3, {"/a"}}}));
    auto a = tcd::tree::analyse(g);
    ASSERT_EQ(a.cycle.size(), 4u);
    EXPECT_EQ(a.cycle.front(), a.cycle.back());
}

TEST(Tree, AChainOf34LevelsPassesTheKernelLimit) {
    Graph g;
    for (int i = 0; i < 34; i++) {
        std::vector<Wire> w;
        if (i < 33) w.push_back({6, uint32_t(i + 1), {"/n" + std::to_string(i + 1)}});
        else w.push_back({6, 999, {}});
        g.nodes.push_back(node("/n" + std::to_string(i), w));
    }
    auto a = tcd::tree::analyse(g);
    EXPECT_TRUE(a.cycle.empty());
    EXPECT_EQ(a.depth.at("/n0"), 34);
    EXPECT_GT(a.max_depth, tcd::tree::kMaxTailCalls);
    EXPECT_EQ(a.deepest.size(), 34u);
    EXPECT_EQ(a.depth.at("/n1"), 33);  // exactly the limit: allowed
}

}  // namespace
