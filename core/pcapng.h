// A small pcapng writer: one section, Ethernet (or any link type)
// interfaces, enhanced packet blocks with a comment each. libpcap writes
// pcapng with no per-packet comments, so tcd writes its own (the format:
// draft-ietf-opsawg-pcapng). What tcpdump, tshark and libpcap read back is
// tested in tests/unit/pcapng_test.cpp.
//
// Blocks: a Section Header Block (shb_userappl "tcd"), one Interface
// Description Block per add_interface() (if_name, if_tsresol 9 =
// nanoseconds), one Enhanced Packet Block per write() (opt_comment when a
// comment is given). Host byte order, as the format allows.
//
// The file is handled as every file tcd writes (docs/cli.md, "Output
// files"): "-" is stdout; a FIFO, a device or a socket is opened and written
// into; a symbolic link or a directory is refused and left as it was; a
// regular file, or a new one, is written under a fresh temporary name beside
// it and renamed over it by close(), so it is never half written. Without
// close() (an error, a destructor on the way out) the temporary is removed
// and the file is as it was.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/output_file.h"

namespace tcd {

// pcapng/pcap link types (LINKTYPE_*), the few tcd writes.
enum class LinkType : uint16_t { ethernet = 1 };

class PcapngWriter {
public:
    // tcpdump's default: frames are kept whole.
    static constexpr uint32_t kDefaultSnaplen = 262144;

    // Creates the file (see above) and writes the section header. snaplen:
    // the default for add_interface(); 0 = no limit. Errors name the path
    // ("write FILE") and say why (a symbolic link, a directory, errno).
    static Result<PcapngWriter> open(const std::string& path, uint32_t snaplen = kDefaultSnaplen);

    PcapngWriter(PcapngWriter&&) noexcept = default;
    PcapngWriter& operator=(PcapngWriter&&) noexcept = default;
    ~PcapngWriter() = default;  // without close(): a temporary is removed, the file left as it was

    // An interface description block (if_name = name, "" = none); returns
    // the interface id write() takes (0, 1, ... in the order added).
    // snaplen: none = open()'s.
    Result<uint32_t> add_interface(std::string_view name, LinkType link = LinkType::ethernet,
                                   std::optional<uint32_t> snaplen = std::nullopt);

    // An enhanced packet block. timestamp_ns: nanoseconds since the epoch
    // (CLOCK_REALTIME). orig_len: the frame's length on the wire (raised to
    // bytes.size() if smaller). bytes: the captured bytes, cut here to the
    // interface's snaplen if longer. comment: opt_comment ("" = none),
    // UTF-8, shown by Wireshark as the frame's comment (frame.comment).
    // Buffered: the bytes reach the file at 64 KiB, flush() or close().
    Result<> write(uint32_t interface_id, uint64_t timestamp_ns, uint32_t orig_len,
                   std::span<const uint8_t> bytes, std::string_view comment = {});

    // Writes what is buffered: a FIFO's reader or stdout's sees it now; a
    // regular file's bytes go to its temporary, under FILE only at close().
    Result<> flush();

    // Flushes, syncs and, for a regular file, renames it into place. Once
    // closed (or failed to), every call but the destructor is an error.
    Result<> close();

    const std::string& path() const { return path_; }
    uint64_t frames() const { return frames_; }      // EPBs written
    uint32_t interfaces() const { return uint32_t(snaplens_.size()); }

private:
    PcapngWriter() = default;
    void put_block(uint32_t type, std::string_view body);
    Result<> usable(const char* step) const;

    std::string path_;
    std::optional<OutputFile> out_;  // none once closed
    bool failed_ = false;            // a write failed: only the destructor is left
    uint32_t snaplen_ = kDefaultSnaplen;
    std::vector<uint32_t> snaplens_;       // per interface id
    std::string buf_;
    uint64_t frames_ = 0;
};

}  // namespace tcd
