// Attach records: where tcd attached an instance (maps/attach), so status,
// detach and unload find it in other network namespaces too. A record is
// written before the kernel is touched and removed after, so a command cut
// short leaves a record that status checks against the kernel, never an
// attachment nobody knows of.
#pragma once

#include <cstdint>
#include <vector>

#include "core/attach.h"
#include "tcd/shared.h"

namespace tcd {

struct AttachRecord {
    tcd_attach_key key;
    tcd_attach_val val;
    Direction direction() const;
    AttachMode mode() const;  // auto_mode for an XDP record written before the mode was known
};

// The value tcd_attach_val.mode holds for a tcx link (XDP records hold enum
// xdp_attach_mode, 1..3; clsact ones 0).
inline constexpr uint32_t kRecordModeTcx = 16;

std::vector<AttachRecord> records(const Instance& in);
Result<> record(const Instance& in, const Attachment& a, uint64_t netns_ino);
void forget(const Instance& in, uint64_t netns_ino, uint32_t ifindex, Direction d);
void forget_all(const Instance& in);

}  // namespace tcd
