# Writes a ctest script with one test per GoogleTest suite of TEST_EXECUTABLE, run with
# --gtest_filter=<suite>.*. Run after each link of the unit-test binary (see
# tests/CMakeLists.txt). One process per suite instead of per test case: each start of the
# sanitized binary costs over half a second, and there are four times as many cases as suites.
# Inputs: TEST_EXECUTABLE, OUTPUT, TIMEOUT (seconds per suite).
execute_process(COMMAND "${TEST_EXECUTABLE}" --gtest_list_tests
                OUTPUT_VARIABLE listing RESULT_VARIABLE result TIMEOUT 60)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${TEST_EXECUTABLE} --gtest_list_tests failed: ${result}")
endif()
string(REPLACE "\n" ";" lines "${listing}")
set(script "")
foreach(line IN LISTS lines)
  # Suite lines are flush left and end in "." (typed suites add "  # TypeParam = ...");
  # case lines are indented.
  if(line MATCHES "^([^ ]+)\\.( .*)?$")
    set(suite "${CMAKE_MATCH_1}")
    string(APPEND script
      "add_test([=[${suite}]=] [=[${TEST_EXECUTABLE}]=] [=[--gtest_filter=${suite}.*]=])\n"
      "set_tests_properties([=[${suite}]=] PROPERTIES TIMEOUT ${TIMEOUT})\n")
  endif()
endforeach()
file(WRITE "${OUTPUT}" "${script}")
