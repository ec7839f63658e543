// Help, man page and completions must not drift from the CLI11 definitions:
// every command and every long option of the command tree appears in
// man/tcd.8 and in each completion file, and every command in --help; the
// page renders without warnings.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace {

std::string read(const std::string& rel) {
    std::ifstream in(std::string(TCD_SOURCE_DIR) + "/" + rel);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// roff writes '-' as '\-'.
std::string unroff(std::string s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '-') continue;
        if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'f')) {  // \fB \fI \fR \fP
            i += 2;
            continue;
        }
        out += s[i];
    }
    return out;
}

struct Tree {
    std::vector<std::string> commands;  // "attach", "map set", ...
    std::set<std::string> options;      // "--netns", ...
};

void walk(CLI::App* app, const std::string& prefix, Tree& t) {
    for (CLI::Option* o : app->get_options())
        for (const auto& l : o->get_lnames())
            if (l != "help") t.options.insert("--" + l);
    for (CLI::App* sub : app->get_subcommands({})) {
        std::string name = prefix.empty() ? sub->get_name() : prefix + " " + sub->get_name();
        t.commands.push_back(name);
        walk(sub, name, t);
    }
}

Tree tree() {
    static CLI::App app;
    static tcd::cli::Context ctx(std::cout, std::cerr);
    static bool built = false;
    if (!built) {
        tcd::cli::build_app(app, ctx);
        built = true;
    }
    Tree t;
    walk(&app, "", t);
    return t;
}

// The last word of a nested command ("map set" -> "set") is what a
// completion file lists; the man page names the whole command.
std::string last_word(const std::string& c) { return c.substr(c.rfind(' ') + 1); }

TEST(Sync, TreeIsNotEmpty) {
    Tree t = tree();
    EXPECT_GE(t.commands.size(), 15u);
    EXPECT_GE(t.options.size(), 15u);
}

TEST(Sync, ManPageNamesEveryCommandAndOption) {
    std::string man = unroff(read("man/tcd.8"));
    ASSERT_FALSE(man.empty());
    Tree t = tree();
    for (const auto& c : t.commands) EXPECT_NE(man.find(c), std::string::npos) << "man page lacks command: " << c;
    for (const auto& o : t.options) EXPECT_NE(man.find(o), std::string::npos) << "man page lacks option: " << o;
}

class Completions : public ::testing::TestWithParam<const char*> {};

TEST_P(Completions, NameEveryCommandAndOption) {
    std::string file = read(std::string("completions/") + GetParam());
    ASSERT_FALSE(file.empty()) << GetParam();
    Tree t = tree();
    for (const auto& c : t.commands)
        EXPECT_NE(file.find(last_word(c)), std::string::npos) << GetParam() << " lacks command: " << c;
    for (const auto& o : t.options) {
        // fish writes long options without the dashes (-l netns).
        std::string bare = o.substr(2);
        bool found = file.find(o) != std::string::npos ||
                     (std::string(GetParam()) == "tcd.fish" && file.find("-l " + bare) != std::string::npos);
        EXPECT_TRUE(found) << GetParam() << " lacks option: " << o;
    }
}

INSTANTIATE_TEST_SUITE_P(Shells, Completions, ::testing::Values("tcd.bash", "_tcd", "tcd.fish"));

TEST(Sync, HelpNamesEveryCommand) {
    std::ostringstream out, err;
    const char* argv[] = {"tcd", "--help"};
    ASSERT_EQ(tcd::cli::run(2, argv, out, err), 0);
    Tree t = tree();
    for (const auto& c : t.commands)
        if (c.find(' ') == std::string::npos) EXPECT_NE(out.str().find(c), std::string::npos) << c;
}

TEST(Sync, ManPageRendersWithoutWarnings) {
    if (std::system("command -v man >/dev/null 2>&1") != 0) {
        const char* ci = std::getenv("CI");
        if (ci && std::string(ci) == "true") FAIL() << "man is not installed (apt-get install man-db groff-base)";
        GTEST_SKIP() << "man is not installed";
    }
    std::string cmd = std::string("MANWIDTH=80 man --warnings -l ") + TCD_SOURCE_DIR + "/man/tcd.8 2>&1 >/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    std::string warnings;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, p)) warnings.append(buf, n);
    pclose(p);
    EXPECT_EQ(warnings, "");
}

}  // namespace
