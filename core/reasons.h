// The reasons and flags an Error (core/error.h) or a status finding names
// where the user's words need a tcd command or a command-line flag. The core
// knows what happened and the data (a pin dir, a key, an interface); cli/
// (cli/words.cpp) holds the one table that turns each into words. A finding
// (status's problems, stale attach records) is an Error with no WHAT: its
// WHY says what is wrong, its reason how to get on; worded, its message()
// is the line status shows.
#pragma once

#include "core/error.h"

namespace tcd {

// Each reason's comment says what its words are about and, where it takes
// any, the args it reads.
enum class Reason : std::uint16_t {
    none = 0,
    // Hints of errors.
    not_loaded,                // nothing loaded: load it, or attach (which loads)
    reload,                    // a half-made instance: unload, then load
    unload_or_other_dir,       // the dir holds something else: unload it, or another pin dir
    force_reloads,             // loaded with other settings: force reloads it
    unload_first_drops,        // unload first (drops wiring and counters)
    right_pin_dir,             // the dir is not on a bpffs: the right pin dir?
    wired_in_parent,           // {parent, key}: delete the key there, or force unloads unwiring it
    netns_needed,              // no such interface here: another namespace needs the netns option
    xdp_modes_other,           // no XDP offload: another mode, or none
    leave_flag_out,            // the error's flag does not apply here: leave it out
    try_skb,                   // this XDP mode fails on the device: try skb
    other_instance_runs,       // {dir}: another instance's dispatcher runs there: see its status
    force_replaces,            // {why alone, or nothing}: another program runs there: force replaces it
    force_replaces_asked_alone, // another program runs there, in libxdp's dispatcher, and alone was asked: force replaces it
    force_replaces_slot,       // another program holds the tc filter slot: force replaces it
    reload_or_alone,           // the entry shim's array refuses: reload, or attach alone
    detach_or_force,           // programs in libxdp's dispatcher: detach them, or force
    verbose_or_alone,          // libxdp did not link the entry: its log, or attach alone
    order_first_last,          // nothing in the tcx chain to place against: first or last
    mode_on_tc,                // WHY: the XDP mode asked of a tc instance
    priority_on_tc,            // WHY: libxdp's run priority asked of a tc instance
    alone_on_tc,               // WHY: attach-alone asked of a tc instance
    priority_and_alone,        // WHY: both a run priority and alone
    order_on_xdp,              // WHY: a tcx order asked of an XDP instance
    direction_on_xdp,          // WHY: a direction asked of an XDP instance (attach)
    detach_direction_on_xdp,   // WHY: a direction asked of an XDP instance (detach)
    iface_and_all,             // WHY: detach given an interface and all
    iface_or_all,              // WHY: detach given neither an interface nor all
    give_dir,                  // a pin dir that is no instance: name the instance's own
    give_own_dir,              // {default dir}: the bpffs root: name an instance's own dir
    did_you_mean,              // {parent}: inside an instance: its dir
    only_own,                  // a foreign pin dir: tcd touches only its own
    move_out,                  // foreign pins inside the instance: move them out
    see_handler_list,          // no such handler: list them
    wire_a_program,            // nothing wired: wire a program (list them)
    handler_unload_first,      // {name}: a handler of that name exists: unload it first
    port_instance_for_handler, // a handler name the proto keys take: rename, or a port instance
    dispatcher_not_handler,    // the dispatcher is no handler: unload removes the instance
    builtin_not_handler,       // a built-in: unload removes the instance with it
    map_del_or_force,          // {keys}: the handler is wired: delete its keys, or force
    unwire_ports,              // the port slots are full: delete some ports
    handler_load_fits,         // a program loaded otherwise: load it as a handler
    see_handlers_that_fit,     // the kernel refused the program: list the ones that fit
    verbose_log,               // {log, library warning or nothing}: run verbose for the log
    verbose_whole_log,         // the verifier's words: verbose shows its whole log
    // Findings (WHY said, the reason adds how to get on).
    unload_removes,            // half-made or leftover: unload removes it
    unload_or_detach_all,      // a stale attach record: unload or detach all clears it
    interrupted_force,         // {here, staged pin}: a killed forced load left the new dispatcher running
    respecialise,              // the dispatcher is not specialised to the wiring
    rewire_in,                 // {parent}: a link made by hand, from that parent: wire it again there
    rewire,                    // a link made by hand, from here: wire it again
    parent_behind,             // {parent, key, prog id}: a parent at an earlier dispatcher: force moves it
    unload_refuses_foreign,    // foreign pins: unload refuses until they are moved out
    monitor_runs,              // {pid}: a monitor runs on the instance: stop it, or watch its stream
    monitor_orphan,            // {pid, instances}: a killed monitor's dispatcher: the plain one is back
};
inline constexpr Reason kLastReason = Reason::monitor_orphan;  // the tests walk them all

// The options an Error's WHAT can be about.
enum class Flag : std::uint8_t { none = 0, force, order, mode, key, hook, direction, miss_action, hex };

// An error whose words cli/ owns: `reason` and the data its words take.
inline tl::unexpected<Error> worded(tl::unexpected<Error> e, Reason reason, std::vector<std::string> args = {}) {
    e.value().reason = reason;
    e.value().args = std::move(args);
    return e;
}

// An error about an option: worded "WHAT --FLAG VALUE" (WHAT and VALUE left
// out when empty).
inline tl::unexpected<Error> about(tl::unexpected<Error> e, Flag flag, std::string value = {}) {
    e.value().flag = flag;
    e.value().flag_value = std::move(value);
    return e;
}

// propagate(r, what) for a step asked with an option ("load" with force).
template <typename T>
tl::unexpected<Error> propagate(const Result<T>& failed, std::string what, Flag flag) {
    return about(propagate(failed, std::move(what)), flag);
}

// Where errno_hint(err) had nothing to say (no hint yet): run verbose for
// `log`, after the library's last warning if there is one.
inline tl::unexpected<Error> or_verbose(tl::unexpected<Error> e, std::string log, std::string warning = {}) {
    if (!e.value().hint.empty()) return e;
    return worded(std::move(e), Reason::verbose_log, {std::move(log), std::move(warning)});
}

// A finding of status: WHY what is wrong, the reason how to get on.
inline Error finding(std::string why, Reason reason = Reason::none, std::vector<std::string> args = {}) {
    Error e;
    e.why = std::move(why);
    e.reason = reason;
    e.args = std::move(args);
    return e;
}

}  // namespace tcd
