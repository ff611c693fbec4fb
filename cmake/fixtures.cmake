# Trained weights travel compressed: a checkpoint folder may hold FILE.tar.xz (one file, FILE) instead
# of FILE, which keeps the repository small (bf16 weights shrink by about a third under xz, not under
# git's zlib). Configuring expands each archive next to itself, so every reader — mmi, the tests,
# transformers — finds the plain checkpoint; a newer archive (after a pull) is expanded again.
function(mmi_expand_checkpoint archive)
  get_filename_component(folder "${archive}" DIRECTORY)
  string(REGEX REPLACE "\\.tar\\.xz$" "" expanded "${archive}")
  if(EXISTS "${expanded}" AND NOT "${archive}" IS_NEWER_THAN "${expanded}")
    return()
  endif()
  message(STATUS "mmi: expanding ${archive}")
  file(ARCHIVE_EXTRACT INPUT "${archive}" DESTINATION "${folder}")
  if(NOT EXISTS "${expanded}")
    message(FATAL_ERROR "${archive} does not hold ${expanded}")
  endif()
  file(TOUCH "${expanded}")  # the archive keeps the file's old time; mark it as expanded now
endfunction()

mmi_expand_checkpoint("${CMAKE_SOURCE_DIR}/tests/fixtures/qwen2_5_vl_niah/model.safetensors.tar.xz")
