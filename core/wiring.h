// Wiring keys to handlers: what `map set` and `map del` do (and apply's
// wiring steps). Under the instance's lock and its relatives' (the children a
// handler enters, the parents a new dispatcher repoints), the keys are written
// into the jump table, then the dispatcher is respecialised (core/specialise.h)
// when the set of direct keys changes. All or nothing: a refused pair or a
// failed respecialise puts back every key written; a kill between the keys of
// a batch is rolled back by the next command from a record in PINDIR/undo
// (docs/datapath.md, "Several pairs under a kill").
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/instance.h"
#include "core/jumptable.h"

namespace tcd {

// One key: wire_keys of one pair.
Result<SetResult> wire_key(const Instance& in, uint32_t key, const HandlerSpec& handler);
// Several keys at once: one lock set (the instance's, its parents', every
// child's a handler enters), the keys written in order, one respecialise.
// All or nothing: a pair refused (or a failed respecialise) puts every key
// written back as it was. A key given twice is refused before anything.
Result<std::vector<SetResult>> wire_keys(const Instance& in,
                                         const std::vector<std::pair<uint32_t, HandlerSpec>>& pairs);
// The keys unwired, then one respecialise (which frees the counter slots of
// ports no longer wired); a failed respecialise wires them again.
Result<DelResult> unwire_keys(const Instance& in, const std::vector<uint32_t>& keys);

}  // namespace tcd
