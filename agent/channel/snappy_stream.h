#pragma once

#include "agent/channel/channel.h"

namespace strait::agent {

// The snappy framing format over `inner` (kcptun's and GOST's compression between KCP and
// smux, PROTOCOLS.md §5): every write becomes chunks sent at once (kcptun flushes after each
// write), reads return the decoded data. A corrupt chunk ends the reads with
// asio::error::invalid_argument. Memory: the decoder keeps at most one incomplete chunk;
// decoded data waits for the reader (what one 16 KiB read expands to); a write's chunks
// live while it runs. Empty buffers are given back, so an idle stream holds none.
StreamPtr make_snappy_stream(StreamPtr inner);

}  // namespace strait::agent
