# Warnings for seckill's own targets (tests, benches, examples): never part of
# the interface that consumers inherit.
function(seckill_target_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 reports -Wmismatched-new-delete on Asio's awaitable frames once
      # it inlines (any -O level): their class-specific new and delete are a
      # pair, so the warning is a false positive there.
      target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
      # GCC 12 under the sanitizers: -Wtsan flags every atomic_thread_fence
      # (Asio has some; TSan cannot model them), and -O1 with ASan makes
      # -Wmaybe-uninitialized fire inside the standard library and Asio.
      if(CMAKE_CXX_FLAGS MATCHES "sanitize=thread")
        target_compile_options(${target} PRIVATE -Wno-tsan)
      endif()
      if(CMAKE_CXX_FLAGS MATCHES "sanitize=address")
        target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
      endif()
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /WX)
  endif()
endfunction()
