// libbpf/libxdp chatter: hidden unless -v (then everything, debug included,
// goes to stderr). Kept in memory otherwise so that an error can refer to it.
#pragma once

#include <string>

namespace tcd {

void set_library_verbosity(bool verbose);

// While one lives, libbpf's and libxdp's output is dropped, -v or not, and
// not remembered as the last warning: for probes, which expect refusals.
class QuietLibraries {
public:
    QuietLibraries();
    ~QuietLibraries();
    QuietLibraries(const QuietLibraries&) = delete;
    QuietLibraries& operator=(const QuietLibraries&) = delete;
};

// The last warning libbpf or libxdp printed while quiet ("" if none).
std::string last_library_warning();
// The last lines of the last verifier log libbpf printed while quiet (a
// rejected program), joined with " / "; "" if none.
std::string last_verifier_words();

}  // namespace tcd
