// Specialised dispatchers: the keys a dispatcher reaches by direct jumps are
// written into its .rodata before it is loaded, so every change of that set
// means a new dispatcher, swapped in the way load --force swaps one.
//
// The policy: the set follows the wiring, and a new dispatcher is loaded only
// when a map set or del changes the set (README, "Speed"); rewiring a key that
// is in it already is one jump-table update, as before. The wiring itself
// (map set, map del) is core/wiring.h, which calls respecialise.
#pragma once

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/instance.h"
#include "core/jumptable.h"

namespace tcd {

// The keys to reach by direct jumps for a wiring, at most TCD_DIRECT_MAX,
// sorted. Proto instances: the wired keys, tcp udp icmp icmpv6 first and then
// by key, filled up with the four unwired (so wiring them needs no new
// dispatcher). Port instances: the wired ports that have a counter slot, by
// port, each with its slot.
std::vector<DirectKey> choose_direct(KeyKind kind, const std::vector<WiredEntry>& wiring);

// What a freshly loaded dispatcher with nothing wired is specialised to.
std::vector<DirectKey> default_direct(KeyKind kind);

// choose_direct() of the instance's wiring as it is now.
Result<std::vector<DirectKey>> wanted_direct(const Instance& in);

struct Respecialised {
    bool swapped = false;  // a new dispatcher was loaded and swapped in
    std::vector<DirectKey> before, after;
};

// Makes the live dispatcher's direct keys what the wiring wants: if they
// differ, `load --force` (keeping the built-ins) loads and swaps in a new
// one. With release_slots, on a port instance it then frees the counter
// slots of ports that are no longer wired (after the swap, so no live
// dispatcher counts into them): after a map del, or one cut short.
Result<Respecialised> respecialise(const Instance& in, bool release_slots = true);

}  // namespace tcd
