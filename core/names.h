// One table of names per enum, written once beside the enum as a
// specialisation of Names<E> (bpftool's name arrays are the model):
//     template <> struct Names<Hook> {
//         static constexpr EnumName<Hook> table[] = {{Hook::xdp, "xdp"}, {Hook::tc, "tc"}};
//     };
// Printing (name_of), parsing (from_name), the CLI's IsMember lists and the
// apply file's checks (names_of) all read it. An alias (accepted, never
// printed) follows its value's name, marked alias.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace tcd {

template <typename E>
struct EnumName {
    E value;
    const char* name;
    bool alias = false;
};

template <typename E>
struct Names;  // specialised beside each enum: static constexpr EnumName<E> table[]

// The value's name ("" when the table has none).
template <typename E>
constexpr const char* name_of(E v) {
    for (const auto& n : Names<E>::table)
        if (n.value == v && !n.alias) return n.name;
    return "";
}

// The value a name (or an alias) stands for.
template <typename E>
constexpr std::optional<E> from_name(std::string_view text) {
    for (const auto& n : Names<E>::table)
        if (text == n.name) return n.value;
    return std::nullopt;
}

// The names, in table order, without aliases and empty names; only those whose
// value keep(value) accepts when keep is given.
template <typename E, typename Keep = bool (*)(E)>
std::vector<std::string> names_of(Keep keep = nullptr) {
    std::vector<std::string> out;
    for (const auto& n : Names<E>::table) {
        if (n.alias || !*n.name) continue;
        if constexpr (std::is_pointer_v<Keep>) {
            if (keep && !keep(n.value)) continue;
        } else {
            if (!keep(n.value)) continue;
        }
        out.push_back(n.name);
    }
    return out;
}

// "a or b", "a, b or c": the names as a sentence lists them.
inline std::string or_list(const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); i++)
        out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    return out;
}

}  // namespace tcd
