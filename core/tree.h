// Hierarchical dispatch: instances whose jump tables wire other instances'
// dispatchers (a proto dispatcher handing tcp to a port dispatcher, on one
// hook). docs/datapath.md, "Instance trees".
//
// The source of truth is the jump tables: a program wired in an instance's
// jump table that uses another instance's jump table (its map ids, as
// `bpftool prog show` lists them) makes that instance a child. That is the
// child's dispatcher, or a handler of the child that chains with tcd_next().
// A program that uses its own instance's jump table is a chaining handler.
//
// To find an instance's links without reading every instance's jump table,
// tcd keeps an index beside the pins: PINDIR/tree/, one symlink per link and
// key, `up-KEY-HASH` in the child (naming the parent) and `down-KEY-HASH` in
// the parent (naming the child). A link is recorded before its key is
// written and its records removed after it is unwired, so a record may be
// stale but a link tcd made is never missing one. Each record is checked
// when read, by one lookup in the parent's jump table at its key. Wiring
// made by hand (bpftool) has no record: only a full scan (`scan` with
// ScanScope::full, `tcd status --scan`) finds it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/instance.h"
#include "core/kind.h"
#include "core/progs.h"

namespace tcd::tree {

// A pin dir in the one spelling its lock goes by (InstanceLock::canonical_dir).
std::string canon(const std::string& dir);
// "a -> b -> c": a chain of instances, in messages.
std::string chain_text(const std::vector<std::string>& dirs);

// The kernel's MAX_TAIL_CALL_CNT: tail calls one packet may make.
inline constexpr int kMaxTailCalls = 33;
// Tail calls kept back for tcd's entry shim, which tail-calls the dispatcher
// when it runs inside libxdp's multi-program dispatcher (always kept, so a
// tree that fits alone still fits there).
inline constexpr int kEntryTailCalls = 1;

struct Wire {
    uint32_t key = 0;
    uint32_t prog_id = 0;
    std::vector<std::string> uses;  // instances (dirs) whose jump table the program uses
};

struct Node {
    std::string dir;  // canonical
    Kind kind{};
    uint32_t dispatcher_id = 0;
    uint32_t jt_id = 0;
    std::vector<Wire> wires;  // every wired key
};

struct Edge {
    std::string parent;
    uint32_t key = 0;
    std::string child;
    uint32_t prog_id = 0;
};

struct Graph {
    std::vector<Node> nodes;
    const Node* find(const std::string& dir) const;
    Node* find(const std::string& dir);
    std::vector<Edge> edges() const;  // parent -> child, one per wired key
    std::vector<Edge> parents_of(const std::string& dir) const;
    std::vector<Edge> children_of(const std::string& dir) const;
};

// Tail calls a packet entering an instance's dispatcher can make at most:
// 0 with nothing wired; else 1 (into the handler) + one per distinct chaining
// handler wired in it (each tcd_next() is one more) + the deepest child's.
struct Analysis {
    std::vector<std::string> cycle;  // a loop of instances (first repeated last), empty if none
    std::map<std::string, int> depth;
    int max_depth = 0;
    std::vector<std::string> deepest;  // the instances along the deepest chain
};
Analysis analyse(const Graph& g);  // pure: no kernel

// Every loaded instance on bpffs: a walk of /sys/fs/bpf (four levels deep)
// and of the directories holding `also` (other bpffs mounts), with their
// jump tables read (one lookup per key: the kernel has no batch lookup on a
// prog array, so a port instance's table is 65,536 system calls).
//
// What to read, for a question about one instance: `hook` keeps only the
// instances on that hook (a jump table takes programs of its owner's type
// only, and a child must be on its parent's hook, so no edge joins two
// hooks); `unread` is an instance listed without its wiring (its wires
// empty): who wires it does not depend on what it wires, or given as
// `unread_wires` (key, program id) when the caller has just read them.
//
// Without `full`, only the instances linked to the ones in `also` (through
// their records, each checked, and through wiring between instances already
// found) are read, not every instance on bpffs.
struct ScanScope {
    std::optional<Hook> hook;
    std::string unread;
    std::optional<std::vector<std::pair<uint32_t, uint32_t>>> unread_wires;
    bool full = false;
};
Result<Graph> scan(const std::vector<std::string>& also = {}, const ScanScope& scope = {});

// Instance directories only (no jump table read): dir -> jt map id.
std::map<std::string, uint32_t> instance_jts(const std::vector<std::string>& also = {});

// The instance whose jump table a program uses, if it is another's
// (`self`: the asking instance's dir, canonical or not). Asked of the
// instances self's records name as children (no walk of bpffs): a program
// wired by hand into another instance goes unnamed.
std::optional<std::string> instance_used_by(const ProgInfo& prog, const std::string& self);
// Every other instance whose jump table prog uses (the locks a map set wiring
// prog takes besides its own, and the links it records): asked of `near`
// first; bpffs is walked (pins only, no jump table read) only when prog uses
// a prog array named like tcd's jump table that none of them owns.
std::vector<std::string> instances_used_by(const ProgInfo& prog, const std::string& self,
                                           const std::vector<std::string>& near = {});

// The link index (PINDIR/tree/). A record as read; `holds` when checked.
struct Record {
    bool up = false;      // in the child, naming its parent
    uint32_t key = 0;     // the parent's key
    std::string other;    // the other instance's dir (canonical)
    std::string path;     // the record's own path
};
std::vector<Record> records(const std::string& dir);
// Whether parent's jump table holds, at key, a program that uses child's
// jump table (one lookup).
std::optional<uint32_t> link_holds(const std::string& parent, uint32_t key, const std::string& child);
// Records the link parent key -> child: `down` in the parent first, then
// `up` in the child. Before the key is written; idempotent.
Result<> record(const std::string& parent, uint32_t key, const std::string& child);
// Removes the records of dir (and their counterparts in the other instance)
// whose link no longer holds. Under dir's lock.
void prune(const std::string& dir);

// Whether program id is a tcd dispatcher (by its name), of whatever instance.
bool is_dispatcher(uint32_t prog_id);

// map set's check before it writes key -> h into parent's jump table: a
// program that enters another instance must be on the same hook, and the
// wiring must make no loop and no chain longer than kMaxTailCalls. A
// handler that enters no instance and does not chain cannot make either
// unless the parent had nothing wired (its depth 0 -> 1): only then, or for
// a child or a chaining handler, are the other instances read.
// `wired`: the caller knows a key of parent is wired already (an earlier
// pair of the same call), so the search for one is skipped.
Result<> check_wiring(const Instance& parent, uint32_t key, const Handler& h, bool wired = false);

// Who wires this instance (edges from other instances into it): its `up`
// records, each checked by one lookup (with `full`, a scan of every instance
// on its hook instead, which finds wiring made by hand too).
Result<std::vector<Edge>> parents(const std::string& dir, bool full = false);
// The same, as the distinct parent dirs (the locks to take before repointing).
Result<std::vector<std::string>> parent_dirs(const std::string& dir);

}  // namespace tcd::tree
