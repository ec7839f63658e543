// Streaming reader for pcap and pcapng captures (libpcap), Ethernet only.
// Holds one frame at a time, so captures of any size stream through.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "core/error.h"

struct pcap;  // libpcap's pcap_t is `struct pcap`; keeps <pcap.h> out of this header

namespace tcd {

struct Frame {
    uint64_t number;      // position in the capture, counting from 1
    uint32_t wire_len;    // length of the frame on the wire
    const uint8_t* data;  // captured bytes; valid until the next call to next()
    uint32_t caplen;      // number of captured bytes at data (may be < wire_len)
};

class PcapReader {
public:
    // Opens a pcap or pcapng file whose link type is Ethernet (DLT_EN10MB).
    static Result<PcapReader> open(const std::string& path);

    // true = out holds the next frame; false = end of the capture (and on every
    // later call). A damaged or truncated capture is an error.
    Result<bool> next(Frame& out);

    const std::string& path() const { return path_; }

private:
    struct PcapClose {
        void operator()(::pcap* p) const noexcept;
    };

    PcapReader(std::unique_ptr<::pcap, PcapClose> handle, std::string path)
        : handle_(std::move(handle)), path_(std::move(path)) {}

    std::unique_ptr<::pcap, PcapClose> handle_;
    std::string path_;
    uint64_t count_ = 0;
    bool done_ = false;
};

}  // namespace tcd
