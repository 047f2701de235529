#include "agent/net/resolver.h"

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace strait::agent {
namespace {

using namespace std::chrono_literals;

ResolverOptions uncached() {
  ResolverOptions options;
  options.ttl = 0s;
  options.negative_ttl = 0s;
  return options;
}

// Runs one lookup to its end on a context of its own.
boost::system::result<Resolver::Addresses> resolve_now(Resolver& resolver, const std::string& host,
                                                       AddressFamily family = AddressFamily::kAny) {
  asio::io_context io;
  std::optional<boost::system::result<Resolver::Addresses>> outcome;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        outcome = co_await resolver.resolve(host, family, Resolver::Clock::now() + 10s);
      },
      asio::detached);
  io.run();
  return outcome.value();
}

TEST(Resolver, ReturnsLiteralsWithoutALookup) {
  Resolver resolver(uncached());
  auto v4 = resolve_now(resolver, "127.0.0.1");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->front(), asio::ip::make_address("127.0.0.1"));
  auto v6_for_v4 = resolve_now(resolver, "::1", AddressFamily::kIpv4);
  ASSERT_FALSE(v6_for_v4.has_value());
  EXPECT_EQ(v6_for_v4.error(), asio::error::address_family_not_supported);
  EXPECT_EQ(resolver.stats().lookups, 0u);
}

TEST(Resolver, LooksANameUpOnceWhileItsAnswerIsFresh) {
  Resolver resolver(ResolverOptions{});
  auto first = resolve_now(resolver, "localhost", AddressFamily::kIpv4);
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(first->front(), asio::ip::make_address("127.0.0.1"));
  auto second = resolve_now(resolver, "localhost", AddressFamily::kIpv4);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(resolver.stats().lookups, 1u);
  EXPECT_EQ(resolver.stats().cache_hits, 1u);
}

// The pool's threads outlive any one caller: an answer that arrives after the caller's
// io_context is gone, or a pool thread that lets go of a finished caller late, must touch
// nothing of that context (AddressSanitizer catches it when they do).
TEST(Resolver, ACallerMayEndItsContextBeforeOrJustAfterTheAnswer) {
  Resolver resolver(uncached());
  for (int round = 0; round < 100; ++round) {
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await resolver.resolve("localhost", AddressFamily::kAny, Resolver::Clock::now() + 10s);
        },
        asio::detached);
    if (round % 2 == 0) {
      io.poll();  // waiting for the pool when the context ends
    } else {
      io.run();  // answered; the pool may still hold the waiter
    }
  }
  auto after = resolve_now(resolver, "localhost");
  EXPECT_TRUE(after.has_value());
}

}  // namespace
}  // namespace strait::agent
