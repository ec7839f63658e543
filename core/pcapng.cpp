#include "core/pcapng.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <utility>

namespace tcd {

namespace {

constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 1, kEpb = 6;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;
constexpr uint16_t kOptEnd = 0, kOptComment = 1, kShbUserAppl = 4, kIfName = 2, kIfTsresol = 9;
constexpr size_t kFlushAt = 64 * 1024;
// An option's value is at most 65535 bytes; a whole block fits in 32 bits.
constexpr size_t kMaxOption = 65532;

template <typename T>
void put(std::string& s, T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void pad4(std::string& s) { s.append((4 - s.size() % 4) % 4, '\0'); }

// At most kMaxOption bytes of UTF-8 text, not cut inside a character.
std::string_view option_text(std::string_view v) {
    if (v.size() <= kMaxOption) return v;
    size_t n = kMaxOption;
    while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) n--;
    return v.substr(0, n);
}

void put_option(std::string& s, uint16_t code, std::string_view value) {
    put<uint16_t>(s, code);
    put<uint16_t>(s, static_cast<uint16_t>(value.size()));
    s.append(value);
    pad4(s);
}

}  // namespace

Result<PcapngWriter> PcapngWriter::open(const std::string& path, uint32_t snaplen) {
    auto f = OutputFile::create(path);
    if (!f) return propagate(f);
    PcapngWriter w;
    w.path_ = path;
    w.out_.emplace(std::move(*f));
    w.snaplen_ = snaplen;
    std::string body;
    put<uint32_t>(body, kByteOrderMagic);
    put<uint16_t>(body, 1);  // major
    put<uint16_t>(body, 0);  // minor
    put<int64_t>(body, -1);  // section length: not given
    put_option(body, kShbUserAppl, "tcd");
    put_option(body, kOptEnd, {});
    w.put_block(kShb, body);
    return w;
}

Result<> PcapngWriter::usable(const char* step) const {
    if (failed_) return fail("write " + path_, fmt::format("cannot {}: an earlier write failed", step));
    if (!out_) return fail("write " + path_, fmt::format("cannot {}: the capture is closed", step));
    return {};
}

void PcapngWriter::put_block(uint32_t type, std::string_view body) {
    const uint32_t total = static_cast<uint32_t>(12 + body.size());  // body is padded to 4 already
    put<uint32_t>(buf_, type);
    put<uint32_t>(buf_, total);
    buf_.append(body);
    put<uint32_t>(buf_, total);
}

Result<uint32_t> PcapngWriter::add_interface(std::string_view name, LinkType link, std::optional<uint32_t> snaplen) {
    if (auto u = usable("add an interface"); !u) return propagate(u);
    const uint32_t snap = snaplen.value_or(snaplen_);
    std::string body;
    put<uint16_t>(body, static_cast<uint16_t>(link));
    put<uint16_t>(body, 0);  // reserved
    put<uint32_t>(body, snap);
    if (!name.empty()) put_option(body, kIfName, option_text(name));
    put_option(body, kIfTsresol, std::string_view("\x09", 1));  // 10^-9 s
    put_option(body, kOptEnd, {});
    put_block(kIdb, body);
    snaplens_.push_back(snap);
    return static_cast<uint32_t>(snaplens_.size() - 1);
}

Result<> PcapngWriter::write(uint32_t interface_id, uint64_t timestamp_ns, uint32_t orig_len,
                             std::span<const uint8_t> bytes, std::string_view comment) {
    if (auto u = usable("write a frame"); !u) return u;
    if (interface_id >= snaplens_.size())
        return fail("write " + path_, fmt::format("no interface {} in the capture ({} added)", interface_id,
                                                  snaplens_.size()));
    const uint32_t snap = snaplens_[interface_id];
    size_t cap = bytes.size();
    if (snap != 0) cap = std::min<size_t>(cap, snap);
    cap = std::min<size_t>(cap, 0xFFFF0000u);  // a block's length fits in 32 bits
    std::string body;
    body.reserve(20 + cap + 4 + comment.size() + 12);
    put<uint32_t>(body, interface_id);
    put<uint32_t>(body, static_cast<uint32_t>(timestamp_ns >> 32));
    put<uint32_t>(body, static_cast<uint32_t>(timestamp_ns));
    put<uint32_t>(body, static_cast<uint32_t>(cap));
    put<uint32_t>(body, std::max<uint32_t>(orig_len, static_cast<uint32_t>(bytes.size())));
    body.append(reinterpret_cast<const char*>(bytes.data()), cap);
    pad4(body);
    if (!comment.empty()) {
        put_option(body, kOptComment, option_text(comment));
        put_option(body, kOptEnd, {});
    }
    put_block(kEpb, body);
    frames_++;
    if (buf_.size() >= kFlushAt) return flush();
    return {};
}

Result<> PcapngWriter::flush() {
    if (auto u = usable("flush"); !u) return u;
    if (buf_.empty()) return {};
    if (auto r = out_->write(buf_); !r) {
        failed_ = true;
        return r;
    }
    buf_.clear();
    return {};
}

Result<> PcapngWriter::close() {
    if (auto u = usable("close"); !u) return u;
    if (auto r = flush(); !r) {
        out_.reset();  // the temporary goes
        return r;
    }
    auto r = out_->commit();
    out_.reset();
    return r;
}

}  // namespace tcd
