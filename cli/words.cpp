#include "cli/words.h"

#include <fmt/format.h>

namespace tcd::cli {

std::string flag_words(Flag f) {
    switch (f) {
    case Flag::none: return "";
    case Flag::force: return "--force";
    case Flag::order: return "--order";
    case Flag::mode: return "--mode";
    case Flag::key: return "--key";
    case Flag::hook: return "--hook";
    case Flag::direction: return "--direction";
    case Flag::miss_action: return "--miss-action";
    case Flag::hex: return "--hex";
    }
    return "";
}

std::string alone_asked_words() { return "--alone asked for it"; }

namespace {

const std::string& arg(const Error& e, size_t i) {
    static const std::string none;
    return i < e.args.size() ? e.args[i] : none;
}

// The reason's words: a hint, or a WHY (and hint) that names flags, or, for
// a finding, how to get on added to its WHY.
void word(Error& e) {
    const std::string tc_only = "load a tc instance with 'tcd load --hook tc' (another --pin-dir)";
    const std::string rewire = "; other commands do not see the link until it is wired again with ";
    switch (e.reason) {
    case Reason::none: return;
    case Reason::not_loaded: e.hint = "run 'tcd load' or 'tcd attach IFACE' first"; return;
    case Reason::reload: e.hint = "run 'tcd unload' then 'tcd load'"; return;
    case Reason::unload_or_other_dir: e.hint = "'tcd unload' it first, or use another --pin-dir"; return;
    case Reason::force_reloads: e.hint = "add --force to reload it with the new one (wiring and counters stay)"; return;
    case Reason::unload_first_drops: e.hint = "'tcd unload' first (this drops wiring and counters)"; return;
    case Reason::right_pin_dir: e.hint = "is this the right --pin-dir?"; return;
    case Reason::wired_in_parent:
        e.hint = fmt::format("'tcd -d {} map del {}' first, or 'tcd unload --force' to unwire it there", arg(e, 0),
                             arg(e, 1));
        return;
    case Reason::netns_needed: e.hint = "see 'ip link'; one in another network namespace needs --netns NAME"; return;
    case Reason::xdp_modes_other: e.hint = "use --mode native or skb, or leave --mode out"; return;
    case Reason::leave_flag_out: e.hint = "leave " + flag_words(e.flag) + " out"; return;
    case Reason::try_skb: e.hint = "try --mode skb"; return;
    case Reason::other_instance_runs:
        e.hint = "see 'tcd -d " + arg(e, 0) +
                 " status'; one XDP dispatcher per interface: attach this instance elsewhere, or wire its keys "
                 "into that one";
        return;
    case Reason::force_replaces:
        e.hint = e.args.empty() ? "use --force to replace it"
                                : "use --force to replace it (tcd attaches alone: " + arg(e, 0) + ")";
        return;
    case Reason::force_replaces_asked_alone:
        e.hint = "use --force to replace it (tcd attaches alone: " + alone_asked_words() + ")";
        return;
    case Reason::force_replaces_slot:
        e.hint = "use --force to replace it (without tcx links, one tcd instance per interface and direction)";
        return;
    case Reason::reload_or_alone: e.hint = "'tcd unload' and 'tcd load' again, or attach with --alone"; return;
    case Reason::detach_or_force:
        e.hint = "detach those programs first (tcd then attaches alone), or use --force to replace them";
        return;
    case Reason::verbose_or_alone: e.hint = "run with -v for libxdp's log, or attach with --alone"; return;
    case Reason::order_first_last: e.hint = "nothing runs there yet: use --order first or last"; return;
    case Reason::mode_on_tc:
        e.why = "--mode is for XDP instances; this one is on tc";
        e.hint = "use --direction";
        return;
    case Reason::priority_on_tc:
        e.why = "--priority is for XDP instances; this one is on tc";
        e.hint = "use --order";
        return;
    case Reason::alone_on_tc:
        e.why = "--alone is for XDP instances; this one is on tc";
        e.hint = "use --order";
        return;
    case Reason::priority_and_alone:
        e.why = "--priority is libxdp's run priority; --alone attaches without libxdp's dispatcher";
        e.hint = "give one of them";
        return;
    case Reason::order_on_xdp:
        e.why = "--order is for tc instances; this one is on XDP";
        e.hint = tc_only;
        return;
    case Reason::direction_on_xdp:
        e.why = "--direction is for tc instances; this one is on XDP";
        e.hint = tc_only;
        return;
    case Reason::detach_direction_on_xdp: e.why = "--direction is for tc instances"; return;
    case Reason::iface_and_all: e.why = "give an interface or --all, not both"; return;
    case Reason::iface_or_all: e.why = "an interface or --all is required"; return;
    case Reason::give_dir: e.hint = "give the instance's directory with -d"; return;
    case Reason::give_own_dir: e.hint = "give the instance's own directory, e.g. -d " + arg(e, 0); return;
    case Reason::did_you_mean: e.hint = "did you mean -d " + arg(e, 0) + "?"; return;
    case Reason::only_own: e.hint = "tcd touches only its own instances; give the instance's directory with -d"; return;
    case Reason::move_out: e.hint = "move them out of the instance first; tcd removes only what it made"; return;
    case Reason::see_handler_list: e.hint = "see 'tcd handler list'"; return;
    case Reason::wire_a_program: e.hint = "wire a program: see 'tcd handler list'"; return;
    case Reason::handler_unload_first: e.hint = fmt::format("'tcd handler unload {}' first", arg(e, 0)); return;
    case Reason::port_instance_for_handler:
        e.hint = "rename it, or load the handler into a port instance (tcd load --key port)";
        return;
    case Reason::dispatcher_not_handler: e.hint = "'tcd unload' removes the instance"; return;
    case Reason::builtin_not_handler: e.hint = "'tcd unload' removes the instance with it"; return;
    case Reason::map_del_or_force: e.hint = "'tcd map del " + arg(e, 0) + "' first, or --force"; return;
    case Reason::unwire_ports: e.hint = "unwire ports with 'tcd map del'"; return;
    case Reason::handler_load_fits:
        e.hint = "'tcd handler load' loads XDP programs the way the jump table needs";
        return;
    case Reason::see_handlers_that_fit: e.hint = "see 'tcd handler list' for programs that fit"; return;
    case Reason::verbose_log:
        e.hint = arg(e, 1).empty() ? "run with -v for " + arg(e, 0) : "libbpf: " + arg(e, 1) + "; -v shows the full log";
        return;
    case Reason::verbose_whole_log: e.hint = "-v shows the whole verifier log"; return;
    case Reason::unload_removes: e.why += "; 'tcd unload' removes it"; return;
    case Reason::unload_or_detach_all: e.why += "; 'tcd unload' or 'tcd detach --all' clears it"; return;
    case Reason::interrupted_force:
        e.why = "interrupted load --force: " + arg(e, 0) + " runs the new dispatcher, still pinned as " + arg(e, 1) +
                "; 'tcd load --force' or 'tcd unload' finishes it";
        return;
    case Reason::monitor_runs:
        e.hint = "one monitor per instance: stop pid " + arg(e, 0) + " (Ctrl-C, or kill " + arg(e, 0) + ") first";
        return;
    case Reason::monitor_orphan:
        e.why = "a monitor (pid " + arg(e, 0) + ") was killed and left the monitoring dispatcher on " + arg(e, 1) +
                "; the plain dispatcher is back";
        return;
    case Reason::respecialise:
        e.why += " (an interrupted map set or del?); the next map set or del, or 'tcd load --force', respecialises it";
        return;
    case Reason::rewire_in: e.why += rewire + "'tcd -d " + arg(e, 0) + " map set'"; return;
    case Reason::rewire: e.why += rewire + "'tcd map set'"; return;
    case Reason::parent_behind:
        e.why = fmt::format("{} key {} still wires an earlier dispatcher of this instance (prog id {}; an interrupted "
                            "load --force?); 'tcd load --force' moves it to this one",
                            arg(e, 0), arg(e, 1), arg(e, 2));
        return;
    case Reason::unload_refuses_foreign: e.why += "; 'tcd unload' refuses until they are moved out"; return;
    }
}

}  // namespace

Error in_words(Error e) {
    // A hint the core gave as well (apply's note of what it undid) follows
    // the reason's.
    const std::string own_hint = e.hint;
    word(e);
    if (!own_hint.empty() && e.hint != own_hint) e.hint += "; " + own_hint;
    if (e.flag != Flag::none) {
        std::string what = e.what;
        for (const std::string& part : {flag_words(e.flag), e.flag_value})
            if (!part.empty()) what += (what.empty() ? "" : " ") + part;
        e.what = std::move(what);
        e.flag = Flag::none;
        e.flag_value.clear();
    }
    e.reason = Reason::none;
    e.args.clear();
    return e;
}

std::string said(const Error& e) { return in_words(e).message(); }

}  // namespace tcd::cli
