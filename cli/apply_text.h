// The words of apply's plan steps (core/apply.h's Step), as the command line
// would say them: "load --key proto --hook xdp --miss-action pass", "map set
// 6 tcp_handler", ... ("" for hold_dispatcher, which changes nothing).
#pragma once

#include <string>

#include "core/apply.h"

namespace tcd {

std::string step_text(const Step& s);

}  // namespace tcd
