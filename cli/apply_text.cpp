// apply, saying a plan: each Step as the command line would say it (what
// `apply` and `apply --dry-run` print, and what an error names: the core's
// execute() takes it as its StepWords).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "cli/apply_text.h"

namespace tcd {
namespace {

template <class... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

std::string attach_text(const AttachRequest& r) {
    return "attach " + r.ifname + (r.netns.empty() ? "" : " --netns " + r.netns) +
           (r.direction == Direction::none ? std::string(" --mode ") + mode_name(r.mode)
                                           : std::string(" --direction ") + direction_name(r.direction));
}

}  // namespace

std::string step_text(const Step& s) {
    return std::visit(
        Overloaded{
            [](const std::monostate&) { return std::string(); },
            [](const UnloadStep& u) {
                return fmt::format("unload (a {} instance on {}; {} on {} is wanted)", key_kind_name(u.was.key),
                                   hook_name(u.was.hook), key_kind_name(u.wanted.key), hook_name(u.wanted.hook));
            },
            [](const LoadOptions& l) {
                return fmt::format("load --key {} --hook {} --miss-action {}", key_kind_name(l.kind.key),
                                   hook_name(l.kind.hook), miss_action_name(*l.miss));
            },
            [](const ReloadStep& r) { return std::string("load --force --miss-action ") + miss_action_name(*r.load.miss); },
            [](const HandlerLoadRequest& h) {
                std::string what = "handler load " + h.object;
                for (const auto& m : h.progs) what += " --prog " + m;
                return what;
            },
            [&s](const WireRequest& w) {
                return fmt::format("map set {} {}{}", w.key, w.handler,
                                   s.op == StepOp::rewire_child ? " (its dispatcher was replaced)" : "");
            },
            [](const UnwireRequest& u) { return fmt::format("map del {} (wired to {}, not in the file)", u.key, u.was); },
            [](const RespecialiseRequest& r) {
                return fmt::format("respecialise (direct jumps to {}: a command was cut short before it)",
                                   r.direct.empty() ? std::string("none") : fmt::format("{}", fmt::join(r.direct, " ")));
            },
            [](const AttachRequest& a) { return attach_text(a); },
            [](const ReattachStep& r) {
                return "re-" + attach_text(r.attach) + " (attached in " + mode_name(r.was) + " mode)";
            },
            [](const DetachStep& d) {
                const DetachRequest& r = d.detach;
                return "detach " + r.ifname + (r.netns.empty() ? "" : " --netns " + r.netns) +
                       (r.direction == Direction::none ? "" : std::string(" --direction ") + direction_name(r.direction)) +
                       " (not in the file)";
            },
        },
        s.request);
}

}  // namespace tcd
