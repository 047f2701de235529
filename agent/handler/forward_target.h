#pragma once

#include "agent/handler/handler.h"
#include "agent/observe/session_log.h"

namespace strait::agent {

// Dials the service's forward targets (ctx.forwarder, which must be set) through its router
// in selector order, marking failed ones, and returns the first that answers. The client's
// host is the `hash` strategy's key, so a client stays on one target whatever its port.
asio::awaitable<Result<StreamPtr>> dial_forward_target(Stream& client, const HandlerContext& ctx,
                                                       Network network, SessionLog& session);

}  // namespace strait::agent
