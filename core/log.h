// libbpf/libxdp chatter: hidden unless -v (then everything, debug included,
// goes to stderr). Kept in memory otherwise so that an error can refer to it.
#pragma once

#include <string>

namespace tcd {

void set_library_verbosity(bool verbose);

// The last warning libbpf or libxdp printed while quiet ("" if none).
std::string last_library_warning();

}  // namespace tcd
