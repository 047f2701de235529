#pragma once

#include "agent/channel/channel.h"

namespace strait::agent {

// Datagrams over a relay stream (GOST relay CONNECT over UDP): each one travels as
// `LEN(2,BE) | DATA`, both ways. Every read returns one datagram (cut to the reader's buffer,
// as a UDP socket does), every write sends one; so the byte relay moves them like datagrams.
StreamPtr make_relay_datagram_stream(StreamPtr tunnel);

}  // namespace strait::agent
