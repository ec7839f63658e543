// Programs as the kernel knows them: info by fd or id, and the HANDLER
// grammar of the command line (a pinned name, a bpffs path, or id:N).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/fd.h"

namespace tcd {

struct ProgInfo {
    uint32_t id = 0;
    uint32_t type = 0;  // enum bpf_prog_type
    std::string name;
    std::string tag;     // 16 hex digits
    bool jited = false;
    uint64_t load_time_ns = 0;  // since boot
    uint32_t verified_insns = 0;
    uint32_t xlated_len = 0;
    uint32_t jited_len = 0;
    std::vector<uint32_t> map_ids;
};

Result<ProgInfo> prog_info(int prog_fd);
Result<UniqueFd> prog_fd_by_id(uint32_t id);
// The id of the map behind fd (0 when the kernel does not say).
uint32_t map_id(int map_fd);
std::string prog_type_name(uint32_t type);

// What a bpffs object or fd is.
enum class ObjKind { prog, map, link, other };
ObjKind fd_kind(int fd);

// Wall-clock seconds since the epoch for a load time given since boot.
int64_t boot_ns_to_unix(uint64_t ns);

struct HandlerSpec {
    enum class Kind { name, path, id } kind = Kind::name;
    std::string text;  // the name or path as given
    uint32_t id = 0;
};

// Syntax only (no kernel): "tcp_handler", "/sys/fs/bpf/x/y", "id:42".
Result<HandlerSpec> parse_handler_spec(std::string_view text);

struct Handler {
    UniqueFd fd;
    ProgInfo info;
    std::string display;  // what to call it in messages
    std::string instance;  // HANDLER named an instance dir: it (canonical), and fd is its dispatcher
};

// Opens the program a spec names, in the instance directory pin_dir. A path
// that is another instance's pin dir opens that instance's dispatcher.
Result<Handler> open_handler(const HandlerSpec& spec, const std::string& pin_dir);

}  // namespace tcd
