// The pin path a key's handler was wired by, for a handler pinned outside
// the instance (`map set 6 /sys/fs/bpf/other/prog`): recorded when tcd
// wires it, as the symlink PINDIR/paths/key-KEY, so that map list and
// status name it by that path rather than id:N without searching bpffs.
// The record is checked when read: shown only while the path still names
// the program wired at the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/progs.h"

namespace tcd::handler_paths {

// The record directory's name in an instance (core/ownership.cpp).
inline constexpr const char* kDir = "paths";

// Whether `name` is a record's name in paths/: key-N.
bool is_record_name(const std::string& name);

// Before key is wired to h (given as spec): records spec's path when it is a
// bpffs path of a program (not another instance's pin dir), else removes
// any record the key had. Returns the record the key had before (its path),
// for put_back when the wiring fails after all.
Result<std::optional<std::string>> note(const std::string& dir, uint32_t key, const HandlerSpec& spec,
                                        const Handler& h);

// Undoes note: key's record as it was (previous: what note returned).
void put_back(const std::string& dir, uint32_t key, const std::optional<std::string>& previous);

// After key is unwired: its record goes.
void forget(const std::string& dir, uint32_t key);

// The path recorded for key, if it still names program prog_id (one pin
// lookup); nullopt without a record or when it names something else now.
std::optional<std::string> recorded(const std::string& dir, uint32_t key, uint32_t prog_id);

// Removes the records and the directory (unload).
void remove_all(const std::string& dir);

}  // namespace tcd::handler_paths
