// Loading and unloading an instance: validate, act, and undo on failure.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/attach.h"
#include "core/error.h"
#include "core/instance.h"
#include "core/progs.h"

namespace tcd {

struct LoadOptions {
    std::optional<MissAction> miss;  // default_miss_action(kind.hook) when not given
    bool force = false;  // reload a loaded instance (keeps wiring and counters)
    Kind kind{};         // key proto|port, hook xdp|tc
    bool upgrade_builtins = true;  // force: replace the built-in handlers too (respecialise keeps them)
    // force: the keys to reach by direct jumps, when the caller has worked
    // them out already (respecialise); else from the wiring there is.
    std::optional<std::vector<DirectKey>> direct;
    // force: whether taking the parents' locks may let go of this instance's
    // and retake it (LockSet): not when the caller has changed something
    // under it already (respecialise).
    bool relock = true;
    // force: the monitoring build (tcd monitor) with these settings; without
    // it (and without plain), a monitoring build that is live stays one, on
    // the same event stream (a map set that respecialises under a monitor).
    std::optional<MonitorBuild> monitor;
    bool plain = false;  // force: the plain dispatcher, monitoring or not before
};

struct LoadResult {
    bool changed = false;
    bool reloaded = false;  // --force replaced a loaded dispatcher
    std::string pin_dir;
    ProgInfo dispatcher;
    MissAction miss = MissAction::pass;
    Kind kind{};
    std::vector<std::string> pinned;       // names of new pins
    std::vector<Attachment> swapped;       // interfaces moved to the new dispatcher
    std::vector<std::string> upgraded;     // built-in handlers replaced by --force
    std::vector<uint32_t> direct;          // keys the dispatcher reaches by direct jumps
    struct Repointed {
        std::string parent;
        uint32_t key = 0;
    };
    std::vector<Repointed> repointed;      // parents' keys moved to the new dispatcher
};

Result<LoadResult> load(const std::string& dir, const LoadOptions& opt);

// Load as `tcd load` asks: what it leaves out is kept. The kind of a loaded
// instance is read from its pins, so a key or hook not given is the pinned
// one's (load --force --miss-action drop on a port instance reloads a port
// instance; proto and xdp for a new one); a miss action given must fit the
// hook.
struct LoadRequest {
    std::optional<KeyKind> key;
    std::optional<Hook> hook;
    std::optional<MissAction> miss;  // default_miss_action(hook) when not given
    bool force = false;
};
Result<LoadOptions> resolve_load(const std::string& dir, const LoadRequest& req);
Result<LoadResult> load_as_asked(const std::string& dir, const LoadRequest& req);

// What a command killed half-way left: a staged dispatcher that runs is
// adopted, a built-in upgrade that had begun is completed, and the other
// temporary pins are removed. Every command that loads or rewires calls it
// under the instance lock first. A staged dispatcher that parents wire (or
// should) is adopted under their locks too; `relock` as in LoadOptions.
void recover_interrupted(const std::string& dir, bool relock = true);

struct UnloadResult {
    bool changed = false;
    std::string pin_dir;
    std::vector<Attachment> detached;
    std::vector<std::string> removed;
    struct Unwired {
        std::string parent;
        uint32_t key = 0;
        std::string key_name;  // as the parent names it (protocol or service), "" when unknown
    };
    std::vector<Unwired> unwired;  // --force: keys of parents that wired this instance
};

// Refused while another instance wires this one (a child: docs/datapath.md,
// "Instance trees"), unless force, which first unwires it in every parent.
Result<UnloadResult> unload(const std::string& dir, bool force = false);

// Attach as `tcd attach` does: the interface checked in its namespace and hw
// mode probed before anything is loaded; with no instance in dir, one loaded
// first with defaults (on tc when the request asks for a direction or an
// order); the request checked against the instance's hook. A failed attach
// takes that load back.
struct AttachOutcome {
    AttachResult result;
    bool loaded = false;  // the instance was loaded for it
};
Result<AttachOutcome> attach_loading(const std::string& dir, const AttachRequest& req);

// Detach as `tcd detach` does: from one interface (a direction, or both on
// tc), or from every one (all), stale attach records cleared with them. With
// no instance in dir nothing of it runs anywhere: an empty result, or, for
// an interface, one that changed nothing (after checking the interface).
struct DetachRequest {
    std::string ifname;
    std::string netns;  // as given on the command line
    bool all = false;
    Direction direction = Direction::none;  // none: both, on tc
};
Result<std::vector<DetachResult>> detach_as_asked(const std::string& dir, const DetachRequest& req);

}  // namespace tcd
