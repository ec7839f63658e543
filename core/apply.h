// Declarative instances: a YAML file says what one instance, or several and
// the wiring between them (an instance tree), should be (key, hook, miss
// action, handler objects, wiring, interfaces); apply works out the steps from
// what is there and takes them. A second run finds nothing to do. This is what
// a systemd unit runs at boot (pins do not survive one) and what a DaemonSet
// runs on every node.
//
// The order: children before parents (a parent's key can only be wired to a
// loaded child). The whole is checked first (names, hooks, loops, the
// kernel's 33 tail calls, on the tree the file would make); then the steps
// run; if one fails, the ones made are undone, last first.
//
// Three parts, one job each: apply_read.cpp (the file -> Desired),
// apply_plan.cpp (Desired and what is there -> a Plan of Steps, data),
// apply_exec.cpp (the Plan run through the core's calls, under one Rollback).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/attach.h"
#include "core/error.h"
#include "core/instance.h"
#include "core/kind.h"
#include "core/lifecycle.h"
#include "core/names.h"

namespace tcd {

struct DesiredHandler {
    std::string object;
    std::vector<std::string> progs;  // empty: all of the object's programs
};

struct DesiredInterface {
    std::string name;
    std::string netns;  // "" = tcd's own
    AttachMode mode = AttachMode::auto_mode;  // XDP
    Direction direction = Direction::none;    // tc: ingress (the default) or egress
};

// One instance of the file.
struct Desired {
    std::optional<std::string> pin_dir;
    std::string name;  // its name in the file (instances: lists), "" when none
    Kind kind{};
    MissAction miss = MissAction::pass;
    std::vector<DesiredHandler> handlers;
    std::map<std::string, std::string> wiring;       // KEY (as written) -> HANDLER (a pin dir: that instance)
    std::map<std::string, std::string> wiring_to;    // KEY (as written) -> the name of an instance in the file
    std::vector<DesiredInterface> interfaces;
    int line = 0;  // where it starts in the file (1-based; 0: the whole file)
};

// The file: one instance (the top level holds its fields), or an
// `instances:` list.
struct DesiredFile {
    std::string path;
    bool several = false;
    std::vector<Desired> instances;
};

// Reads and checks a YAML description; mistakes are usage errors naming the
// file, the field (and its line) and what was expected.
Result<DesiredFile> read_desired(const std::string& path);

// A plan is data: steps, each an operation on one instance with the request
// the core call takes (the calls `tcd load`, `handler load`, `map set`,
// `map del`, `attach` and `detach` are built on). apply_plan.cpp makes them,
// apply_exec.cpp runs them (and takes them back), step_text says them.
enum class StepOp {
    unload,           // another kind there: unloaded (unload --force; not undone)
    load,             // not there: loaded
    reload,           // another miss action: load --force
    handler_load,     // handler programs not pinned yet
    hold_dispatcher,  // before a wiring batch: the dispatcher kept, to swap back on undo
    wire,             // map set
    rewire_child,     // map set again if the child's dispatcher was replaced
    unwire,           // map del of a key the file does not name
    respecialise,     // the direct keys are not the wiring's (a command cut short)
    attach,
    reattach,         // attached in another XDP mode: detached, attached in the mode asked
    detach,           // attached where the file does not say
};
template <>
struct Names<StepOp> {
    static constexpr EnumName<StepOp> table[] = {
        {StepOp::unload, "unload"},
        {StepOp::load, "load"},
        {StepOp::reload, "reload"},
        {StepOp::handler_load, "handler-load"},
        {StepOp::hold_dispatcher, "hold-dispatcher"},
        {StepOp::wire, "wire"},
        {StepOp::rewire_child, "rewire-child"},
        {StepOp::unwire, "unwire"},
        {StepOp::respecialise, "respecialise"},
        {StepOp::attach, "attach"},
        {StepOp::reattach, "reattach"},
        {StepOp::detach, "detach"},
    };
};

// The requests of the steps that the core's own request types do not cover
// (load: LoadOptions, attach: AttachRequest, detach: DetachRequest).
struct UnloadStep {
    Kind was;     // the instance there, which cannot be made again
    Kind wanted;  // what the file asks for
};
struct ReloadStep {
    LoadOptions load;
    MissAction was = MissAction::pass;  // its miss action now (the undo loads it again)
};
struct HandlerLoadRequest {
    std::string object;
    std::vector<std::string> progs;
};
struct WireRequest {
    uint32_t key = 0;
    std::string handler;  // as the file gives it: a handler, or a child's pin dir
    std::string child;    // rewire_child: the child instance (canonical)
};
struct UnwireRequest {
    uint32_t key = 0;
    std::string was;  // the handler wired there now
};
struct RespecialiseRequest {
    std::vector<uint32_t> direct;  // the keys the wiring wants reached by direct jumps
};
struct ReattachStep {
    AttachRequest attach;
    AttachMode was = AttachMode::auto_mode;  // the mode it is attached in now
};
struct DetachStep {
    DetachRequest detach;
    AttachMode mode = AttachMode::auto_mode;  // the mode it is attached in (the undo attaches it so again)
};
using StepRequest = std::variant<std::monostate, UnloadStep, LoadOptions, ReloadStep, HandlerLoadRequest, WireRequest,
                                 UnwireRequest, RespecialiseRequest, AttachRequest, ReattachStep, DetachStep>;

struct Step {
    StepOp op{};
    std::string instance;  // its pin dir (canonical)
    StepRequest request;
    // The last wiring step of an instance: then one respecialise for all of
    // them (if they change the keys reached by direct jumps; frees the
    // counter slots of unwired ports).
    bool respecialise_after = false;
    // A follow-up that may find nothing to do when it runs (a parent's key
    // wired to a child whose dispatcher an earlier step may replace): listed
    // only if it changed something.
    bool conditional() const { return op == StepOp::rewire_child || op == StepOp::hold_dispatcher; }
};

// What a step is called in the user's words (cli/apply_text.h's
// step_text: as the command line would say it). The core names steps only
// through it, in the errors execute returns.
using StepWords = std::function<std::string(const Step&)>;

struct Plan {
    std::vector<std::string> dirs;   // the file's instances, canonical, in the file's order
    std::vector<std::string> names;  // their names (the pin dir when the file gives none)
    std::vector<Step> steps;         // children before parents
};

// The pin directories of the file's instances, canonical, in the file's order
// (default_dir for an instance that names none); two instances in one
// directory are a usage error.
Result<std::vector<std::string>> desired_dirs(const DesiredFile& want, const std::string& default_dir);

// The steps that take the instances to the desired state, in order, after
// checking the whole: wiring that names an instance the file does not have
// or another hook's, a loop, a chain past the kernel's 33 tail calls.
Result<Plan> plan(const DesiredFile& want, const std::string& default_dir);

// Runs the steps in order. If one fails, the steps made are undone, last
// first, and the error names the step in `say`'s words (and an undo that
// failed, if one did). The steps that changed something, in order.
Result<std::vector<const Step*>> execute(const Plan& p, const StepWords& say);

}  // namespace tcd
