// Privilege check up front, so that a user without rights gets a sentence,
// not an EPERM from the middle of a command.
#pragma once

#include "core/error.h"

namespace tcd {

// Succeeds when the process may load BPF programs and change links: root,
// CAP_SYS_ADMIN, or CAP_BPF together with CAP_NET_ADMIN.
Result<> require_bpf_privileges(const std::string& what);

}  // namespace tcd
