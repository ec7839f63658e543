// One error convention for the whole core: functions return Result<T>, which
// carries either the value or an Error (errno + one sentence of context + an
// optional hint). The core says WHAT and WHY in its own words and names no
// command or flag: where the user's words need one (a flag in WHAT, a hint
// that says what to run), it sets a Reason or a Flag with the data they need
// (core/reasons.h), and cli/ words them (cli/words.h). Only cli::run
// (cli/app.cpp) prints errors, once, worded, as "tcd: WHAT: WHY (HINT)".
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace tcd {

// Exit status of a failed command (docs/cli.md, "Exit status and errors"):
// 1 = operation failed, 2 = command line wrong.
enum class ExitCode : int { ok = 0, failed = 1, usage = 2 };

// Both are defined in core/reasons.h; their value-initialised {} is "none".
enum class Reason : std::uint16_t;  // what cli/ words: a hint, or WHY, that names commands or flags
enum class Flag : std::uint8_t;     // a command-line option that WHAT is about

struct Error {
    Error() = default;
    Error(std::string what_, std::string why_, std::string hint_ = {}, int err_ = 0, ExitCode code_ = ExitCode::failed)
        : what(std::move(what_)), why(std::move(why_)), hint(std::move(hint_)), err(err_), code(code_) {}

    std::string what;  // the object or step: "map set", "interface veth0", ...
    std::string why;   // what went wrong, in words (never a bare errno)
    std::string hint;  // how to get on, or empty
    int err = 0;       // positive errno when the kernel or a library said it
    ExitCode code = ExitCode::failed;
    Reason reason{};                // cli/ words it (core/reasons.h): none leaves the error as it is
    std::vector<std::string> args;  // the data the reason's words take (core/reasons.h says which)
    Flag flag{};                    // WHAT is about this option: worded "WHAT --FLAG VALUE"
    std::string flag_value;         // the option's value as given, or empty

    // The single line main() prints (without the "tcd: " prefix), once
    // cli/ has worded it; unworded, the core's own words.
    std::string message() const;
};

template <typename T = void>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string what, std::string why, std::string hint = {},
                                  int err = 0) {
    return tl::unexpected<Error>(Error{std::move(what), std::move(why), std::move(hint), err,
                                       ExitCode::failed});
}

inline tl::unexpected<Error> usage_error(std::string what, std::string why,
                                         std::string hint = {}) {
    return tl::unexpected<Error>(
        Error{std::move(what), std::move(why), std::move(hint), 0, ExitCode::usage});
}

// Passes the error of a failed lower-layer result up, unchanged or under a
// new WHAT (the object or step the caller knows it by):
//     auto in = Instance::open(dir);
//     if (!in) return propagate(in);
// The Result types differ in their value type, so the error is re-wrapped.
template <typename T>
tl::unexpected<Error> propagate(const Result<T>& failed) {
    return tl::unexpected<Error>(failed.error());
}

template <typename T>
tl::unexpected<Error> propagate(const Result<T>& failed, std::string what) {
    Error e = failed.error();
    e.what = std::move(what);
    return tl::unexpected<Error>(std::move(e));
}

// An error from errno (positive) with the standard wording for it; EPERM and
// EACCES get the privilege hint, unless a hint is given.
tl::unexpected<Error> fail_errno(std::string what, int err, std::string hint = {});

// Whether this process has the capabilities tcd's kernel calls need
// (CAP_BPF or CAP_SYS_ADMIN, and CAP_NET_ADMIN, effective).
bool has_bpf_privileges();

// The hint for an errno the kernel answered with: for EPERM and EACCES the
// privilege hint when the process lacks the privileges (the one place tcd
// explains them; the core never refuses up front), otherwise `otherwise`.
std::string errno_hint(int err, std::string otherwise = {});

// Words for an errno value, tuned for what BPF and netlink calls mean by it.
std::string errno_words(int err);

}  // namespace tcd
