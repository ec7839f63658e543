#include "core/pcap_reader.h"

#include <dlfcn.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

namespace tcd {

namespace {

// libpcap is opened on first use rather than linked: it pulls in dbus,
// systemd and gcrypt, which every other command would pay for at start-up.
struct PcapApi {
    decltype(&::pcap_fopen_offline) fopen_offline = nullptr;
    decltype(&::pcap_close) close = nullptr;
    decltype(&::pcap_datalink) datalink = nullptr;
    decltype(&::pcap_datalink_val_to_name) datalink_val_to_name = nullptr;
    decltype(&::pcap_next_ex) next_ex = nullptr;
    decltype(&::pcap_geterr) geterr = nullptr;
    bool ok = false;
};

const PcapApi& pcap_api() {
    static const PcapApi api = [] {
        PcapApi a;
        void* h = nullptr;
        for (const char* name : {"libpcap.so.0.8", "libpcap.so.1", "libpcap.so"})
            if ((h = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
        if (!h) return a;
        auto sym = [h](auto& fn, const char* name) {
            fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
            return fn != nullptr;
        };
        a.ok = sym(a.fopen_offline, "pcap_fopen_offline") && sym(a.close, "pcap_close") &&
               sym(a.datalink, "pcap_datalink") && sym(a.datalink_val_to_name, "pcap_datalink_val_to_name") &&
               sym(a.next_ex, "pcap_next_ex") && sym(a.geterr, "pcap_geterr");
        return a;
    }();
    return api;
}

std::string what_for(const std::string& path) { return "pcap " + path; }

// Why a file could not be opened for reading, in words.
std::string open_words(int err) {
    switch (err) {
        case ENOENT: return "no such file";
        case ENOTDIR: return "no such file (a path component is not a directory)";
        case EACCES: return "permission denied";
        case EISDIR: return "is a directory, not a capture file";
        default: {
            std::string s = std::strerror(err);
            if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
            return "cannot open: " + s;
        }
    }
}

// Whether the first 4 bytes of the file are a pcap or pcapng magic number.
bool has_capture_magic(int fd) {
    unsigned char m[4];
    if (::pread(fd, m, sizeof m, 0) != static_cast<ssize_t>(sizeof m)) return false;
    const uint32_t be = (uint32_t{m[0]} << 24) | (uint32_t{m[1]} << 16) | (uint32_t{m[2]} << 8) |
                        uint32_t{m[3]};
    switch (be) {
        case 0xA1B2C3D4: case 0xD4C3B2A1:  // pcap, microseconds
        case 0xA1B23C4D: case 0x4D3CB2A1:  // pcap, nanoseconds
        case 0x0A0D0D0A:                   // pcapng section header block
            return true;
        default:
            return false;
    }
}

}  // namespace

void PcapReader::PcapClose::operator()(::pcap* p) const noexcept {
    if (p != nullptr) pcap_api().close(p);
}

Result<PcapReader> PcapReader::open(const std::string& path) {
    const std::string what = what_for(path);
    const PcapApi& pcap = pcap_api();
    if (!pcap.ok) return fail(what, "libpcap is not available", "install the Debian package libpcap0.8");

    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        return fail(what, open_words(err), {}, err);
    }
    if (S_ISDIR(st.st_mode)) return fail(what, open_words(EISDIR), {}, EISDIR);

    std::FILE* fp = std::fopen(path.c_str(), "rb");
    if (fp == nullptr) {
        const int err = errno;
        return fail(what, open_words(err), {}, err);
    }

    char errbuf[PCAP_ERRBUF_SIZE] = {};
    // On success the pcap_t owns fp (pcap_close closes it); on failure we do.
    std::unique_ptr<::pcap, PcapClose> handle(pcap.fopen_offline(fp, errbuf));
    if (!handle) {
        const bool magic = S_ISREG(st.st_mode) && has_capture_magic(fileno(fp));
        std::fclose(fp);
        if (!magic) return fail(what, "not a pcap or pcapng capture");
        return fail(what, std::string("damaged or unsupported capture: ") + errbuf);
    }

    const int dlt = pcap.datalink(handle.get());
    if (dlt != DLT_EN10MB) {
        const char* name = pcap.datalink_val_to_name(dlt);
        return fail(what, "link type " + std::string(name != nullptr ? name : "unknown") + " (" +
                              std::to_string(dlt) +
                              ") is not Ethernet; tcd traces Ethernet frames only");
    }
    return PcapReader(std::move(handle), path);
}

Result<bool> PcapReader::next(Frame& out) {
    if (done_ || !handle_) return false;
    struct pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    const int rc = pcap_api().next_ex(handle_.get(), &hdr, &data);
    if (rc == 1) {
        ++count_;
        out.number = count_;
        out.wire_len = hdr->len;
        out.data = data;
        out.caplen = hdr->caplen;
        return true;
    }
    done_ = true;
    if (rc == PCAP_ERROR_BREAK) return false;  // -2: no more frames
    // -1 (or anything unexpected from a savefile): damaged or truncated file.
    return fail(what_for(path_), "cannot read frame " + std::to_string(count_ + 1) + ": " +
                                     std::string(pcap_api().geterr(handle_.get())));
}

}  // namespace tcd
