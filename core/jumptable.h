// The jump table: which handler runs for which key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/instance.h"
#include "core/progs.h"

namespace tcd {

struct WiredEntry {
    uint32_t key = 0;
    std::string key_name;  // the protocol or service name, "" when unknown
    std::string handler;  // pin name, or "id:N" when not pinned in the instance
    uint32_t prog_id = 0;
    std::string tag;
    uint32_t slot = 0;  // port instances: the key's counter slot (0: none)
    std::string instance;  // the child instance (pin dir) whose dispatcher this is; "" otherwise
};

// Every wired key, in key order. On a port instance `slotted_only` looks only
// at ports that have a counter slot (what stats needs; 65536 lookups less).
Result<std::vector<WiredEntry>> list_wiring(const Instance& in, bool slotted_only = false);

// Port instances: port -> counter slot, for every port (0: no slot); reads
// maps/port_slot whole (65,536 entries).
Result<std::vector<uint32_t>> read_port_slots(const Instance& in);

// Port instances: the ports that have a counter slot, port -> slot. Read
// through maps/slot_port (1,024 entries), each entry counted only when
// port_slot names its slot (one lookup each); an instance without the index
// (an older tcd loaded it) reads port_slot whole.
Result<std::map<uint32_t, uint32_t>> slotted_ports(const Instance& in);

// Port instances: gives `port` counter slot `slot`, or takes its slot away
// (slot 0), in port_slot and its index, in the order that keeps the index a
// superset of port_slot under a kill: the index entry is written before
// port_slot and cleared after it.
Result<> write_port_slot(const Instance& in, uint32_t port, uint32_t slot);

// The program wired at key, or nullopt.
Result<std::optional<uint32_t>> wired_prog_id(const Instance& in, uint32_t key);

struct SetResult {
    bool changed = false;
    uint32_t key = 0;
    std::optional<WiredEntry> old;  // what was wired before
    WiredEntry now;
    bool respecialised = false;  // wire_keys: a new dispatcher was swapped in
    bool direct = false;         // wire_keys: the key is reached by a direct jump
    bool new_slot = false;       // port instances: the port got its counter slot now
};

// Wires key -> handler with one atomic update (never delete then insert),
// after checking the handler can go into this jump table.
// What several set_handler calls under one lock share (map set with several
// pairs): a port instance's slotted ports as read once (read when empty,
// kept up to date), so that wiring N new ports reads them once, not N times; and whether a key is wired already (by an earlier pair),
// which spares tree::check_wiring its search of the jump table for one.
struct SetBatch {
    std::optional<std::map<uint32_t, uint32_t>> slots;  // slotted_ports()
    bool wired = false;
};
Result<SetResult> set_handler(const Instance& in, uint32_t key, const HandlerSpec& handler,
                              SetBatch* batch = nullptr);

struct DelResult {
    KeyKind kind = KeyKind::proto;
    std::vector<WiredEntry> removed;
    std::vector<uint32_t> not_wired;
    bool respecialised = false;  // unwire_keys: a new dispatcher was swapped in
};

// Unwires keys; all or nothing. On a port instance the keys' counter slots
// are freed unless release_slots is false (unwire_keys frees them after the
// dispatcher that counts into them is gone).
Result<DelResult> del_keys(const Instance& in, const std::vector<uint32_t>& keys, bool release_slots = true);

// Checks that a program may be put into the instance's jump table.
Result<> check_compatible(const Instance& in, const Handler& h);
// The same against any prog array owner (owner_fd, described by owner): the
// dispatcher, or a freplace program that stands in for it (libxdp), whose
// table takes table_type programs (BPF_PROG_TYPE_XDP or _SCHED_CLS).
Result<> check_compatible(int owner_fd, const ProgInfo& owner, uint32_t table_type, const Handler& h);

// The expected attach type a prog array owned by this XDP (or freplace)
// program demands of the programs put into it: BPF_XDP, 0 (none: a freplace
// owner, on kernels with the prog-array attach-type check), BPF_XDP_DEVMAP
// or BPF_XDP_CPUMAP. nullopt for other programs. Kernels without the check
// take any, and say BPF_XDP.
std::optional<uint32_t> xdp_table_attach_type(int owner_fd);

// What decides whether the kernel takes a program into a jump table; the
// attach type and frags flag are known for XDP programs only (probed).
struct CompatTraits {
    uint32_t type = 0;  // enum bpf_prog_type
    bool jited = false;
    std::optional<uint32_t> attach_type;  // enum bpf_attach_type
    std::optional<bool> frags;
    bool freplace = false;  // the table's owner is a freplace (BPF_PROG_TYPE_EXT) program
};
// One phrase per field in which the handler differs from the jump table's
// owner, each naming both values, in a fixed order: program type, JIT status,
// frags flag, expected attach type.
std::vector<std::string> compat_differences(const CompatTraits& handler, const CompatTraits& table);

}  // namespace tcd
