// Declarative instances: a YAML file says what an instance should be (key,
// hook, miss action, handler objects, wiring, interfaces); apply works out
// the steps from what is there and takes them. A second run finds nothing to
// do. This is what a systemd unit runs at boot (pins do not survive one) and
// what a DaemonSet runs on every node.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

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
    std::string netns;      // "" = tcd's own
    std::string mode = "auto";
    std::string direction;  // tc: ingress or egress
};

struct Desired {
    std::optional<std::string> pin_dir;
    Kind kind{};
    MissAction miss = MissAction::pass;
    std::vector<DesiredHandler> handlers;
    std::map<std::string, std::string> wiring;  // KEY (as written) -> HANDLER
    std::vector<DesiredInterface> interfaces;
};

// Reads and checks a YAML description; mistakes are usage errors naming the
// file, the field and what was expected.
Result<Desired> read_desired(const std::string& path);

struct Change {
    std::string what;  // "load", "handler load ...", "map set 6 tcp_handler", ...
    std::function<Result<>()> run;
};

// The steps that take the instance in dir to the desired state, in order.
Result<std::vector<Change>> plan(const std::string& dir, const Desired& want);

}  // namespace tcd
