# Helpers shared by every module's CMakeLists.txt.

# qsfs_unit_test(NAME SOURCES src... LIBS lib...)
# A cmocka test program, registered with ctest under "unit_NAME".
function(qsfs_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
  add_executable(test_${name} ${T_SOURCES})
  target_link_libraries(test_${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  add_test(NAME unit_${name} COMMAND test_${name})
endfunction()

# qsfs_fuzz_target(NAME SOURCES src... LIBS lib...)
# With QSFS_FUZZ: a libFuzzer binary fuzz_NAME. Otherwise: the same entry point linked
# with a replay driver that runs every file of fuzz/corpus/NAME as a ctest case.
function(qsfs_fuzz_target name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  set(corpus ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
  if(QSFS_FUZZ)
    add_executable(fuzz_${name} ${T_SOURCES})
    target_link_libraries(fuzz_${name} PRIVATE ${T_LIBS})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(fuzz_${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/fuzz/replay_main.c)
    target_link_libraries(fuzz_${name} PRIVATE ${T_LIBS})
    add_test(NAME fuzz_replay_${name} COMMAND fuzz_${name} ${corpus})
  endif()
endfunction()

# qsfs_integration_test(NAME SCRIPT file.py)
# A Python integration test that starts real binaries; gets the build dir as argument.
function(qsfs_integration_test name script)
  find_program(PYTHON3 python3 REQUIRED)
  add_test(NAME integ_${name}
           COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/${script} --build ${PROJECT_BINARY_DIR})
  set_tests_properties(integ_${name} PROPERTIES TIMEOUT 600)
endfunction()
