// CLI11 options that parse into the core's enums, from the core's name tables
// (core/names.h): the choices CLI11 checks (and the completions list) are the
// table's names, and what the command runs with is the enum, never the text.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/names.h"

namespace tcd::cli {

// --NAME with one of E's names (those keep accepts, when given), stored into
// target (an E, or a std::optional<E> that stays empty when not given).
template <typename E, typename Target, typename Keep = bool (*)(E)>
CLI::Option* add_enum_option(CLI::App& cmd, const std::string& name, Target& target, const std::string& help,
                             Keep keep = nullptr) {
    return cmd
        .add_option_function<std::string>(
            name, [&target](const std::string& text) { target = *from_name<E>(text); }, help)
        ->check(CLI::IsMember(names_of<E>(keep)));
}

}  // namespace tcd::cli
