// apply, executing: the Plan's steps (core/apply.h) run in order through the
// core's calls (load and unload, load_handlers, set_handler and del_keys as
// map set and del use them, attach, detach_as_asked), the wiring of an instance
// respecialised once at the end of its batch. Each step that changed
// something leaves how to take it back on one Rollback for the whole run: a
// failed step takes back every step made, last first.
#include "core/apply.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <functional>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/bpffs.h"
#include "core/crashpoint.h"
#include "core/handlers.h"
#include "core/jumptable.h"
#include "core/lifecycle.h"
#include "core/progs.h"
#include "core/rollback.h"
#include "core/specialise.h"
#include "core/tree.h"

namespace tcd {
namespace {

// A step's outcome without the value of what it ran.
template <typename T>
Result<> outcome_of(const Result<T>& r) {
    if (!r) return propagate(r);
    return {};
}

// What a step did: whether it changed anything, and how to take it back.
struct Done {
    bool changed = true;
    std::function<Result<>()> undo;  // empty: nothing to undo
};

template <typename T>
Result<Done> done(const Result<T>& r, std::function<Result<>()> undo = {}) {
    if (!r) return propagate(r);
    return Done{true, std::move(undo)};
}

// What a key holds now: the program, kept open so that an undo can put it
// back (null: the key is not wired), and on a port instance its counter slot.
struct Held {
    std::shared_ptr<UniqueFd> prog;
    std::optional<uint32_t> slot;
};

Held hold_key(const Instance& in, uint32_t key) {
    Held h;
    if (in.kind().key == KeyKind::port && in.port_slot_fd() >= 0) {
        uint32_t slot = 0;
        if (bpf_map_lookup_elem(in.port_slot_fd(), &key, &slot) == 0) h.slot = slot;
    }
    auto id = wired_prog_id(in, key);
    if (!id || !*id) return h;
    if (auto fd = prog_fd_by_id(**id)) h.prog = std::make_shared<UniqueFd>(std::move(*fd));
    return h;
}

// Undo of a wiring change: the key holds again what it held (one atomic
// update), or is unwired again; a port has its counter slot back.
std::function<Result<>()> put_back(const std::string& dir, uint32_t key, Held old) {
    return [dir, key, old]() -> Result<> {
        auto in = Instance::open(dir);
        if (!in) return propagate(in);
        if (old.slot && in->port_slot_fd() >= 0)
            if (auto r = write_port_slot(*in, key, *old.slot); !r)
                return propagate(r, fmt::format("put back the counter slot of port {}", key));
        if (old.prog && *old.prog) {
            int fd = old.prog->get();
            if (bpf_map_update_elem(in->jt_fd(), &key, &fd, BPF_ANY) != 0)
                return fail_errno(fmt::format("put back key {} in {}", key, in->paths().jt()), errno);
        } else if (bpf_map_delete_elem(in->jt_fd(), &key) != 0 && errno != ENOENT) {
            return fail_errno(fmt::format("unwire key {} in {}", key, in->paths().jt()), errno);
        }
        return {};
    };
}

// Undo of the wiring batch's respecialise (run after the keys are put back):
// the dispatcher that ran before, the very program, swapped in again on every
// interface and its pin renamed into place; then the counter slots of ports
// no longer wired are freed.
std::function<Result<>()> put_back_dispatcher(const std::string& dir, std::shared_ptr<UniqueFd> old, uint32_t old_id) {
    return [dir, old, old_id]() -> Result<> {
        auto in = Instance::open(dir);
        if (!in) return propagate(in);
        if (in->dispatcher().id != old_id) {
            const uint32_t new_id = in->dispatcher().id;
            if (auto r = swap_dispatcher(*in, old->get()); !r) return propagate(r);
            // The parents' keys that load --force moved to the new dispatcher
            // go back to the old one too.
            if (auto ps = tree::parents(dir); ps) {
                for (const auto& e : *ps) {
                    if (e.prog_id != new_id) continue;
                    auto parent = Instance::open(e.parent);
                    if (!parent) return propagate(parent);
                    int fd = old->get();
                    uint32_t key = e.key;
                    if (bpf_map_update_elem(parent->jt_fd(), &key, &fd, BPF_ANY) != 0)
                        return fail_errno(fmt::format("put back {} key {}", e.parent, key), errno);
                }
            }
            std::string pin = in->dispatcher_path(), tmp = bpffs::temp_path(pin);
            if (auto r = bpffs::pin(old->get(), tmp); !r) return r;
            if (auto r = bpffs::rename(tmp, pin); !r) return r;
        }
        auto again = Instance::open(dir);
        if (!again) return propagate(again);
        if (auto r = respecialise(*again, true); !r) return propagate(r);
        return {};
    };
}

// Attaching again where it was (undo of a detach): in its mode on XDP.
Result<> reattach(const Instance& i, const std::string& ifname, const std::string& netns, AttachMode mode,
                  Direction direction) {
    AttachMode m = direction == Direction::none ? mode : AttachMode::auto_mode;
    return outcome_of(attach(i, {.ifname = ifname, .netns = netns, .mode = m, .direction = direction}));
}

// Undo of an attach: detached, and attached again in its old mode where it
// was attached before (a reattach).
std::function<Result<>()> put_back_attach(const std::string& dir, const AttachRequest& a,
                                          std::optional<AttachMode> was) {
    return [dir, a, was]() -> Result<> {
        auto in = Instance::open(dir);
        if (!in) return propagate(in);
        if (auto r = detach(*in, a.ifname, a.netns, a.direction); !r) return propagate(r);
        if (was) return reattach(*in, a.ifname, a.netns, *was, a.direction);
        return {};
    };
}

// A key wired (map set), undone by putting back what it held.
Result<Done> wire(const Instance& in, const WireRequest& w, SetBatch& batch) {
    Held old = hold_key(in, w.key);
    auto r = set_handler(in, w.key, *parse_handler_spec(w.handler), &batch);
    return done(r, put_back(in.paths().dir, w.key, old));
}

// One step on the instance as it is when the step runs (an earlier step may
// have loaded it or loaded it again).
Result<Done> run_on(const Instance& in, const Step& s, SetBatch& batch) {
    const std::string& dir = s.instance;
    switch (s.op) {
        case StepOp::handler_load: {
            const auto& h = std::get<HandlerLoadRequest>(s.request);
            return done(load_handlers(in, h.object, h.progs), [dir, missing = h.progs]() -> Result<> {
                auto i = Instance::open(dir);
                if (!i) return propagate(i);
                for (const auto& m : missing)
                    if (auto u = unload_handler(*i, m, true); !u) return propagate(u);
                return {};
            });
        }
        case StepOp::hold_dispatcher: {
            auto fd = prog_fd_by_id(in.dispatcher().id);
            if (!fd) return propagate(fd);
            return Done{false, put_back_dispatcher(dir, std::make_shared<UniqueFd>(std::move(*fd)), in.dispatcher().id)};
        }
        case StepOp::wire:
            return wire(in, std::get<WireRequest>(s.request), batch);
        case StepOp::rewire_child: {
            const auto& w = std::get<WireRequest>(s.request);
            auto c = Instance::open(w.child);
            if (!c) return propagate(c);
            auto now = wired_prog_id(in, w.key);
            if (!now) return propagate(now);
            if (*now && **now == c->dispatcher().id) return Done{false, {}};
            return wire(in, w, batch);
        }
        case StepOp::unwire: {
            const uint32_t key = std::get<UnwireRequest>(s.request).key;
            Held old = hold_key(in, key);
            return done(del_keys(in, {key}, false), put_back(in.paths().dir, key, old));
        }
        case StepOp::respecialise:
            return Done{true, {}};  // the batch's end respecialises
        case StepOp::attach: {
            const auto& a = std::get<AttachRequest>(s.request);
            return done(attach(in, a), put_back_attach(dir, a, std::nullopt));
        }
        case StepOp::reattach: {
            const auto& r = std::get<ReattachStep>(s.request);
            const AttachRequest& a = r.attach;
            if (auto d = detach(in, a.ifname, a.netns, a.direction); !d) return propagate(d);
            auto at = attach(in, a);
            if (!at) {
                // Back where it was, in its old mode.
                (void)reattach(in, a.ifname, a.netns, r.was, a.direction);
                return propagate(at);
            }
            return Done{true, put_back_attach(dir, a, r.was)};
        }
        default:
            return fail("apply", fmt::format("step {} is not one on a loaded instance", name_of(s.op)));
    }
}

Result<Done> run(const Step& s, SetBatch& batch) {
    const std::string& dir = s.instance;
    switch (s.op) {
        case StepOp::unload: {
            const Kind was = std::get<UnloadStep>(s.request).was;
            return done(unload(dir, true), [was]() -> Result<> {
                return fail("unload", fmt::format("the {} instance on {} that was there cannot be made again "
                                                  "(its handlers and wiring are gone)",
                                                  key_kind_name(was.key), hook_name(was.hook)));
            });
        }
        case StepOp::load:
            return done(load(dir, std::get<LoadOptions>(s.request)), [dir]() { return outcome_of(unload(dir, true)); });
        case StepOp::reload: {
            const auto& r = std::get<ReloadStep>(s.request);
            LoadOptions back;  // as it was: the same kind, its miss action
            back.miss = r.was;
            back.force = true;
            back.kind = r.load.kind;
            return done(load(dir, r.load), [dir, back]() { return outcome_of(load(dir, back)); });
        }
        case StepOp::detach: {  // as `tcd detach IFACE [--direction D]` does
            const auto& d = std::get<DetachStep>(s.request);
            const DetachRequest& r = d.detach;
            return done(detach_as_asked(dir, r), [dir, r, mode = d.mode]() -> Result<> {
                auto i = Instance::open(dir);
                if (!i) return propagate(i);
                return reattach(*i, r.ifname, r.netns, mode, r.direction);
            });
        }
        default: {
            auto in = Instance::open(dir);
            if (!in) return propagate(in);
            return run_on(*in, s, batch);
        }
    }
}

// The step, and at the end of an instance's wiring batch one respecialise
// (the step taken back when that fails).
Result<Done> run_step(const Step& s, SetBatch& batch) {
    auto r = run(s, batch);
    if (!r || !s.respecialise_after) return r;
    auto i = Instance::open(s.instance);
    if (!i) {
        if (r->undo) (void)r->undo();
        return propagate(i);
    }
    if (auto sp = respecialise(*i); !sp) {
        if (r->undo) (void)r->undo();
        return propagate(sp);
    }
    return r;
}

}  // namespace

Result<std::vector<const Step*>> execute(const Plan& p, const StepWords& say) {
    std::vector<const Step*> changed;
    std::vector<std::string> left;  // the undos that failed
    auto where = [several = p.dirs.size() > 1](const Step& s) { return several ? s.instance + ": " : std::string(); };
    Rollback undo;
    // What one instance's set_handler calls share (its port slots read once,
    // as map set with several pairs does). The slots are only ever assigned
    // through it while the batch runs; a respecialise in between frees some,
    // which the cache then counts as taken: never a slot given twice.
    std::map<std::string, SetBatch> batches;
    for (const auto& s : p.steps) {
        auto r = run_step(s, batches[s.instance]);
        if (r) {
            if (r->changed) changed.push_back(&s);
            if (r->undo)
                undo.push([&left, &s, &say, where, u = std::move(r->undo)] {
                    if (auto e = u(); !e) left.push_back(where(s) + say(s) + ": " + e.error().message());
                });
            crash_point("apply");  // killed between two steps: the next apply converges
            continue;
        }
        Error e = r.error();
        e.what = "apply: " + where(s) + say(s) + (e.what.empty() ? "" : ": " + e.what);
        // Undone, last first; each undo is tried even if one before it failed.
        undo.run();
        std::string note;
        if (!left.empty()) {
            note = fmt::format("{} of the {} change(s) made before it could not be undone ({}); run apply again "
                               "to converge",
                               left.size(), changed.size(), fmt::join(left, "; "));
        } else if (!changed.empty()) {
            note = fmt::format("the {} change(s) made before it were undone", changed.size());
        }
        if (!note.empty()) e.hint = e.hint.empty() ? note : e.hint + "; " + note;
        return tl::unexpected(e);
    }
    undo.commit();
    return changed;
}

}  // namespace tcd
