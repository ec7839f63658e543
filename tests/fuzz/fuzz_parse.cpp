// libFuzzer: the command-line grammars (keys, ports, handler specs, hex
// frames) never crash, and what they accept is in range.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/keys.h"
#include "core/progs.h"
#include "core/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto k = tcd::parse_proto(text); k && *k > 255) std::abort();
    if (auto p = tcd::parse_port(text); p && *p > 65535) std::abort();
    if (auto h = tcd::parse_handler_spec(text); h && h->kind == tcd::HandlerSpec::Kind::id && h->id == 0) std::abort();
    if (auto x = tcd::parse_hex(text); x && x->empty()) std::abort();
    return 0;
}
