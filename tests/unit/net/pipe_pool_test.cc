#include "agent/net/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace strait::agent {
namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(PipePool, LendsUpToItsBudgetThenSaysNo) {
  PipePool pool({.max_pipes = 2, .pipe_size = 0});
  auto first = pool.take();
  auto second = pool.take();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(pool.in_use(), 2u);
  EXPECT_FALSE(pool.take()) << "the third pipe is past the budget: the caller copies instead";
  EXPECT_EQ(pool.misses(), 1u);
  pool.give_back(std::move(*first));
  EXPECT_EQ(pool.in_use(), 1u);
  EXPECT_EQ(pool.idle(), 1u);
  auto again = pool.take();
  ASSERT_TRUE(again);
  EXPECT_EQ(pool.idle(), 0u) << "a pipe given back is lent again, not created anew";
}

TEST(PipePool, ClosesAPipeThatStillHoldsBytes) {
  PipePool pool({.max_pipes = 4, .pipe_size = 0});
  auto pipe = pool.take();
  ASSERT_TRUE(pipe);
  ASSERT_EQ(::write(pipe->write_end(), "x", 1), 1);
  int read_end = pipe->read_end();
  pool.discard(std::move(*pipe));
  pipe.reset();
  EXPECT_FALSE(is_open(read_end));
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.idle(), 0u);
}

TEST(PipePool, KeepsTheKernelsSizeUnlessAskedAndSizesWhenAsked) {
  PipePool kernel_default({.max_pipes = 1, .pipe_size = 0});
  auto plain = kernel_default.take();
  ASSERT_TRUE(plain);
  EXPECT_EQ(::fcntl(plain->write_end(), F_GETPIPE_SZ), 64 * 1024);
  PipePool sized({.max_pipes = 1, .pipe_size = 256 * 1024});
  auto big = sized.take();
  ASSERT_TRUE(big);
  EXPECT_EQ(::fcntl(big->write_end(), F_GETPIPE_SZ), 256 * 1024);
}

TEST(PipePool, GrowsBulkPipesWithinTheirOwnBudget) {
  PipePool pool({.max_pipes = 4, .pipe_size = 0, .max_grown = 1, .grown_size = 256 * 1024});
  auto first = pool.take();
  auto second = pool.take();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->capacity(), 64u * 1024);
  EXPECT_TRUE(pool.grow(*first));
  EXPECT_EQ(first->capacity(), 256u * 1024);
  EXPECT_EQ(::fcntl(first->write_end(), F_GETPIPE_SZ), 256 * 1024);
  EXPECT_FALSE(pool.grow(*second)) << "one grown pipe per worker in this pool";
  EXPECT_EQ(pool.grown(), 1u);
  // A grown pipe keeps its size in the pool; closing it gives its place back.
  pool.give_back(std::move(*first));
  auto again = pool.take();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->capacity(), 256u * 1024);
  pool.discard(std::move(*again));
  EXPECT_EQ(pool.grown(), 0u);
  EXPECT_TRUE(pool.grow(*second));
}

TEST(PipePool, AnExplicitSizeIsNeverChanged) {
  PipePool pool({.max_pipes = 1, .pipe_size = 128 * 1024, .max_grown = 16, .grown_size = 256 * 1024});
  auto pipe = pool.take();
  ASSERT_TRUE(pipe);
  EXPECT_EQ(pipe->capacity(), 128u * 1024);
  EXPECT_FALSE(pool.grow(*pipe));
}

TEST(PipePool, GivesNothingWhenTheBudgetIsZero) {
  PipePool pool({.max_pipes = 0, .pipe_size = 0});
  EXPECT_FALSE(pool.take());
}

}  // namespace
}  // namespace strait::agent
