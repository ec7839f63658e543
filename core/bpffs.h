// bpffs and pins: mount check, pin under a temporary name then rename (so a
// pin appears whole or not at all), get, remove.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/fd.h"

namespace tcd::bpffs {

inline constexpr const char* kMountPoint = "/sys/fs/bpf";

bool is_bpffs(const std::string& path);

// Makes sure pin_dir (existing or to be created) lies on a bpffs. When it is
// under /sys/fs/bpf and nothing is mounted there, mounts bpffs (as bpftool
// does); elsewhere it says how.
Result<> ensure_mounted(const std::string& pin_dir);

bool exists(const std::string& path);

// bpf_obj_get(); ENOENT comes back as an error with err == ENOENT.
Result<UniqueFd> get(const std::string& path);

// Pins fd at path: pins temp_path(path) first, then renames it over path.
Result<> pin(int fd, const std::string& path);
// A symlink at path holding text (tcd's records in an instance), made whole
// under temp_path(path), then renamed over path; `what` names it in errors.
Result<> put_symlink(const std::string& path, const std::string& text, const std::string& what);

// Temporary pins (bpffs forbids dots in names): "path~tmp-PID" while this
// process makes path, "path~tmp-next" for a dispatcher load --force stages.
std::string temp_path(const std::string& path);
std::string staged_path(const std::string& path);
bool is_temp_pin(const std::string& name);

// Removes the temporary pins in dir that an interrupted command left (the
// instance lock keeps a live command's out); staged ones too unless
// keep_staged.
void remove_temp_pins(const std::string& dir, bool keep_staged);

// Renames a pin over another in one step (rename(2): the target is replaced
// atomically, never missing in between).
Result<> rename(const std::string& from, const std::string& to);

// Removes a pin or an empty directory; a missing one is fine.
Result<> remove(const std::string& path);

// Creates dir (and parents) if missing; returns the directories it created,
// deepest last, so that a failed command can take them away again.
Result<std::vector<std::string>> make_dirs(const std::string& dir);

// Entries (not directories) directly in dir, sorted; empty when dir is missing.
std::vector<std::string> list_pins(const std::string& dir);

}  // namespace tcd::bpffs
