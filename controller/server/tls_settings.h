#pragma once

namespace strait::controller {

// Turns off TLS 1.3 session tickets in every TLS context made from now on in this process,
// through OpenSSL's configuration (gRPC makes its contexts out of reach of its API). Call
// before the first TLS server starts.
//
// A ticket lets a client resume its session, but gRPC clients (agents, straitctl) keep no
// session cache, so the two tickets OpenSSL sends after each handshake are never used. Each
// costs the server a copy of the session, which decodes the client certificate again, and
// the client reading it; off, an agent connection costs the controller 14 % less CPU
// (measured at 2 000 agents, bench/RESULTS.md).
//
// False, changing nothing, when the system's OpenSSL configuration already sets the defaults
// of every TLS context (an ssl_conf "system_default" section): those are the operator's.
bool turn_off_session_tickets();

}  // namespace strait::controller
