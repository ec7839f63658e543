// Help, man page and completions must not drift from the CLI11 definitions.
// The check is structural: the CLI11 tree is walked (every command path,
// its options, short and long, which of them take a value, and the choices
// of IsMember-checked options), and each file is parsed per command:
//   - tcd.bash: the _tcd_subcommands and _tcd_options case arms, and the
//     value arms ('--mode) _tcd_reply ...') of _tcd;
//   - _tcd (zsh): _tcd_globals, _tcd_<path> _arguments specs, and the
//     _tcd_commands / _tcd_<path>_commands lists;
//   - tcd.fish: the 'complete' lines, by their  __tcd_is 'PATH'  condition,
//     __tcd_subcommands and __tcd_value_options;
//   - man/tcd.8: the .TP tags of the OPTIONS section and of each command's
//     .SS "tcd PATH ..." subsection.
// Both ways: everything the CLI has is there, and nothing is there that the
// CLI does not have. The page renders without warnings.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "core/attach.h"
#include "core/kind.h"

namespace {

using Set = std::set<std::string>;

std::string read(const std::string& rel) {
    std::ifstream in(std::string(TCD_SOURCE_DIR) + "/" + rel);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string show(const Set& s) {
    std::string o = "{";
    for (const auto& x : s) o += (o.size() > 1 ? " " : "") + x;
    return o + "}";
}

std::vector<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> w;
    for (std::string x; in >> x;) w.push_back(x);
    return w;
}

// What one command path offers (the top level '' holds the global options).
struct Cmd {
    Set options;                        // "-o", "--output", "--force", ...
    Set valued;                         // the ones that take a value
    std::map<std::string, Set> choices; // "--mode" -> {auto, native, skb, hw}
    Set subs;                           // subcommand names
    std::vector<Set> groups;            // the spellings of each option: {-o, --output}
    bool seen = false;                  // the file has an entry for this path
};
using Tree = std::map<std::string, Cmd>;

// ---- the CLI11 tree ---------------------------------------------------------

Set parse_choice_desc(const std::string& d) {  // "{a,b,c}"
    Set s;
    if (d.size() < 2 || d.front() != '{' || d.back() != '}') return s;
    std::stringstream in(d.substr(1, d.size() - 2));
    for (std::string x; std::getline(in, x, ',');) s.insert(x);
    return s;
}

void walk(CLI::App* app, const std::string& path, Tree& t) {
    Cmd& c = t[path];
    c.seen = true;
    for (CLI::Option* o : app->get_options()) {
        Set names;
        for (const auto& l : o->get_lnames()) names.insert("--" + l);
        for (const auto& s : o->get_snames()) names.insert("-" + s);
        if (names.empty()) continue;                    // a positional
        if (!path.empty() && names.count("--help")) continue;  // every command's -h, completed as a global
        bool valued = o->get_items_expected_max() > 0;
        Set ch;
        try {
            if (CLI::Validator* v = o->get_validator()) ch = parse_choice_desc(v->get_description());
        } catch (const CLI::OptionNotFound&) {
        }
        c.groups.push_back(names);
        for (const auto& n : names) {
            c.options.insert(n);
            if (valued) c.valued.insert(n);
            if (!ch.empty() && n.rfind("--", 0) == 0) c.choices[n] = ch;
        }
    }
    for (CLI::App* sub : app->get_subcommands({})) {
        c.subs.insert(sub->get_name());
        walk(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), t);
    }
}

const Tree& cli_tree() {
    static Tree t = [] {
        static CLI::App app;
        static tcd::cli::Context ctx(std::cout, std::cerr);
        tcd::cli::build_app(app, ctx);
        Tree t;
        walk(&app, "", t);
        return t;
    }();
    return t;
}

// ---- comparing a file's tree with the CLI's ---------------------------------

struct Check {
    bool valued = true;   // the file says which options take a value
    bool choices = true;  // the file lists the choices
    bool subs = true;     // the file lists subcommands
    bool every_path = true;  // an entry for every command path (not only those with options)
};

void compare(const std::string& file, const Tree& got, const Check& k) {
    const Tree& want = cli_tree();
    for (const auto& [path, w] : want) {
        std::string where = file + ", command '" + (path.empty() ? "(global)" : path) + "'";
        auto it = got.find(path);
        bool leaf = w.subs.empty();
        if (it == got.end() || !it->second.seen) {
            if (k.every_path && (leaf || path.empty())) ADD_FAILURE() << where << ": no entry for this command";
            if (!w.options.empty()) ADD_FAILURE() << where << ": lacks options " << show(w.options);
            continue;
        }
        const Cmd& g = it->second;
        for (const auto& o : w.options)
            if (!g.options.count(o)) ADD_FAILURE() << where << ": lacks option " << o;
        for (const auto& o : g.options)
            if (!w.options.count(o)) ADD_FAILURE() << where << ": has option " << o << " that the CLI does not";
        if (k.valued)
            for (const auto& o : w.options)
                if (g.options.count(o) && w.valued.count(o) != g.valued.count(o))
                    ADD_FAILURE() << where << ": option " << o << (w.valued.count(o) ? " takes" : " takes no")
                                  << " value in the CLI";
        if (k.choices) {
            for (const auto& [o, ch] : w.choices) {
                auto c = g.choices.find(o);
                if (c == g.choices.end())
                    ADD_FAILURE() << where << ": lacks the values of " << o << " " << show(ch);
                else if (c->second != ch)
                    ADD_FAILURE() << where << ": values of " << o << " are " << show(c->second) << ", the CLI's "
                                  << show(ch);
            }
            for (const auto& [o, ch] : g.choices)
                if (!w.choices.count(o))
                    ADD_FAILURE() << where << ": lists values " << show(ch) << " for " << o
                                  << ", which the CLI does not restrict";
        }
        if (k.subs && g.subs != w.subs)
            ADD_FAILURE() << where << ": subcommands " << show(g.subs) << ", the CLI's " << show(w.subs);
    }
    for (const auto& [path, g] : got)
        if (g.seen && !want.count(path)) ADD_FAILURE() << file << ": names command '" << path << "' the CLI lacks";
}

// The text of a shell function: from its header to the first line that is
// just "}" (fish: "end").
std::string function_body(const std::string& file, const std::string& header, const std::string& end = "\n}") {
    size_t b = file.find(header);
    if (b == std::string::npos) return "";
    size_t e = file.find(end, b);
    return file.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

// ---- bash ---------------------------------------------------------------------

Tree parse_bash(const std::string& f) {
    Tree t;
    static const std::regex arm(R"('([^']*)'\)\s*echo\s+'([^']*)'\s*;;)");
    std::string subs = function_body(f, "_tcd_subcommands()\n");
    for (std::sregex_iterator i(subs.begin(), subs.end(), arm), e; i != e; ++i) {
        Cmd& c = t[(*i)[1]];
        c.seen = true;
        for (const auto& w : words((*i)[2])) c.subs.insert(w);
    }
    std::string opts = function_body(f, "_tcd_options()\n");
    for (std::sregex_iterator i(opts.begin(), opts.end(), arm), e; i != e; ++i) {
        Cmd& c = t[(*i)[1]];
        c.seen = true;
        for (auto w : words((*i)[2])) {
            bool v = w.back() == '=';
            if (v) w.pop_back();
            c.options.insert(w);
            if (v) c.valued.insert(w);
        }
    }
    // A command without options or subcommands has no arm; the value arms
    // of _tcd say the choices of an option, whatever the command.
    std::string main = function_body(f, "\n_tcd()\n");
    static const std::regex value_arm(R"(\n\s+([-a-z|\s]+)\)\s*\n\s*_tcd_reply\s+'([^']*)')");
    std::map<std::string, Set> choices;
    for (std::sregex_iterator i(main.begin(), main.end(), value_arm), e; i != e; ++i) {
        std::string names = (*i)[1];
        std::replace(names.begin(), names.end(), '|', ' ');
        auto w = words((*i)[2]);
        for (const auto& n : words(names)) choices[n] = Set(w.begin(), w.end());
    }
    // Overrides of an option's values for one command, before the value
    // arms:  if [[ $path == PATH && $prev == OPTION ]]; then  (no fixed choices).
    static const std::regex override_re(R"(\[\[ \$path == ([a-z ]+) && \$prev == (-[-a-z]+) \]\])");
    std::set<std::pair<std::string, std::string>> overridden;
    for (std::sregex_iterator i(main.begin(), main.end(), override_re), e; i != e; ++i)
        overridden.insert({(*i)[1], (*i)[2]});
    for (auto& [path, c] : t)
        for (const auto& o : c.options)
            if (choices.count(o) && !overridden.count({path, o})) c.choices[o] = choices[o];
    // Paths that the command tree has but no arm names: every path reached
    // through _tcd_subcommands is complete (it has no options).
    Tree all = t;
    for (const auto& [path, c] : t)
        for (const auto& s : c.subs) {
            Cmd& sub = all[path.empty() ? s : path + " " + s];
            sub.seen = true;
        }
    return all;
}

// ---- zsh ------------------------------------------------------------------------

// The single-quoted _arguments specs of a function body, one per line.
std::vector<std::string> zsh_specs(const std::string& body) {
    std::vector<std::string> specs;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
        size_t a = line.find_first_not_of(" \t");
        if (a == std::string::npos || line[a] != '\'') continue;
        size_t b = line.rfind('\'');
        if (b <= a) continue;
        specs.push_back(line.substr(a + 1, b - a - 1));
    }
    return specs;
}

void zsh_options(const std::string& body, Cmd& c) {
    for (std::string s : zsh_specs(body)) {
        if (!s.empty() && s[0] == '(') s = s.substr(s.find(')') + 1);
        if (!s.empty() && s[0] == '*') s = s.substr(1);
        if (s.empty() || s[0] != '-') continue;
        size_t n = s.find_first_of("[=+:");
        std::string name = s.substr(0, n);
        c.options.insert(name);
        size_t close = s.find(']');
        bool valued = close != std::string::npos && close + 1 < s.size() && s[close + 1] == ':';
        if (valued) c.valued.insert(name);
        static const std::regex ch(R"(:\(([^)]*)\)$)");
        std::smatch m;
        if (valued && name.rfind("--", 0) == 0 && std::regex_search(s, m, ch)) {
            auto w = words(m[1]);
            c.choices[name] = Set(w.begin(), w.end());
        }
    }
}

Tree parse_zsh(const std::string& f) {
    Tree t;
    std::string g = function_body(f, "\n_tcd_globals() {");
    if (!g.empty()) {
        t[""].seen = true;
        zsh_options(g, t[""]);
    }
    // Subcommand lists: _tcd_commands (top level), _tcd_<path>_commands.
    static const std::regex cmds_fn(R"(\n_tcd((?:_[a-z]+)*)_commands\(\) \{)");
    for (std::sregex_iterator i(f.begin(), f.end(), cmds_fn), e; i != e; ++i) {
        std::string path = (*i)[1];
        if (!path.empty()) path = path.substr(1);
        std::replace(path.begin(), path.end(), '_', ' ');
        std::string body = function_body(f, (*i)[0].str());
        Cmd& c = t[path];
        c.seen = true;
        for (const auto& s : zsh_specs(body)) c.subs.insert(s.substr(0, s.find(':')));
    }
    // A command's options: the specs of _tcd_<path> (those that call
    // _arguments; _tcd_map() { _tcd_subcommand map } has none).
    static const std::regex fn(R"(\n_tcd((?:_[a-z]+)+)\(\) \{)");
    for (std::sregex_iterator i(f.begin(), f.end(), fn), e; i != e; ++i) {
        std::string path = (*i)[1].str().substr(1);
        static const Set helpers = {"globals", "line_opt", "json", "protocols", "interfaces", "detach_interfaces",
                                    "netns", "handlers", "wired_keys", "subcommand", "keys", "services", "commands"};
        if (helpers.count(path) || path.size() > 9 && path.compare(path.size() - 9, 9, "_commands") == 0) continue;
        std::replace(path.begin(), path.end(), '_', ' ');
        std::string body = function_body(f, (*i)[0].str());
        Cmd& c = t[path];
        c.seen = true;
        if (body.find("_arguments") != std::string::npos && body.find("_tcd_subcommand ") == std::string::npos)
            zsh_options(body, c);
    }
    return t;
}

// ---- fish -------------------------------------------------------------------------

Tree parse_fish(const std::string& f) {
    Tree t;
    std::istringstream in(f);
    static const std::regex is(R"(__tcd_is '([^']*)')");
    static const std::regex sopt(R"( -s ([A-Za-z]))");
    static const std::regex lopt(R"( -l ([-a-z]+))");
    static const std::regex args(R"( -a '([^'(][^']*)')");
    static const std::regex bare_arg(R"( -a ([a-z]+)( |$))");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("complete -c tcd", 0) != 0) continue;
        std::smatch m;
        std::string path;
        bool has_cond = line.find(" -n ") != std::string::npos;
        if (has_cond) {
            if (!std::regex_search(line, m, is)) continue;
            path = m[1];
        }
        Cmd& c = t[path];
        c.seen = true;
        Set names;
        if (std::regex_search(line, m, sopt)) names.insert("-" + m[1].str());
        if (std::regex_search(line, m, lopt)) names.insert("--" + m[1].str());
        if (names.empty()) {
            // A subcommand: -a NAME under exactly  __tcd_is 'PATH'.
            if (std::regex_search(line, m, bare_arg) && line.find("__tcd_npos") == std::string::npos)
                c.subs.insert(m[1]);
            continue;
        }
        static const std::regex xr(R"( -[xr]( |$))");
        bool valued = std::regex_search(line, xr);
        c.groups.push_back(names);
        for (const auto& n : names) {
            c.options.insert(n);
            if (valued) c.valued.insert(n);
        }
        if (std::regex_search(line, m, args) && valued)
            for (const auto& n : names)
                if (n.rfind("--", 0) == 0) {
                    auto w = words(m[1]);
                    c.choices[n] = Set(w.begin(), w.end());
                }
    }
    // Commands without options: reached through __tcd_subcommands.
    Tree all = t;
    for (const auto& [path, c] : t)
        for (const auto& s : c.subs) all[path.empty() ? s : path + " " + s].seen = true;
    return all;
}

// __tcd_subcommands' arms, as a tree of subcommands only.
Tree parse_fish_switch(const std::string& f) {
    Tree t;
    std::string body = function_body(f, "function __tcd_subcommands\n", "\nend\n");
    static const std::regex arm(R"(case '([^']*)'\s*\n\s*echo ([^\n]*))");
    for (std::sregex_iterator i(body.begin(), body.end(), arm), e; i != e; ++i) {
        auto w = words((*i)[2]);
        t[(*i)[1]].subs = Set(w.begin(), w.end());
    }
    return t;
}

// ---- man ------------------------------------------------------------------------------

// roff writes '-' as '\-', fonts as \fB..\fR; drop both.
std::string unroff(std::string s) {
    std::string out;
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == '-') continue;
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'f') {  // \fB \fI \fR \fP
            i += 2;
            continue;
        }
        out += s[i];
    }
    return out;
}

void man_tag(const std::string& tag, Cmd& c) {
    static const std::regex opt(R"((^|[\s,"])(--?[A-Za-z][-A-Za-z]*))");
    for (std::sregex_iterator i(tag.begin(), tag.end(), opt), e; i != e; ++i) c.options.insert((*i)[2]);
    static const std::regex ch(R"((--[-a-z]+) ([a-z]+(\|[a-z]+)+))");
    for (std::sregex_iterator i(tag.begin(), tag.end(), ch), e; i != e; ++i) {
        std::string list = (*i)[2];
        std::replace(list.begin(), list.end(), '|', ' ');
        auto w = words(list);
        c.choices[(*i)[1]] = Set(w.begin(), w.end());
    }
}

Tree parse_man(const std::string& raw) {
    Tree t;
    std::istringstream in(unroff(raw));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    Cmd* cur = nullptr;
    for (size_t i = 0; i < lines.size(); i++) {
        const std::string& l = lines[i];
        if (l.rfind(".SH ", 0) == 0) {
            cur = l == ".SH OPTIONS" ? &t[""] : nullptr;
            if (cur) cur->seen = true;
        } else if (l.rfind(".SS \"tcd ", 0) == 0) {
            // The command path: the lowercase words after "tcd".
            std::string path;
            std::string title = l.substr(9);
            std::replace(title.begin(), title.end(), '"', ' ');
            for (const auto& w : words(title)) {
                if (!std::regex_match(w, std::regex("[a-z]+"))) break;
                path += (path.empty() ? "" : " ") + w;
            }
            cur = &t[path];
            cur->seen = true;
            man_tag(l, *cur);  // choices in the title: [--mode auto|native|skb|hw]
            cur->options.clear();
        } else if (l.rfind(".SS ", 0) == 0) {
            cur = nullptr;
        } else if (l == ".TP" && cur && i + 1 < lines.size()) {
            man_tag(lines[++i], *cur);
        }
    }
    // Group commands (map, handler) have no section of their own.
    return t;
}

// The SYNOPSIS: each  .SY "tcd PATH" ... .YS  block's options (one block
// per form; detach has two).
Tree parse_synopsis(const std::string& raw) {
    Tree t;
    std::istringstream in(unroff(raw));
    Cmd* cur = nullptr;
    static const std::regex opt(R"((^|[\s\[\(\{|])(--?[A-Za-z][-A-Za-z]*))");
    for (std::string l; std::getline(in, l);) {
        if (l.rfind(".SY", 0) == 0) {
            std::string title = l.substr(3);
            std::replace(title.begin(), title.end(), '"', ' ');
            std::string path;
            auto w = words(title);
            for (size_t i = 1; i < w.size(); i++) path += (path.empty() ? "" : " ") + w[i];  // after "tcd"
            cur = &t[path];
            cur->seen = true;
        } else if (l.rfind(".YS", 0) == 0) {
            cur = nullptr;
        } else if (cur) {
            for (std::sregex_iterator i(l.begin(), l.end(), opt), e; i != e; ++i) cur->options.insert((*i)[2]);
        }
    }
    return t;
}

// ---- tests --------------------------------------------------------------------------

TEST(Sync, TreeIsNotEmpty) {
    const Tree& t = cli_tree();
    EXPECT_GE(t.size(), 15u);
    size_t opts = 0, choices = 0;
    for (const auto& [p, c] : t) opts += c.options.size(), choices += c.choices.size();
    EXPECT_GE(opts, 25u);
    EXPECT_GE(choices, 8u);  // --mode, --direction x2, --format, --key x2, --hook x2, --miss-action
    EXPECT_TRUE(t.at("attach").choices.count("--mode"));
    // The choices are the core's name tables (core/names.h), which the
    // completions are held to below.
    auto names = [](std::vector<std::string> v) { return Set(v.begin(), v.end()); };
    EXPECT_EQ(show(t.at("attach").choices.at("--mode")), show(names(tcd::names_of<tcd::AttachMode>(tcd::is_xdp_mode))));
    EXPECT_EQ(show(t.at("attach").choices.at("--direction")), show(names(tcd::names_of<tcd::Direction>())));
    EXPECT_EQ(show(t.at("load").choices.at("--miss-action")), show(names(tcd::names_of<tcd::MissAction>())));
    EXPECT_EQ(show(t.at("load").choices.at("--key")), show(names(tcd::names_of<tcd::KeyKind>())));
    EXPECT_EQ(show(t.at("load").choices.at("--hook")), show(names(tcd::names_of<tcd::Hook>())));
    EXPECT_EQ(show(t.at("stats").choices.at("--format")), show(names(tcd::names_of<tcd::cli::StatsFormat>())));
    EXPECT_TRUE(t.at("object").options.count("-o"));
}

TEST(Sync, Bash) { compare("completions/tcd.bash", parse_bash(read("completions/tcd.bash")), Check{}); }

TEST(Sync, Zsh) { compare("completions/_tcd", parse_zsh(read("completions/_tcd")), Check{}); }

TEST(Sync, Fish) {
    std::string f = read("completions/tcd.fish");
    compare("completions/tcd.fish", parse_fish(f), Check{});
    // The subcommand switch that __tcd_parse walks.
    Tree sw = parse_fish_switch(f);
    for (const auto& [path, c] : cli_tree())
        if (!c.subs.empty()) EXPECT_EQ(show(sw[path].subs), show(c.subs)) << "__tcd_subcommands '" << path << "'";
    for (const auto& [path, c] : sw)
        EXPECT_TRUE(cli_tree().count(path) && !cli_tree().at(path).subs.empty())
            << "__tcd_subcommands has '" << path << "'";
    // __tcd_value_options: every option that takes a value, none else.
    std::string vo = function_body(f, "function __tcd_value_options\n", "\nend\n");
    std::regex cont("\\\\\n");
    vo = std::regex_replace(vo, cont, " ");
    Set got, want;
    for (const auto& w : words(vo))
        if (w[0] == '-') got.insert(w);
    for (const auto& [path, c] : cli_tree()) want.insert(c.valued.begin(), c.valued.end());
    EXPECT_EQ(show(got), show(want)) << "__tcd_value_options";
}

TEST(Sync, ManPage) {
    std::string man = read("man/tcd.8");
    ASSERT_FALSE(man.empty());
    Check k;
    k.valued = false;
    k.subs = false;
    compare("man/tcd.8", parse_man(man), k);
}

TEST(Sync, ManSynopsis) {
    Tree syn = parse_synopsis(read("man/tcd.8"));
    for (const auto& [path, c] : cli_tree()) {
        if (path.empty() || !c.subs.empty()) continue;
        auto it = syn.find(path);
        if (it == syn.end()) {
            ADD_FAILURE() << "man/tcd.8 SYNOPSIS has no .SY \"tcd " << path << "\"";
            continue;
        }
        for (const auto& g : c.groups) {
            bool any = false;
            for (const auto& n : g) any |= it->second.options.count(n) > 0;
            EXPECT_TRUE(any) << "man/tcd.8 SYNOPSIS of '" << path << "' lacks " << show(g);
        }
    }
    for (const auto& [path, c] : syn) {
        auto it = cli_tree().find(path);
        if (it == cli_tree().end()) {
            ADD_FAILURE() << "man/tcd.8 SYNOPSIS names command '" << path << "' the CLI lacks";
            continue;
        }
        for (const auto& o : c.options)
            EXPECT_TRUE(it->second.options.count(o)) << "man/tcd.8 SYNOPSIS of '" << path << "' has " << o
                                                      << ", which the CLI does not";
    }
}

// The comparison itself fails on a file that lost an option, has one too
// many, or lists wrong values: the parsers are run on altered copies.
TEST(Sync, DetectsDrift) {
    auto fails = [](const std::string& file, Tree (*parse)(const std::string&), const std::string& from,
                    const std::string& to, Check k = Check{}) {
        std::string f = read(file);
        size_t at = f.find(from);
        if (at == std::string::npos) return std::string("pattern not found: ") + from;
        f.replace(at, from.size(), to);
        ::testing::TestPartResultArray results;
        {
            ::testing::ScopedFakeTestPartResultReporter rep(
                ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
            compare(file, parse(f), k);
        }
        return results.size() > 0 ? std::string("failed") : std::string("passed");
    };
    Check man;
    man.valued = man.subs = false;
    EXPECT_EQ(fails("completions/tcd.bash", parse_bash, "--mode= ", ""), "failed");
    EXPECT_EQ(fails("completions/tcd.bash", parse_bash, "'--watch ", "'--watch --bogus "), "failed");
    EXPECT_EQ(fails("completions/tcd.bash", parse_bash, "'auto native skb hw'", "'auto native skb'"), "failed");
    EXPECT_EQ(fails("completions/tcd.bash", parse_bash, "--interval=", "--interval"), "failed");
    EXPECT_EQ(fails("completions/_tcd", parse_zsh, "'--force[unwire its keys first]' \\", "\\"), "failed");
    EXPECT_EQ(fails("completions/_tcd", parse_zsh, "(plain json prometheus)", "(plain json)"), "failed");
    EXPECT_EQ(fails("completions/_tcd", parse_zsh, "'list:the wired keys'", ""), "failed");
    EXPECT_EQ(fails("completions/tcd.fish", parse_fish, "-l dry-run", "-l dry-runs"), "failed");
    EXPECT_EQ(fails("completions/tcd.fish", parse_fish, "-l miss-action -x", "-l miss-action"), "failed");
    EXPECT_EQ(fails("man/tcd.8", parse_man, ".TP\n.B \\-\\-all\nEvery", ".PP\nEvery", man), "failed");
    EXPECT_EQ(fails("man/tcd.8", parse_man, "\\fBskb\\fR|", "", man), "failed");
    // And the unaltered files pass.
    EXPECT_EQ(fails("completions/tcd.bash", parse_bash, "#", "#"), "passed");
    EXPECT_EQ(fails("man/tcd.8", parse_man, ".", ".", man), "passed");
}

TEST(Sync, HelpNamesEveryCommand) {
    std::ostringstream out, err;
    const char* argv[] = {"tcd", "--help"};
    ASSERT_EQ(tcd::cli::run(2, argv, out, err), 0);
    for (const auto& s : cli_tree().at("").subs) EXPECT_NE(out.str().find(s), std::string::npos) << s;
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

namespace {

// ---- the core's boundary ------------------------------------------------------------
// core/ names no tcd command and no command-line flag, and prints nothing:
// it returns a Reason or a Flag (core/reasons.h) and cli/words.cpp words
// them. Checked in the core's string literals (comments may name flags) and
// its code (no stdout or stderr but the -v log in core/log.cpp).

struct Source {
    std::vector<std::string> literals;  // the string literals, one by one
    std::string code;                   // the rest, comments left out
};

Source split_source(const std::string& text) {
    Source s;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
            while (i < text.size() && text[i] != '\n') i++;
            s.code += '\n';
        } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
            size_t end = text.find("*/", i + 2);
            i = end == std::string::npos ? text.size() : end + 1;
        } else if (c == '\'' && !(i > 0 && std::isalnum(static_cast<unsigned char>(text[i - 1])))) {
            // A character literal ('"', '\''); not a digit separator (1'000).
            size_t j = i + 1;
            while (j < text.size() && text[j] != '\'') j += text[j] == '\\' ? 2 : 1;
            i = j;
            s.code += "' '";
        } else if (c == '"') {
            std::string lit;
            size_t j = i + 1;
            for (; j < text.size() && text[j] != '"'; j++) {
                if (text[j] == '\\' && j + 1 < text.size()) lit += text[++j];
                else lit += text[j];
            }
            i = j;
            s.literals.push_back(lit);
            s.code += "\"\"";
        } else {
            s.code += c;
        }
    }
    return s;
}

// What in one source file names a command or flag, or prints: one line each.
std::vector<std::string> boundary_faults(const std::string& file, const std::string& text, const Tree& t) {
    Set commands, shorts;
    for (const auto& s : t.at("").subs) commands.insert(s);
    for (const auto& [path, c] : t)
        for (const auto& o : c.options)
            if (o.size() == 2) shorts.insert(o);
    static const std::regex long_flag(R"((^|[^\w-])--[a-z][a-z-]*)");
    // A command as the user types it: 'tcd unload', (tcd load --key port);
    // not "a tcd map" (a map of tcd's) or "tcd reads it".
    static const std::regex tcd_command(R"((^|['(])tcd\s+(-\w|[a-z]+))");
    std::vector<std::string> out;
    Source s = split_source(text);
    for (const auto& lit : s.literals) {
        std::smatch m;
        if (std::regex_search(lit, m, long_flag)) out.push_back(file + ": names a flag: \"" + lit + "\"");
        for (std::sregex_iterator i(lit.begin(), lit.end(), tcd_command), e; i != e; ++i) {
            std::string w = (*i)[2];
            if (commands.count(w) || shorts.count(w)) out.push_back(file + ": names a command: \"" + lit + "\"");
        }
        for (const auto& w : words(lit)) {
            std::string bare = w;
            while (!bare.empty() && std::string("'(,;:?").find(bare.back()) != std::string::npos) bare.pop_back();
            while (!bare.empty() && std::string("'(").find(bare.front()) != std::string::npos) bare.erase(0, 1);
            if (shorts.count(bare)) out.push_back(file + ": names a flag: \"" + lit + "\"");
        }
    }
    static const std::regex prints(R"(std::(cout|cerr|clog)\b|\b(printf|puts|putchar|perror)\s*\(|fmt::print\b|\bf?printf\s*\(\s*std(out|err)|\bv?fprintf\s*\(|\bwrite\s*\(\s*(1|2|STDOUT_FILENO|STDERR_FILENO)\b)");
    std::smatch m;
    std::string code = s.code;
    // core/log.cpp's -v log: vfprintf(stderr, ...) when verbose, and only there.
    if (file == "core/log.cpp") code = std::regex_replace(code, std::regex(R"(vfprintf\s*\(\s*stderr)"), "");
    if (std::regex_search(code, m, prints)) out.push_back(file + ": prints: " + m.str());
    return out;
}

TEST(Sync, CoreNamesNoCommandOrFlagAndPrintsNothing) {
    size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(std::string(TCD_SOURCE_DIR) + "/core")) {
        std::string name = "core/" + entry.path().filename().string();
        if (entry.path().extension() != ".cpp" && entry.path().extension() != ".h") continue;
        files++;
        for (const auto& f : boundary_faults(name, read(name), cli_tree())) ADD_FAILURE() << f;
    }
    EXPECT_GE(files, 40u);
}

TEST(Sync, BoundaryCheckFindsFaults) {
    const Tree& t = cli_tree();
    auto faults = [&](const std::string& text) { return boundary_faults("core/x.cpp", text, t).size(); };
    EXPECT_EQ(faults("return fail(\"x\", \"y\", \"use --force to replace it\");"), 1u);
    EXPECT_EQ(faults("return fail(\"x\", \"y\", \"run 'tcd unload' first\");"), 1u);
    EXPECT_EQ(faults("return fail(\"x\", \"y\", \"a port instance (tcd load --key port)\");"), 2u);  // and the flag
    EXPECT_EQ(faults("return fail(\"x\", \"a tcd map that only port instances have\");"), 0u);
    EXPECT_EQ(faults("return fail(\"x\", \"y\", \"give the directory with -d\");"), 1u);
    EXPECT_EQ(faults("std::cout << x;"), 1u);
    EXPECT_EQ(faults("fmt::print(\"{}\", x);"), 1u);
    EXPECT_EQ(faults("std::printf(\"%d\", 1);"), 1u);
    // Comments, neutral words, other tools' flags and snprintf are not.
    EXPECT_EQ(faults("// load --force, 'tcd unload'\n/* -d */ return fail(\"load\", \"tcd reads it\");"), 0u);
    EXPECT_EQ(faults("return fail(\"x\", \"y\", \"see 'ip -n NAME link'\"); snprintf(b, n, \"%s\", s); x--;"), 0u);
    EXPECT_EQ(boundary_faults("core/log.cpp", "return vfprintf(stderr, fmt, ap);", t).size(), 0u);
    EXPECT_EQ(faults("return vfprintf(stderr, fmt, ap);"), 1u);
}

}  // namespace
