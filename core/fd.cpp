#include "core/fd.h"

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

namespace tcd {

void BpfObjectDeleter::operator()(bpf_object* o) const { bpf_object__close(o); }
void BpfLinkDeleter::operator()(bpf_link* l) const { bpf_link__destroy(l); }
void XdpProgramDeleter::operator()(xdp_program* p) const { xdp_program__close(p); }
void XdpMultiprogDeleter::operator()(xdp_multiprog* m) const { xdp_multiprog__close(m); }

}  // namespace tcd
