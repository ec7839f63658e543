#include "core/keys.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <unordered_map>

namespace tcd {
namespace {

// IANA protocol numbers with the names Debian's /etc/protocols uses, so a
// minimal system without that file still knows them.
const std::vector<std::pair<uint32_t, std::string>> kBuiltin = {
    {0, "hopopt"},      {1, "icmp"},         {2, "igmp"},       {3, "ggp"},
    {4, "ipencap"},     {5, "st"},           {6, "tcp"},        {8, "egp"},
    {9, "igp"},         {12, "pup"},         {17, "udp"},       {20, "hmp"},
    {22, "xns-idp"},    {27, "rdp"},         {29, "iso-tp4"},   {33, "dccp"},
    {36, "xtp"},        {37, "ddp"},         {38, "idpr-cmtp"}, {41, "ipv6"},
    {43, "ipv6-route"}, {44, "ipv6-frag"},   {45, "idrp"},      {46, "rsvp"},
    {47, "gre"},        {50, "esp"},         {51, "ah"},        {57, "skip"},
    {58, "ipv6-icmp"},  {59, "ipv6-nonxt"},  {60, "ipv6-opts"}, {73, "rspf"},
    {81, "vmtp"},       {88, "eigrp"},       {89, "ospf"},      {93, "ax.25"},
    {94, "ipip"},       {97, "etherip"},     {98, "encap"},     {103, "pim"},
    {108, "ipcomp"},    {112, "vrrp"},       {115, "l2tp"},     {124, "isis"},
    {132, "sctp"},      {133, "fc"},         {135, "mobility-header"},
    {136, "udplite"},   {137, "mpls-in-ip"}, {138, "manet"},    {139, "hip"},
    {140, "shim6"},     {141, "wesp"},       {142, "rohc"},     {143, "ethernet"},
};

// Extra spellings people type.
const std::vector<std::pair<std::string, uint32_t>> kAliases = {
    {"icmpv6", 58}, {"icmp6", 58}, {"ipv6icmp", 58}, {"ip", 0},   {"ipsec-esp", 50},
    {"ipsec-ah", 51}, {"ospfigp", 89}, {"ip-encap", 4}, {"ipv4", 4},
};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// A names file of the /etc/protocols and /etc/services kind: NAME FIELD
// [ALIAS...] per line, '#' comments; `number` reads FIELD (nullopt skips).
struct NameTable {
    std::unordered_map<std::string, uint32_t> by_name;
    std::unordered_map<uint32_t, std::string> by_key;
};

template <typename NumberFn>
NameTable read_name_table(const char* path, NumberFn number) {
    NameTable t;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
        std::istringstream ss(line);
        std::string name, field;
        if (!(ss >> name >> field)) continue;
        std::optional<uint32_t> key = number(field);
        if (!key) continue;
        t.by_name.emplace(lower(name), *key);
        t.by_key.emplace(*key, lower(name));
        for (std::string alias; ss >> alias;) t.by_name.emplace(lower(alias), *key);
    }
    return t;
}

std::optional<uint32_t> number_upto(std::string_view s, uint32_t max) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
    return v;
}

const NameTable& system_protocols() {
    static const NameTable t =
        read_name_table("/etc/protocols", [](const std::string& f) { return number_upto(f, kMaxProto); });
    return t;
}

// Well-known ports with the names /etc/services gives them, so a minimal
// system still knows them; aliases people type come after the canonical name.
const std::vector<std::pair<uint32_t, std::string>> kServices = {
    {20, "ftp-data"}, {21, "ftp"},     {22, "ssh"},       {23, "telnet"},    {25, "smtp"},     {53, "domain"},
    {67, "bootps"},   {68, "bootpc"},  {69, "tftp"},      {80, "http"},      {110, "pop3"},    {123, "ntp"},
    {143, "imap2"},   {161, "snmp"},   {179, "bgp"},      {389, "ldap"},     {443, "https"},   {465, "submissions"},
    {514, "syslog"},  {587, "submission"}, {636, "ldaps"}, {853, "domain-s"}, {993, "imaps"},  {995, "pop3s"},
    {1812, "radius"}, {2049, "nfs"},   {3306, "mysql"},   {3478, "stun"},    {4789, "vxlan"},  {5060, "sip"},
    {5432, "postgresql"}, {6379, "redis"}, {6443, "sun-sr-https"}, {8080, "http-alt"}, {9100, "jetdirect"},
};
const std::vector<std::pair<std::string, uint32_t>> kServiceAliases = {
    {"dns", 53}, {"www", 80}, {"imap", 143}, {"postgres", 5432}, {"webcache", 8080}, {"http-proxy", 8080},
};

// "80/tcp" or "53/udp" -> the port; other transports are not keys.
const NameTable& system_services() {
    static const NameTable t = read_name_table("/etc/services", [](const std::string& f) -> std::optional<uint32_t> {
        auto slash = f.find('/');
        if (slash == std::string::npos) return std::nullopt;
        std::string_view proto = std::string_view(f).substr(slash + 1);
        if (proto != "tcp" && proto != "udp") return std::nullopt;
        return number_upto(std::string_view(f).substr(0, slash), 65535);
    });
    return t;
}

}  // namespace

const std::vector<std::pair<uint32_t, std::string>>& builtin_protocols() { return kBuiltin; }
const std::vector<std::pair<uint32_t, std::string>>& builtin_services() { return kServices; }

Result<uint32_t> parse_key(std::string_view text, KeyKind kind) {
    return kind == KeyKind::port ? parse_port(text) : parse_proto(text);
}

std::string service_name(uint32_t port) {
    for (const auto& [p, name] : kServices)
        if (p == port) return name;
    const auto& sys = system_services();
    if (auto it = sys.by_key.find(port); it != sys.by_key.end()) return it->second;
    return {};
}

std::string key_name(KeyKind kind, uint32_t key) {
    return kind == KeyKind::port ? service_name(key) : proto_name(key);
}

namespace {

// The grammar of a key on the command line: a number (decimal or 0x hex) up
// to max, or a name from the built-in table, its aliases or the system file.
struct Grammar {
    const char* noun;   // "key", "port"
    const char* names;  // "protocol name", "service name"
    uint32_t max;
    const std::vector<std::pair<uint32_t, std::string>>& builtin;
    const std::vector<std::pair<std::string, uint32_t>>& aliases;
    const NameTable& (*system)();
    const char* range_hint;
    const char* number_hint;
    const char* file_hint;
};

Result<uint32_t> parse_with(const Grammar& g, std::string_view text) {
    std::string what = std::string(g.noun) + " " + std::string(text);
    if (text.empty())
        return usage_error(g.noun, std::string("empty ") + g.noun, g.number_hint);
    std::string s = lower(text);
    if (std::isdigit(static_cast<unsigned char>(s[0]))) {
        int base = 10;
        const char* b = s.data();
        const char* e = s.data() + s.size();
        if (s.size() > 2 && s[0] == '0' && s[1] == 'x') {
            base = 16;
            b += 2;
        }
        uint64_t v = 0;
        auto [p, ec] = std::from_chars(b, e, v, base);
        if (ec == std::errc() && p == e && v <= g.max) return static_cast<uint32_t>(v);
        if (ec == std::errc::result_out_of_range || (ec == std::errc() && p == e))
            return usage_error(what, "out of range", g.range_hint);
        return usage_error(what, std::string("not a number or ") + g.names, g.number_hint);
    }
    for (const auto& [key, name] : g.builtin)
        if (name == s) return key;
    for (const auto& [alias, key] : g.aliases)
        if (alias == s) return key;
    const auto& sys = g.system();
    if (auto it = sys.by_name.find(s); it != sys.by_name.end()) return it->second;
    return usage_error(what, std::string("unknown ") + g.names, g.file_hint);
}

}  // namespace

Result<uint32_t> parse_proto(std::string_view text) {
    static const Grammar g{"key", "protocol name", kMaxProto, kBuiltin, kAliases, system_protocols,
                           "keys are 0-255, the IP protocol number",
                           "a number 0-255 or a protocol name such as tcp, udp, icmp",
                           "a number 0-255 or a name from /etc/protocols"};
    return parse_with(g, text);
}

Result<uint32_t> parse_port(std::string_view text) {
    static const Grammar g{"port", "service name", 65535, kServices, kServiceAliases, system_services,
                           "ports are 0-65535", "a number 0-65535 or a name such as http, ssh, dns",
                           "a number 0-65535 or a name from /etc/services"};
    return parse_with(g, text);
}

std::string proto_name(uint32_t proto) {
    for (const auto& [k, name] : kBuiltin)
        if (k == proto) return name;
    const auto& sys = system_protocols();
    if (auto it = sys.by_key.find(proto); it != sys.by_key.end()) return it->second;
    return {};
}

}  // namespace tcd
