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
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/error.h"
#include "core/instance.h"
#include "core/kind.h"

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

// What a step did: whether it changed anything, and how to take it back.
struct Done {
    bool changed = true;
    std::function<Result<>()> undo;  // empty: nothing to undo
};

struct Change {
    std::string dir;   // the instance it changes (canonical)
    std::string what;  // "load", "handler load ...", "map set 6 tcp_handler", ...
    std::function<Result<Done>()> run;
    // A follow-up that may find nothing to do when it runs (a parent's key
    // wired to a child whose dispatcher an earlier step may replace): listed
    // only if it changed something.
    bool conditional = false;
};

struct Plan {
    std::vector<std::string> dirs;   // the file's instances, canonical, in the file's order
    std::vector<std::string> names;  // their names (the pin dir when the file gives none)
    std::vector<Change> steps;       // children before parents
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
// first, and the error names the step (and an undo that failed, if one did).
// The steps that changed something, in order.
Result<std::vector<const Change*>> execute(const Plan& p);

}  // namespace tcd
